"""Update rules: hand-worked targets, the contract's checks, the registry."""

import jax.numpy as jnp
import numpy as np
import pytest

import lpg  # noqa: F401  Registers the LPG rules.
from inner_agents.rules import a2c, registry
from inner_agents.rules.base import RuleInputs, Targets, check_inputs, check_targets
from lpg.rule import LPGRule


def _inputs(reward, end, value, discount=None, gamma=0.5, v_tp1=None):
  reward, end, value = (jnp.asarray(x, jnp.float32) for x in (reward, end, value))
  t, b = reward.shape
  discount = 1.0 - end if discount is None else jnp.asarray(discount, jnp.float32)
  return RuleInputs(
    r_t=reward,
    discount_t=gamma * discount,
    end_t=end,
    gamma=gamma,
    pi_a_t=jnp.full((t, b), 0.5),
    y_t=jnp.full((t + 1, b, 3), 1 / 3),
    v_t=value,
    v_tp1=value[1:] if v_tp1 is None else jnp.asarray(v_tp1, jnp.float32),
  )


def test_a2c_targets_hand_worked():
  # One env, T = 3, gamma = 0.5, the episode terminates after step 1.
  # G_2 = r_2 + g v_3 = 1 + 0.5 * 4 = 3;  G_1 = r_1 (terminal) = 2;  G_0 = r_0 + g G_1 = 1 + 1 = 2.
  inputs = _inputs([[1.0], [2.0], [1.0]], [[0.0], [1.0], [0.0]], [[1.0], [1.0], [1.0], [4.0]])
  targets = a2c.A2CRule().targets({}, inputs)
  np.testing.assert_allclose(targets.v_hat[:, 0], [2.0, 2.0, 3.0])
  np.testing.assert_allclose(targets.pi_hat[:, 0], [1.0, 1.0, 2.0])
  assert targets.y_hat is None


def test_a2c_truncation_bootstraps_and_termination_does_not():
  # The same trajectory, but the episode is cut by a time limit after step 1 (discount 1)
  # and reached a state of value 6 (v_tp1): G_1 = 2 + 0.5 * 6 = 5, G_0 = 1 + 0.5 * 5 = 3.5;
  # G_2 still bootstraps from v_3 only (the return does not cross the end).
  values = [[1.0], [1.0], [1.0], [4.0]]
  truncated = _inputs(
    [[1.0], [2.0], [1.0]],
    [[0.0], [1.0], [0.0]],
    values,
    discount=[[1.0], [1.0], [1.0]],
    v_tp1=[[1.0], [6.0], [4.0]],
  )
  np.testing.assert_allclose(a2c.A2CRule().targets({}, truncated).v_hat[:, 0], [3.5, 5.0, 3.0])
  lambda_zero = a2c.A2CRule(lambda_=0.0).targets({}, truncated).v_hat[:, 0]
  np.testing.assert_allclose(lambda_zero, [1.0 + 0.5 * 1.0, 5.0, 3.0])


def test_lambda_returns_reduce_to_rlax_within_an_episode():
  """No episode end in the window: the same as rlax's lambda-returns, for any lambda."""
  import rlax

  rng = np.random.default_rng(0)
  r, v = rng.normal(size=(7, 3)).astype(np.float32), rng.normal(size=(7, 3)).astype(np.float32)
  got = a2c.lambda_returns(r, 0.9 * np.ones_like(r), np.zeros_like(r), v, 0.7)
  for b in range(3):
    want = rlax.lambda_returns(r[:, b], 0.9 * np.ones(7, np.float32), v[:, b], 0.7)
    np.testing.assert_allclose(got[:, b], want, rtol=1e-6)


def test_a2c_lambda_zero_is_one_step_td():
  reward = np.array([[1.0, 0.0], [0.0, 1.0]])
  end = np.array([[0.0, 1.0], [0.0, 0.0]])
  value = np.array([[0.5, 1.0], [2.0, 3.0], [4.0, 5.0]])
  targets = a2c.A2CRule(lambda_=0.0).targets({}, _inputs(reward, end, value))
  np.testing.assert_allclose(targets.v_hat, reward + 0.5 * (1 - end) * value[1:])


def test_contract_checks_catch_shape_bugs_at_the_boundary():
  inputs = _inputs([[1.0], [2.0]], [[0.0], [0.0]], [[1.0], [1.0], [1.0]])
  check_inputs(inputs, frozenset({"pi", "y", "v"}))
  with pytest.raises(ValueError, match="consumes 'q'"):
    check_inputs(inputs, frozenset({"q"}))
  with pytest.raises(AssertionError):
    check_inputs(inputs._replace(v_t=jnp.zeros((2, 1))), frozenset({"v"}))  # [T] not [T+1]
  check_targets(Targets(pi_hat=jnp.zeros((2, 1)), y_hat=jnp.zeros((2, 1, 3))), inputs)
  with pytest.raises(AssertionError):
    check_targets(Targets(pi_hat=jnp.zeros((2,))), inputs)  # a broadcasting bug
  with pytest.raises(AssertionError):
    check_targets(Targets(pi_hat=jnp.zeros((2, 1)), y_hat=jnp.zeros((2, 1, 4))), inputs)  # wrong m


def test_rules_declare_what_they_consume():
  rules = {name: registry.resolve(name)[0] for name in ("a2c", "random", "lpg_init")}
  assert rules["a2c"].consumes == {"pi", "v"} and rules["a2c"].on_policy
  assert rules["random"].consumes == frozenset() and not rules["random"].on_policy
  assert rules["lpg_init"].consumes == {"pi", "y"} and rules["lpg_init"].learned


def test_registry():
  assert registry.names()[:7] == ["a2c", "random", "crr", "crr_binary", "crr_max", "crr_binary_max", "bc"]
  assert {"lpg_init", "pretrained:NAME", "PATH"} <= set(registry.names())
  rule, meta_params = registry.resolve("a2c")
  assert rule.name == "a2c" and meta_params == {}
  with pytest.raises(registry.UnknownRuleError, match=r"valid: a2c, random, crr, .*, bc, lpg_init"):
    registry.resolve("ppo9000")


def test_lpg_init_takes_the_sizes_of_the_learned_rule_it_controls():
  (learned, _), (control, _) = registry.resolve_all(["pretrained:default_cpu", "lpg_init"])
  assert isinstance(control, LPGRule) and control.name == "lpg_init"
  assert control.config == learned.config and learned.config.hidden_size == 32
  alone, _ = registry.resolve("lpg_init")
  assert alone.config.hidden_size == 256  # the paper's default sizes without a peer
