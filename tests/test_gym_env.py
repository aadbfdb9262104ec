"""GymEnvironment: shapes and dtypes, same-step auto-reset LAST semantics (termination vs
truncation), scores, observation conversions and the one-line errors."""

import numpy as np
import pytest

from environments import host, types
from environments.errors import UnknownEnvironmentError
from environments.gym_env import GymEnvironment

B = 3


def test_cartpole_specs_and_first_timestep():
  with GymEnvironment("CartPole-v1", B) as env:
    assert env.name == "gym/CartPole-v1" and env.num_envs == B and env.num_actions == 2
    assert env.observation_spec().shape == (4,) and env.observation_spec().dtype == np.float32
    assert env.action_spec().num_values == 2
    ts = env.reset(0)
    assert ts.observation.shape == (B, 4) and ts.observation.dtype == np.float32
    np.testing.assert_array_equal(ts.step_type, [types.FIRST] * B)
    assert ts.step_type.dtype == np.int8 and ts.reward.dtype == np.float32 and ts.discount.dtype == np.float32
    assert not ts.reward.any() and (ts.discount == 1).all()
    ts, scores, _ = env.step(np.zeros(B, np.int32))
    np.testing.assert_array_equal(ts.step_type, [types.MID] * B)
    assert ts.observation.shape == (B, 4) and ts.observation.dtype == np.float32
    assert scores.done.dtype == bool and scores.score.dtype == np.float64 and not scores.done.any()
    assert "\n" not in env.describe()


def test_termination_resets_in_the_same_step():
  """Always pushing left topples the pole: LAST with discount 0 and a fresh observation."""
  with GymEnvironment("CartPole-v1", B) as env:
    env.reset(1)
    returns, ended = np.zeros(B), np.zeros(B, bool)
    for _ in range(100):
      ts, scores, _ = env.step(np.zeros(B, np.int32))
      returns += ts.reward
      last = ts.step_type == types.LAST
      np.testing.assert_array_equal(ts.discount, np.where(last, 0.0, 1.0))
      np.testing.assert_array_equal(scores.done, last)
      np.testing.assert_array_equal(scores.score, np.where(last, returns, 0.0))
      # CartPole's resets draw every state variable from U(-0.05, 0.05).
      assert (np.abs(ts.observation[last]) <= 0.05).all()
      returns[last] = 0.0
      ended |= last
    assert ended.all()


def test_truncation_has_discount_one():
  """A time limit of 5 steps with alternating pushes: LAST with discount 1 every 5 steps."""
  with GymEnvironment("CartPole-v1", B, max_episode_steps=5) as env:
    env.reset(2)
    for t in range(15):
      ts, scores, _ = env.step(np.full(B, t % 2, np.int32))
      last = (t + 1) % 5 == 0
      np.testing.assert_array_equal(ts.step_type, [types.LAST if last else types.MID] * B)
      assert (ts.discount == 1).all()
      np.testing.assert_array_equal(scores.done, [last] * B)
      np.testing.assert_array_equal(scores.score, [5.0 if last else 0.0] * B)


def test_send_recv_equals_step_and_seeds_reproducible():
  with GymEnvironment("CartPole-v1", B) as a, GymEnvironment("CartPole-v1", B) as b:
    with pytest.raises(RuntimeError):
      a.send(np.zeros(B, np.int32))
    np.testing.assert_array_equal(a.reset(3).observation, b.reset(3).observation)
    rng = np.random.default_rng(0)
    for _ in range(40):
      action = rng.integers(0, 2, B)
      a.send(action)
      got, want = a.recv(), b.step(action)
      for x, y in zip((*got[0], *got[1], got[2]), (*want[0], *want[1], want[2])):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(RuntimeError):
      a.recv()
    with pytest.raises(ValueError):
      a.send(np.full(B, 2, np.int32))
    assert not np.array_equal(a.reset(3).observation, a.reset(4).observation)


def test_discrete_observations_are_one_hot():
  with GymEnvironment("FrozenLake-v1", 2) as env:
    assert env.observation_spec().shape == (16,) and env.num_actions == 4
    ts = env.reset(0)
    np.testing.assert_array_equal(ts.observation, np.eye(16, dtype=np.float32)[[0, 0]])
    for t in range(20):
      ts, _, _ = env.step(np.full(2, t % 4, np.int32))
      assert ts.observation.dtype == np.float32 and (ts.observation.sum(axis=1) == 1).all()


def test_continuous_actions_are_rejected():
  with pytest.raises(host.UnsupportedEnvironmentError) as error:
    GymEnvironment("Pendulum-v1", 1)
  message = str(error.value)
  assert isinstance(error.value, ValueError)
  assert "\n" not in message and message.startswith("gym/Pendulum-v1 has continuous actions (Box(")
  assert message.endswith("only Discrete action spaces are supported")


@pytest.mark.parametrize("env_id", ["CartPol-v1", "CartPole-v9", "NoSuchNamespace/Foo-v0"])
def test_unknown_id_is_one_line_error(env_id):
  with pytest.raises(UnknownEnvironmentError) as error:
    GymEnvironment(env_id, 1)
  message = str(error.value)
  assert "\n" not in message and repr(env_id) in message


@pytest.mark.parametrize(
  "make_kwargs, shape", [({}, (210, 160, 3)), ({"obs_type": "grayscale"}, (210, 160, 1))]
)
def test_image_observations_are_uint8_channels_last(make_kwargs, shape):
  pytest.importorskip("ale_py")
  with GymEnvironment("ALE/Pong-v5", 2, **make_kwargs) as env:
    assert env.observation_spec().shape == shape and env.observation_spec().dtype == np.uint8
    ts = env.reset(0)
    assert ts.observation.shape == (2, *shape) and ts.observation.dtype == np.uint8
    ts, _, _ = env.step(np.zeros(2, np.int32))
    assert ts.observation.shape == (2, *shape) and ts.observation.dtype == np.uint8
