"""The agent update driven by a rule: A2C as a known answer, the LPG update (Eq. 2) by
hand, and where gradients do and do not flow (theta vs eta)."""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from environments.grid_world import GridWorld, GridWorldSpec, ObjectSpec, open_layout
from inner_agents.actor_critic.agent import AgentState, HParams, make_agent
from inner_agents.actor_critic.presets import Preset
from inner_agents.drivers.on_policy import Trainer
from inner_agents.rules.a2c import A2CRule
from inner_agents.rules.base import RuleInputs, Targets, UpdateRule
from inner_agents.types import Trajectory
from lpg.network import LPGNetworkConfig
from lpg.rule import LPGRule

M = 3
ENV = GridWorld(
  GridWorldSpec(open_layout(2, 3), objects=(ObjectSpec(1.0, 0.0, 0.5),), max_steps=8, observation="tabular")
)
AGENT = make_agent(ENV.observation_spec(), ENV.num_actions, M, Preset(optimizer="sgd"))
LPG = LPGRule(LPGNetworkConfig(hidden_size=8, phi_size=4, y_size=M))
HP = HParams(learning_rate=2.0, y_cost=0.7, value_cost=0.0, entropy_cost=0.0, discount=0.9)
# Jitted once: op-by-op dispatch of these small functions is slower than compiling them.
_apply = jax.jit(AGENT.apply)
_update = jax.jit(AGENT.update)
_targets = jax.jit(LPG.targets)


class AdvantageOnly(UpdateRule):
  """pi_hat = n-step return - v(s_t), written out as a loop; no y_hat, no value target."""

  name = "advantage_only"
  consumes = frozenset({"pi", "v"})

  def targets(self, meta_params: Any, inputs: RuleInputs) -> Targets:
    del meta_params
    g = inputs.v_t[-1]
    returns = []
    for t in reversed(range(inputs.r_t.shape[0])):
      g = inputs.r_t[t] + inputs.gamma * (1.0 - inputs.end_t[t]) * g
      returns.append(g)
    returns = jnp.stack(returns[::-1])
    return Targets(pi_hat=returns - inputs.v_t[:-1])


def _inputs(out, traj, consumes=LPG.consumes):
  return AGENT.rule_inputs(None, traj, out, HP.discount, consumes)


def _random_params(key):
  """Table params with a non-uniform policy, random y and random values."""
  n, a = ENV.num_states, ENV.num_actions
  k1, k2, k3 = jax.random.split(key, 3)
  return {
    "table": {
      "logits": jax.random.normal(k1, (n, a)),
      "y_logits": jax.random.normal(k2, (n, M)),
      "value": jax.random.normal(k3, (n,)),
    }
  }


def _state(key):
  params = _random_params(key)
  return AgentState(params=params, opt_state=optax.identity().init(params))


@pytest.fixture(scope="module")
def eta():
  return jax.jit(LPG.init_meta_params)(jax.random.PRNGKey(3))


@pytest.fixture(scope="module")
def trajectory():
  """A hand-made trajectory, T = 3, B = 2, with episode ends and repeated states."""
  observation = jnp.array([[0, 5], [2, 5], [0, 7], [3, 1]], jnp.int32)
  end = jnp.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], jnp.float32)
  return Trajectory(
    observation=observation,
    action=jnp.array([[4, 1], [0, 1], [4, 8]], jnp.int32),
    reward=jnp.array([[0.0, 1.0], [1.0, 0.0], [0.0, -1.0]], jnp.float32),
    discount=1.0 - end,
    end=end,
  )


