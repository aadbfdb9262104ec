"""The meta-objective's critic trains: on a deterministic chain it regresses to the true
discounted returns (it is not a critic that never learns)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from dm_env import specs

from environments.chain import ChainSpec, DelayedChain
from inner_agents.actor_critic.agent import AgentState, make_agent
from inner_agents.actor_critic.presets import Preset
from inner_agents.drivers import on_policy as rollout_lib
from lpg import meta_objective

GAMMA, LAMBDA, LR = 0.9, 0.95, 1.0
T, B, N = 6, 4, 2  # N trajectories [T, B], as the K inner rollouts + validation rollout
ENV = DelayedChain(ChainSpec(3, 3))  # every episode: exactly 3 actions
CRITIC = make_agent(ENV.observation_spec(), ENV.num_actions, 3, Preset(optimizer="sgd"))

# Always taking action 0: from start state c (= the correct action) the agent walks branch
# b = (c == 0) and gets +1 (b = 1) or -1 (b = 0) on the 3rd step. State indices: start = c,
# after k steps on branch b: 2 + 2 (k - 1) + b. True values v(s) = gamma^(steps left - 1) * reward.
TRUE_VALUES = {0: GAMMA**2, 3: GAMMA, 5: 1.0, 1: -(GAMMA**2), 2: -GAMMA, 4: -1.0}


@pytest.fixture(scope="module")
def trajectories():
  """N trajectories [N, T, B] of the always-0 policy on the chain."""
  actor_params = CRITIC.init(jax.random.PRNGKey(0), jnp.zeros((), jnp.int32)).params
  logits = np.zeros(actor_params["table"]["logits"].shape, np.float32)
  logits[:, 1] = -1e4
  actor_params = {"table": {**actor_params["table"], "logits": jnp.asarray(logits)}}

  @jax.jit
  def collect(key):
    params_key, actor_key, key = jax.random.split(key, 3)
    env_params = ENV.sample_params(params_key)
    actor = rollout_lib.init_actor(ENV, env_params, actor_key, B)
    trajs = []
    for k in jax.random.split(key, N):
      actor, traj, _, _ = rollout_lib.rollout(
        ENV, CRITIC, AgentState(actor_params, None), env_params, actor, k, T
      )
      trajs.append(traj)
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trajs)

  trajs = collect(jax.random.PRNGKey(3))
  obs = np.asarray(trajs.observation)
  assert (np.asarray(trajs.action) == 0).all()
  assert {0, 1} <= set(obs.ravel()), "both branches should appear"
  return trajs


def _lambda_returns(reward, done, values):
  """Independent lambda-returns [T, B] of one trajectory (values [T+1, B])."""
  g = values[-1]
  out = np.zeros_like(reward)
  for t in reversed(range(reward.shape[0])):
    disc = GAMMA * (1.0 - done[t])
    g = reward[t] + disc * ((1 - LAMBDA) * values[t + 1] + LAMBDA * g)
    out[t] = g
  return out


def test_first_critic_step_by_hand(trajectories):
  state = CRITIC.init(jax.random.PRNGKey(1), jnp.zeros((), jnp.int32))
  new_state, loss = jax.jit(
    lambda s: meta_objective.critic_update(CRITIC, s, trajectories, GAMMA, LR, LAMBDA)
  )(state)
  # Values start at 0, so the targets are lambda-returns bootstrapped from 0, and one SGD
  # step on 1/2 mean (v - G)^2 moves v(s) by lr * sum_{visits of s} G / (N T B).
  obs = np.asarray(trajectories.observation)
  reward, done = np.asarray(trajectories.reward), np.asarray(trajectories.end)
  returns = np.stack([_lambda_returns(reward[n], done[n], np.zeros((T + 1, B))) for n in range(N)])
  np.testing.assert_allclose(float(loss), 0.5 * np.mean(returns**2), rtol=1e-5)
  expected = np.zeros(ENV.num_states)
  np.add.at(expected, obs[:, :-1].ravel(), LR * returns.ravel() / returns.size)
  np.testing.assert_allclose(new_state.params["table"]["value"], expected, rtol=1e-5, atol=1e-7)
  assert np.abs(expected).max() > 0.05
  # Only the value head trains.
  for name in ("logits", "y_logits"):
    np.testing.assert_array_equal(new_state.params["table"][name], state.params["table"][name])


def test_critic_converges_to_true_discounted_returns(trajectories):
  state = CRITIC.init(jax.random.PRNGKey(1), jnp.zeros((), jnp.int32))

  @jax.jit
  def train(state):
    def step(state, _):
      state, loss = meta_objective.critic_update(CRITIC, state, trajectories, GAMMA, LR, LAMBDA)
      return state, (loss, state.params["table"]["value"])

    return jax.lax.scan(step, state, None, length=300)

  _, (losses, values) = train(state)
  losses, values = np.asarray(losses), np.asarray(values)
  visited = sorted(set(np.asarray(trajectories.observation).ravel()))
  true = np.array([TRUE_VALUES[s] for s in visited])
  errors = np.abs(values[:, visited] - true).max(axis=1)  # [steps]
  assert errors[-1] < 1e-3, (values[-1, visited], true)
  # It moves steadily toward the truth, and its loss falls to ~0.
  assert errors[0] > 0.5 and errors[10] < errors[0] and errors[50] < errors[10] and errors[-1] < errors[50]
  assert losses[-1] < 1e-4 * losses[0] and losses[0] > 0.1


def test_critic_returns_bootstrap_a_truncation_and_stop_at_a_termination():
  """Known answer: the meta-objective's lambda-returns (gamma 0.5, lambda 0.95) with v(s) =
  10 s: a terminated step keeps its reward, a truncated one adds gamma v(final state), and
  neither lets the next episode's return in."""
  from inner_agents.types import Trajectory, Truncations

  critic = make_agent(specs.BoundedArray((), np.int32, 0, 5), 2, 3, Preset(optimizer="sgd"))
  params = critic.init(jax.random.PRNGKey(0), jnp.zeros((1,), jnp.int32)).params
  params = {"table": {**params["table"], "value": jnp.arange(6.0) * 10.0}}
  traj = Trajectory(
    observation=jnp.array([[1], [2], [0], [4]], jnp.int32),
    action=jnp.zeros((3, 1), jnp.int32),
    reward=jnp.array([[1.0], [2.0], [3.0]]),
    discount=jnp.array([[1.0], [1.0], [0.0]]),  # step 1 truncated (reached 5), step 2 terminated
    end=jnp.array([[0.0], [1.0], [1.0]]),
  )
  _, unbounded = meta_objective.critic_values(critic, params, traj)
  np.testing.assert_allclose(unbounded[:, 0], [20.0, 0.0, 40.0])  # no truncations recorded: next values
  for index in ([1], [1, 1, 1]):  # padding repeats the truncated step
    truncations = Truncations(jnp.array(index), jnp.full((len(index),), 5, jnp.int32))
    values, bootstrap = meta_objective.critic_values(critic, params, traj._replace(truncations=truncations))
    np.testing.assert_allclose(values[:, 0], [10.0, 20.0, 0.0, 40.0])
    np.testing.assert_allclose(bootstrap[:, 0], [20.0, 50.0, 40.0])
  returns = meta_objective.critic_returns(traj, bootstrap, 0.5, 0.95)
  g1 = 2.0 + 0.5 * 50.0
  np.testing.assert_allclose(returns[:, 0], [1.0 + 0.5 * (0.05 * 20.0 + 0.95 * g1), g1, 3.0], rtol=1e-6)
