"""Trainer: bookkeeping, determinism, and that A2C learns where the random rule cannot."""

import jax
import numpy as np
import pytest

from inner_agents import rollout as rollout_lib
from lpg import evaluation, rules
from lpg.configs import meta_test as meta_test_config


def _config(**overrides):
  config = meta_test_config.get_config()
  config.unlock()
  config.update(overrides)
  return config


def test_rollout_bookkeeping_on_a_chain():
  trainer = evaluation.make_trainer(
    "chain_short", rules.make_rule("random"), _config(num_envs=8, unroll_length=40)
  )
  state = trainer.init(jax.random.PRNGKey(0))
  length = int(state.env_params.length)
  actor, traj, outputs, stats = jax.jit(
    lambda s: rollout_lib.rollout(
      trainer.env, trainer.agent, s.agent.params, s.env_params, s.actor, s.key, trainer.unroll_length
    )
  )(state)
  assert traj.observation.shape == (41, 8) and traj.action.shape == (40, 8)
  assert outputs.logits.shape == (41, 8, 2) and outputs.y_logits.shape == (41, 8, 30)
  # Every chain episode lasts exactly `length` steps and ends with reward +-1.
  done = np.asarray(traj.done)
  for b in range(8):
    ends = np.flatnonzero(done[:, b])
    np.testing.assert_array_equal(ends, np.arange(length - 1, 40, length))
    assert set(np.asarray(traj.reward)[ends, b]) <= {-1.0, 1.0}
  assert int(stats.episode_count) == done.sum()
  np.testing.assert_allclose(float(stats.return_sum), np.asarray(traj.reward)[done == 1].sum())
  finished = ~np.isnan(np.asarray(actor.last_return))
  assert finished.all()


def test_training_is_deterministic_for_a_seed():
  config = _config(num_envs=8, num_curve_points=2)
  runs = [evaluation.evaluate("tabular_dense", rules.make_rule("a2c"), {}, config, 2, 3200) for _ in range(2)]
  np.testing.assert_array_equal(runs[0].curve, runs[1].curve)
  np.testing.assert_array_equal(runs[0].final_return, runs[1].final_return)
  assert not np.array_equal(runs[0].curve[0], runs[0].curve[1])  # seeds differ


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
  a2c = evaluation.evaluate(env_name, rules.make_rule("a2c"), {}, config, 3, env_steps)
  rnd = evaluation.evaluate(env_name, rules.make_rule("random"), {}, config, 3, env_steps)
  a2c_mean, rnd_mean = np.nanmean(a2c.final_return), np.nanmean(rnd.final_return)
  assert np.all(np.isfinite(a2c.final_return))
  assert a2c_mean > rnd_mean + margin, (a2c.final_return, rnd.final_return)
  # Every A2C seed learns, not just the average.
  assert np.min(a2c.final_return) > np.max(rnd.final_return)
