"""The dm_env adapter: dm_env's own contract tests, episode ends and restarts, truncation."""

import dm_env
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import absltest
from dm_env import test_utils
from env_testing import make as make_env

import environments
from environments import chain
from environments.dm_env_adapter import DmEnvAdapter, make_dm_env


class _Contract(test_utils.EnvironmentTestMixin):
  """dm_env.test_utils' checks (specs, FIRST/LAST contract) for one registered env."""

  env_name: str

  def make_object_under_test(self):
    return DmEnvAdapter(make_env(self.env_name), seed=0)

  def make_action_sequence(self):
    # Long enough to end episodes: chains end within 30 steps, these grids within 50.
    rng = np.random.default_rng(0)
    num_actions = self.environment.action_spec().num_values
    for _ in range(120):
      yield np.int32(rng.integers(num_actions))

  def test_episodes_end(self):
    """The action sequence reaches LAST and restarts afterwards (the mixin only logs)."""
    step = self.reset_environment()
    step_types = []
    for action in self.make_action_sequence():
      step = self.step_environment(action)
      step_types.append(step.step_type)
    ends = [i for i, s in enumerate(step_types) if s is dm_env.StepType.LAST]
    assert ends and ends[-1] < len(step_types) - 1
    assert all(step_types[i + 1] is dm_env.StepType.FIRST for i in ends)


class TabularGridTest(_Contract, absltest.TestCase):
  env_name = "tabular_sparse"


class MapGridTest(_Contract, absltest.TestCase):
  env_name = "random_small_sparse"


class ChainTest(_Contract, absltest.TestCase):
  env_name = "chain_short"


class DistractorChainTest(_Contract, absltest.TestCase):
  env_name = "chain_distractor"


def test_chain_episode_end_and_restart():
  env = DmEnvAdapter(
    make_env("chain_short"), seed=3, params=chain.ChainParams(length=jnp.asarray(3, jnp.int32))
  )
  step = env.step(0)  # Before any reset: starts an episode, the action is ignored.
  assert step.first() and step.reward is None and step.discount is None
  for _ in range(3):
    correct = int(step.observation)  # The start index is the correct action.
    assert correct in (0, 1)
    mids = [env.step(correct), env.step(0)]
    assert all(s.mid() and s.reward == 0.0 and s.discount == 1.0 for s in mids)
    last = env.step(1)
    assert last.last() and last.reward == 1.0 and last.discount == 0.0
    assert isinstance(last.reward, np.ndarray) and last.reward.dtype == np.float32
    assert last.discount.dtype == np.float32
    # No auto-reset: the LAST step shows its own terminal state, 2 + 2 (3 - 1) + 1.
    assert int(last.observation) == 7
    step = env.step(1)  # Action ignored; a new episode.
    assert step.first()
  # Choosing wrong gives -1.
  wrong = 1 - int(step.observation)
  for _ in range(2):
    env.step(wrong)
  last = env.step(wrong)
  assert last.last() and last.reward == -1.0 and int(last.observation) == 6


def test_truncation_has_discount_one():
  env = DmEnvAdapter(make_env("tabular_sparse"), seed=0)  # Truncates after 50 steps.
  first = env.reset()
  assert first.first()
  for t in range(1, 51):
    step = env.step(0)  # Staying never collects.
    assert int(step.observation) == int(first.observation)
    if t < 50:
      assert step.mid()
  assert step.last() and step.discount == 1.0 and step.reward == 0.0
  assert env.step(0).first()


def test_observations_are_numpy_with_spec_dtypes():
  env = DmEnvAdapter(make_env("random_small_sparse"), seed=1)
  step = env.reset()
  assert type(step.observation) is np.ndarray
  env.observation_spec().validate(step.observation)
  step = env.step(np.int64(3))  # Any integer type.
  for value, spec in [
    (step.observation, env.observation_spec()),
    (step.reward, env.reward_spec()),
    (step.discount, env.discount_spec()),
  ]:
    assert type(value) is np.ndarray
    spec.validate(value)


def test_invalid_action():
  env = DmEnvAdapter(make_env("chain_short"), seed=0)
  env.reset()
  with pytest.raises(ValueError):
    env.step(2)
  with pytest.raises(ValueError):
    env.step(-1)


def test_seeding_and_params():
  base = make_env("tabular_sparse")
  a, b, c = (DmEnvAdapter(base, seed=s) for s in (5, 5, 6))
  assert np.array_equal(a.params.object_cell, b.params.object_cell)
  assert a.params.start_cell == b.params.start_cell
  trajectories = []
  for env in (a, b, c):
    steps = [env.reset()] + [env.step(i % 9) for i in range(20)]
    trajectories.append([int(s.observation) for s in steps])
  assert trajectories[0] == trajectories[1]
  assert trajectories[0] != trajectories[2]  # Another lifetime: another layout.


def test_make_dm_env():
  env = make_dm_env("chain_long", seed=2)
  assert isinstance(env, dm_env.Environment)
  assert env.action_spec().num_values == 2
  assert env.observation_spec() == env.env.observation_spec()
  assert 5 <= int(env.params.length) <= 50
  assert env.reset().first()
  assert environments.make_dm_env is make_dm_env and environments.DmEnvAdapter is DmEnvAdapter
  with pytest.raises(ValueError, match="unknown environment"):
    make_dm_env("no_such_env")
