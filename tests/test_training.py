"""The on-policy JAX driver: bookkeeping, final observations, determinism, given env
params, and that A2C learns where the random rule cannot."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lpg  # noqa: F401  Registers the LPG rules.
from environments import grid_world
from harness import config as meta_test_config
from harness import evaluation
from inner_agents.drivers import on_policy
from inner_agents.rules import registry

AGENT = "actor_critic"


def _config(**overrides):
  config = meta_test_config.get_config()
  config.unlock()
  config.update(overrides)
  return config


def _rule(name):
  return registry.resolve(name)[0]


def _rollout(trainer, state, final_observations=True):
  return jax.jit(
    lambda s: on_policy.rollout(
      trainer.env,
      trainer.agent,
      s.agent,
      s.env_params,
      s.actor,
      s.key,
      trainer.unroll_length,
      final_observations,
    )
  )(state)


def test_rollout_bookkeeping_on_a_chain():
  trainer = evaluation.make_trainer(
    "chain_short", AGENT, _rule("random"), _config(num_envs=8, unroll_length=40)
  )
  state = trainer.init(jax.random.PRNGKey(0))
  length = int(state.env_params.length)
  actor, traj, outputs, stats = _rollout(trainer, state)
  assert traj.observation.shape == (41, 8) and traj.action.shape == (40, 8)
  assert outputs.logits.shape == (41, 8, 2) and outputs.y_logits.shape == (41, 8, 30)
  # Every chain episode lasts exactly `length` steps, ends with reward +-1 and terminates.
  end = np.asarray(traj.end)
  for b in range(8):
    ends = np.flatnonzero(end[:, b])
    np.testing.assert_array_equal(ends, np.arange(length - 1, 40, length))
    assert set(np.asarray(traj.reward)[ends, b]) <= {-1.0, 1.0}
  np.testing.assert_array_equal(np.asarray(traj.discount), 1.0 - end)  # chains terminate, never truncate
  assert int(stats.episode_count) == end.sum()
  np.testing.assert_allclose(float(stats.return_sum), np.asarray(traj.reward)[end == 1].sum())
  finished = ~np.isnan(np.asarray(actor.last_return))
  assert finished.all()


def _tiny_grid_trainer(max_steps, unroll_length):
  from inner_agents import registry as agents

  objects = (grid_world.ObjectSpec(0.0, 0.0, 0.0),)
  env = grid_world.GridWorld(
    spec=grid_world.GridWorldSpec(grid_world.open_layout(3, 4), objects, max_steps, "tabular")
  )
  agent = agents.make(AGENT, "tabular_dense", env.observation_spec(), env.num_actions)  # a table
  return on_policy.Trainer(env, agent, _rule("random"), 4, unroll_length, final_observations=True)


@pytest.mark.parametrize(
  "max_steps,unroll_length,ends",
  [(3, 7, [[0, 0, 1, 0, 0, 1, 0]]), (5, 4, [[0, 0, 0, 0], [1, 0, 0, 0]])],  # several per env; at most one
)
def test_rollout_records_the_state_a_truncated_episode_reached(max_steps, unroll_length, ends):
  """On a grid with a short time limit: episodes are LAST every max_steps steps with
  discount 1 (truncated), the next observation is the new episode's start, and
  `truncations` hold the observations the truncated steps reached before the reset: the
  same as observing every step with `step_autoreset`. With a limit shorter than T an env
  can be truncated several times in a rollout, else once at most (two ways of recording)."""
  trainer = _tiny_grid_trainer(max_steps, unroll_length)
  env, state = trainer.env, trainer.init(jax.random.PRNGKey(1))
  step = jax.vmap(env.step_autoreset, in_axes=(0, 0, None))
  first = np.asarray(state.actor.observation)  # a tabular grid starts every episode of a run alike
  for want_ends in ends:
    env_state = state.actor.env_state
    state, traj, _, _ = jax.jit(trainer.act)(state)
    end = np.asarray(traj.end)
    np.testing.assert_array_equal(end[:, 0], want_ends)
    np.testing.assert_array_equal(np.asarray(traj.discount), 1.0)
    obs = np.asarray(traj.observation)
    every = []
    for t in range(unroll_length):
      env_state, _, reached = step(env_state, traj.action[t], state.env_params)
      every.append(np.asarray(reached))
    every = np.stack(every).reshape(-1)
    index, final = np.asarray(traj.truncations.index), np.asarray(traj.truncations.observation)
    assert len(index) == 4 * -(-unroll_length // max_steps)  # the bound: ceil(T / limit) per env
    real = set(np.flatnonzero(end.reshape(-1)))
    assert real <= set(index)  # every truncated step is there, with what it reached
    np.testing.assert_array_equal(final[np.isin(index, list(real))], every[index[np.isin(index, list(real))]])
    assert all(i in real or end.reshape(-1)[i] == 0 for i in index)  # padding points at steps that were not
    start = np.broadcast_to(first, end.shape)
    if real:
      np.testing.assert_array_equal(obs[1:][end == 1], start[end == 1])
      assert (every[sorted(real)] != start.reshape(-1)[sorted(real)]).any()
  _, none, _, _ = _rollout(trainer, trainer.init(jax.random.PRNGKey(1)), False)
  assert none.truncations is None


def test_trainer_records_final_observations_only_where_they_are_used():
  config = _config(num_envs=2)
  trainer = lambda env, rule: evaluation.make_trainer(env, AGENT, _rule(rule), config)  # noqa: E731
  assert trainer("tabular_dense", "a2c").records_final_observations  # A2C bootstraps from v
  assert not trainer("tabular_dense", "random").records_final_observations  # nothing reads v
  assert not trainer("tabular_dense", "lpg_init").records_final_observations
  # Chains never truncate: asked for, a rollout records none.
  chain = trainer("chain_short", "a2c")
  state = chain.init(jax.random.PRNGKey(0))
  assert _rollout(chain, state)[1].truncations is None


def test_given_env_params_are_used():
  trainer = evaluation.make_trainer("chain_short", AGENT, _rule("random"), _config(num_envs=2))
  params = trainer.env.sample_params(jax.random.PRNGKey(5))
  params = params.replace(length=jnp.asarray(7, jnp.int32))
  state = trainer.init(jax.random.PRNGKey(0), env_params=params)
  assert int(state.env_params.length) == 7
  drawn = trainer.init(jax.random.PRNGKey(0))
  jax.tree.map(np.testing.assert_array_equal, state.agent.params, drawn.agent.params)  # same draws otherwise


def test_training_is_deterministic_for_a_seed():
  config = _config(num_envs=8, num_curve_points=2)
  runs = [evaluation.evaluate("tabular_dense", AGENT, _rule("a2c"), {}, config, 2, 3200) for _ in range(2)]
  np.testing.assert_array_equal(runs[0].curve, runs[1].curve)
  np.testing.assert_array_equal(runs[0].final_return, runs[1].final_return)
  assert not np.array_equal(runs[0].curve[0], runs[0].curve[1])  # seeds differ
  assert runs[0].agent == AGENT and runs[0].agent_description == "actor_critic(table)"


def test_schedule_covers_the_requested_steps():
  assert evaluation.schedule(10_000, 1280, 20) == (1, 8)
  chunk, points = evaluation.schedule(1_000_000, 1280, 20)
  assert chunk * points * 1280 >= 1_000_000 and points == 20


@pytest.mark.parametrize(
  "env_name,env_steps,margin",
  [("tabular_dense", 250_000, 4.0), ("chain_short", 100_000, 0.7)],
)
def test_a2c_learns_clearly_above_random(env_name, env_steps, margin):
  config = _config(num_curve_points=2)
  a2c = evaluation.evaluate(env_name, AGENT, _rule("a2c"), {}, config, 3, env_steps)
  rnd = evaluation.evaluate(env_name, AGENT, _rule("random"), {}, config, 3, env_steps)
  a2c_mean, rnd_mean = np.nanmean(a2c.final_return), np.nanmean(rnd.final_return)
  assert np.all(np.isfinite(a2c.final_return))
  assert a2c_mean > rnd_mean + margin, (a2c.final_return, rnd.final_return)
  # Every A2C seed learns, not just the average.
  assert np.min(a2c.final_return) > np.max(rnd.final_return)