def test_advantage_rule_gives_a2c_update_without_value_and_entropy_terms():
  hp = HP._replace(value_cost=0.0, entropy_cost=0.0)
  a2c = Trainer(ENV, AGENT, A2CRule(), num_envs=4, unroll_length=5)
  state = jax.jit(a2c.init)(jax.random.PRNGKey(1))
  state = state._replace(agent=_state(jax.random.PRNGKey(2)))
  new_a2c, _, data = jax.jit(a2c.update_with_data)(state, {}, hp)
  # The same trajectory through the advantage-only rule and the same agent update.
  out = _apply(state.agent.params, data.trajectory.observation)
  inputs = AGENT.rule_inputs(state.agent, data.trajectory, out, hp.discount, AdvantageOnly.consumes)
  assert not np.any((np.asarray(data.trajectory.end) > 0) & (np.asarray(data.trajectory.discount) > 0))
  targets = AdvantageOnly().targets({}, inputs)
  new_adv, _ = _update(state.agent, data.trajectory, targets, hp)
  np.testing.assert_allclose(data.targets.pi_hat, targets.pi_hat, rtol=1e-5, atol=1e-6)
  assert np.abs(np.asarray(targets.pi_hat)).max() > 0.1
  for name in ("logits", "y_logits", "value"):
    np.testing.assert_allclose(
      new_a2c.agent.params["table"][name], new_adv.params["table"][name], rtol=1e-5, atol=1e-6
    )
  moved = new_a2c.agent.params["table"]["logits"] - state.agent.params["table"]["logits"]
  assert np.abs(np.asarray(moved)).max() > 1e-3
  # value_cost = 0: A2C's value target does not move the value table either.
  np.testing.assert_array_equal(new_a2c.agent.params["table"]["value"], state.agent.params["table"]["value"])


