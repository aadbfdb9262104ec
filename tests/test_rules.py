"""Update rules: hand-worked targets, stop-gradients, the registry."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from inner_agents.types import AgentHParams, AgentOutput, Trajectory
from lpg import rules

HP = AgentHParams(learning_rate=1.0, y_cost=0.5, value_cost=0.5, entropy_cost=0.0, discount=0.5)


def _inputs(reward, done, value):
  t, b = np.shape(reward)
  return rules.RuleInputs(
    reward=jnp.asarray(reward, jnp.float32),
    done=jnp.asarray(done, jnp.float32),
    pi_a=jnp.full((t, b), 0.5),
    y=jnp.full((t + 1, b, 3), 1 / 3),
    value=jnp.asarray(value, jnp.float32),
  )


def test_a2c_targets_hand_worked():
  # One env, T = 3, gamma = 0.5, the episode ends after step 1.
  # G_2 = r_2 + g v_3 = 1 + 0.5 * 4 = 3;  G_1 = r_1 (terminal) = 2;  G_0 = r_0 + g G_1 = 1 + 1 = 2.
  inputs = _inputs([[1.0], [2.0], [1.0]], [[0.0], [1.0], [0.0]], [[1.0], [1.0], [1.0], [4.0]])
  targets = rules.A2CRule().targets({}, inputs, HP)
  np.testing.assert_allclose(targets.value_target[:, 0], [2.0, 2.0, 3.0])
  np.testing.assert_allclose(targets.pi_hat[:, 0], [1.0, 1.0, 2.0])
  assert targets.y_hat is None


def test_a2c_lambda_zero_is_one_step_td():
  reward = np.array([[1.0, 0.0], [0.0, 1.0]])
  done = np.array([[0.0, 1.0], [0.0, 0.0]])
  value = np.array([[0.5, 1.0], [2.0, 3.0], [4.0, 5.0]])
  targets = rules.A2CRule(lambda_=0.0).targets({}, _inputs(reward, done, value), HP)
  expected = reward + 0.5 * (1 - done) * value[1:]
  np.testing.assert_allclose(targets.value_target, expected)


def test_rule_inputs_are_stop_gradient_and_pick_taken_action():
  traj = Trajectory(
    observation=jnp.zeros((3, 1)),
    action=jnp.array([[1], [0]]),
    reward=jnp.zeros((2, 1)),
    done=jnp.zeros((2, 1)),
  )

  def f(logits):
    out = AgentOutput(logits=logits, y_logits=jnp.zeros((3, 1, 4)), value=jnp.zeros((3, 1)))
    return jnp.sum(rules.rule_inputs(out, traj).pi_a)

  logits = jnp.log(jnp.array([[[0.25, 0.75]], [[0.6, 0.4]], [[0.5, 0.5]]]))
  np.testing.assert_allclose(f(logits), 0.75 + 0.6, rtol=1e-6)
  np.testing.assert_array_equal(jax.grad(f)(logits), 0.0)


def test_registry():
  assert set(rules.names()) >= {"a2c", "random"}
  assert rules.make_rule("a2c").name == "a2c"
  with pytest.raises(rules.UnknownRuleError, match="valid: a2c, random"):
    rules.make_rule("ppo9000")
  assert rules.make_rule("random").init_meta_params(None) == {}