def _softmax(x):
  e = np.exp(x - x.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def test_lpg_update_is_eq2_by_hand(eta, trajectory):
  state = _state(jax.random.PRNGKey(4))
  out = _apply(state.params, trajectory.observation)
  targets = _targets(eta, _inputs(out, trajectory))
  new_state, stats = _update(state, trajectory, targets, HP)

  # By hand: L = -1/N sum log pi(a|s) pi_hat + y_cost/N sum KL(y(s) || y_hat), N = T * B.
  # d/d logits[s] of -log pi(a|s) pi_hat = -pi_hat (onehot(a) - pi(.|s));
  # d/d y_logits[s] of KL(softmax(z) || q) = p * (log p - log q - KL).
  table = {k: np.asarray(v, np.float64) for k, v in state.params["table"].items()}
  pi_hat = np.asarray(targets.pi_hat, np.float64)
  y_hat = np.asarray(targets.y_hat, np.float64)
  obs, act = np.asarray(trajectory.observation), np.asarray(trajectory.action)
  n = pi_hat.size
  g_logits = np.zeros_like(table["logits"])
  g_y = np.zeros_like(table["y_logits"])
  loss = 0.0
  for t in range(3):
    for b in range(2):
      s, a = obs[t, b], act[t, b]
      p = _softmax(table["logits"][s])
      g_logits[s] -= pi_hat[t, b] * (np.eye(ENV.num_actions)[a] - p) / n
      py = _softmax(table["y_logits"][s])
      kl = np.sum(py * (np.log(py) - np.log(y_hat[t, b])))
      g_y[s] += HP.y_cost * py * (np.log(py) - np.log(y_hat[t, b]) - kl) / n
      loss += (-np.log(p[a]) * pi_hat[t, b] + HP.y_cost * kl) / n
  np.testing.assert_allclose(float(stats.loss), loss, rtol=1e-5)
  new = {k: np.asarray(v) for k, v in new_state.params["table"].items()}
  np.testing.assert_allclose(
    new["logits"], table["logits"] - HP.learning_rate * g_logits, rtol=1e-5, atol=1e-6
  )
  np.testing.assert_allclose(
    new["y_logits"], table["y_logits"] - HP.learning_rate * g_y, rtol=1e-5, atol=1e-6
  )
  np.testing.assert_array_equal(new["value"], table["value"].astype(np.float32))
  # The update moved both heads, and only the rows of visited states.
  assert np.abs(g_logits).max() > 1e-3 and np.abs(g_y).max() > 1e-4
  unvisited = sorted(set(range(ENV.num_states)) - set(obs[:-1].ravel()))
  np.testing.assert_array_equal(new["logits"][unvisited], table["logits"][unvisited].astype(np.float32))


def test_policy_gradient_step_on_one_table_entry_hand_worked():
  # One step, uniform policy over 9 actions in state 0, action 2, pi_hat = 3, lr = 2:
  # grad logits[0] = -3 (onehot(2) - 1/9), so logits[0] += 2 * 3 * (onehot(2) - 1/9):
  # the taken action's logit becomes 6 * 8/9 = 16/3 and the others -6/9 = -2/3.
  observation = jnp.array([[0], [1]], jnp.int32)
  traj = Trajectory(
    observation,
    jnp.array([[2]], jnp.int32),
    jnp.zeros((1, 1)),
    jnp.ones((1, 1)),
    jnp.zeros((1, 1)),
    observation[1:],
  )
  state = _state(jax.random.PRNGKey(0))
  state = state._replace(params=jax.tree.map(jnp.zeros_like, state.params))
  new, _ = _update(state, traj, Targets(pi_hat=jnp.array([[3.0]])), HP)
  expected = np.full(9, -2.0 / 3.0)
  expected[2] = 16.0 / 3.0
  np.testing.assert_allclose(new.params["table"]["logits"][0], expected, rtol=1e-6)
  np.testing.assert_array_equal(new.params["table"]["logits"][1:], 0.0)


def test_agent_gradient_does_not_flow_through_the_rule_inputs(eta, trajectory):
  params = _random_params(jax.random.PRNGKey(5))

  def loss_via_rule(params, inputs_fn):
    out = AGENT.apply(params, trajectory.observation)
    targets = LPG.targets(eta, inputs_fn(out, trajectory))
    return AGENT.loss(params, trajectory, targets, HP)[0]

  def leaky_inputs(out, traj):  # rule_inputs without its stop_gradient
    probs = jax.nn.softmax(out.logits[:-1])
    pi_a = jnp.take_along_axis(probs, traj.action[..., None], axis=-1)[..., 0]
    return RuleInputs(
      traj.reward, HP.discount * traj.discount, traj.end, HP.discount, pi_a, jax.nn.softmax(out.y_logits)
    )

  fixed_targets = _targets(eta, _inputs(_apply(params, trajectory.observation), trajectory))
  g_fixed = jax.jit(jax.grad(lambda p: AGENT.loss(p, trajectory, fixed_targets, HP)[0]))(params)
  g_rule = jax.jit(jax.grad(loss_via_rule), static_argnums=1)(params, _inputs)
  g_leaky = jax.jit(jax.grad(loss_via_rule), static_argnums=1)(params, leaky_inputs)
  for name in ("logits", "y_logits", "value"):
    np.testing.assert_allclose(g_rule["table"][name], g_fixed["table"][name], rtol=1e-6, atol=1e-8)
  # The check has teeth: without the stop-gradient the gradient is different.
  diff = max(float(jnp.abs(g_leaky["table"][k] - g_fixed["table"][k]).max()) for k in ("logits", "y_logits"))
  assert diff > 1e-4


def test_updated_params_depend_on_eta(eta, trajectory):
  state = _state(jax.random.PRNGKey(6))
  inputs = _inputs(_apply(state.params, trajectory.observation), trajectory)
  probe = jax.tree.map(lambda p: jax.random.normal(jax.random.PRNGKey(7), p.shape), state.params)

  def projected_update(eta, part):
    new, _ = AGENT.update(state, trajectory, LPG.targets(eta, inputs), HP)
    return jnp.sum(new.params["table"][part] * probe["table"][part])

  grad = jax.jit(jax.grad(projected_update), static_argnums=1)
  g_pi, g_y = grad(eta, "logits"), grad(eta, "y_logits")
  norm = lambda tree: float(jnp.sqrt(sum(jnp.sum(x**2) for x in jax.tree.leaves(tree))))  # noqa: E731
  # theta'_pi depends on eta through pi_hat, theta'_y through y_hat.
  assert norm(g_pi["lpg/pi_hat"]) > 1e-4 and norm(g_pi["lpg/lstm/linear"]) > 1e-5
  assert norm(g_pi["lpg/y_hat"]) == 0.0
  assert norm(g_y["lpg/y_hat"]) > 1e-4 and norm(g_y["lpg/phi_hidden"]) > 1e-7
  assert norm(g_y["lpg/pi_hat"]) == 0.0


def test_trainer_update_is_differentiable_in_eta(eta):
  # The full update (rollout with stop-gradient'ed acting, rule, agent step) carries eta's
  # gradient into theta'.
  trainer = Trainer(ENV, AGENT, LPG, num_envs=2, unroll_length=4)
  state = jax.jit(trainer.init)(jax.random.PRNGKey(8))

  def f(eta):
    new, _, _ = trainer.update_with_data(state, eta, HP)
    return jnp.sum(new.agent.params["table"]["logits"] ** 2) + jnp.sum(new.agent.params["table"]["y_logits"])

  grads = jax.jit(jax.grad(f))(eta)
  assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))
  assert float(jnp.abs(grads["lpg/pi_hat"]["w"]).max()) > 0
