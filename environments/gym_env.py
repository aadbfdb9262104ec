"""Any Gymnasium environment with discrete actions, as a `HostEnvironment`.

B copies run in a `gymnasium.vector.SyncVectorEnv` (`gymnasium.make_vec(...,
vectorization_mode="sync")`) with same-step auto-reset, as in the JAX envs. Observations:
  - `Box` uint8 images, HxW or HxWxC: uint8 channels-last [B, H, W, C] (C = 1 for HxW);
  - any other `Box`: flattened to float32 [B, D];
  - `Discrete(n)`: one-hot float32 [B, n].
Actions must be `Discrete`. `Scores` reports each episode's return at its LAST step;
rewards are not clipped. ALE ids (`ALE/Breakout-v5`) work here too, without the Atari
preprocessing of `environments.atari`.
"""

from __future__ import annotations

import contextlib

import gymnasium
import numpy as np
from dm_env import specs
from gymnasium import spaces

from environments import host
from environments.errors import UnknownEnvironmentError
from environments.types import TimeStep


def _one_line(text: str) -> str:
  return " ".join(str(text).split())


class GymEnvironment(host.HostEnvironment):
  """B copies of a Gymnasium env (Box or Discrete observations, Discrete actions)."""

  def __init__(self, env_id: str, num_envs: int, **make_kwargs):
    """Builds the vector env; no episode runs until `reset`.

    Args:
      env_id: a registered Gymnasium id, e.g. 'CartPole-v1', 'FrozenLake-v1', 'ALE/Pong-v5'.
      num_envs: B.
      **make_kwargs: passed to `gymnasium.make` for each copy (e.g. max_episode_steps=50).

    Raises:
      UnknownEnvironmentError: (one line) for an id Gymnasium does not know.
      host.UnsupportedEnvironmentError: for non-discrete actions or unsupported observations.
    """
    if num_envs < 1:
      raise ValueError(f"num_envs must be positive, got {num_envs}")
    self.env_id = env_id
    self.name = f"gym/{env_id}"
    self.num_envs = num_envs
    if env_id.startswith("ALE/"):
      with contextlib.suppress(ImportError):  # Importing ale_py registers the ALE/ ids.
        import ale_py  # noqa: F401
    try:
      self._env = gymnasium.make_vec(
        env_id,
        num_envs,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": gymnasium.vector.AutoresetMode.SAME_STEP},
        **make_kwargs,
      )
    except gymnasium.error.UnregisteredEnv as e:
      raise UnknownEnvironmentError(f"unknown Gymnasium environment {env_id!r}: {_one_line(e)}") from None
    try:
      self._check_spaces(self._env.single_observation_space, self._env.single_action_space)
    except host.UnsupportedEnvironmentError:
      self.close()
      raise
    self._obs_space = self._env.single_observation_space
    self._act_space = self._env.single_action_space
    self._returns = np.zeros(num_envs, np.float64)
    self._action = None
    self._started = False

  def _check_spaces(self, obs_space: spaces.Space, act_space: spaces.Space) -> None:
    if not isinstance(act_space, spaces.Discrete):
      kind = "continuous" if isinstance(act_space, spaces.Box) else "non-discrete"
      raise host.UnsupportedEnvironmentError(
        f"{self.name} has {kind} actions ({act_space}); only Discrete action spaces are supported"
      )
    if not isinstance(obs_space, spaces.Box | spaces.Discrete):
      raise host.UnsupportedEnvironmentError(
        f"{self.name} has observation space {_one_line(obs_space)}; only Box and Discrete are supported"
      )

  def _is_image(self) -> bool:
    space = self._obs_space
    return isinstance(space, spaces.Box) and space.dtype == np.uint8 and len(space.shape) in (2, 3)

  @property
  def num_actions(self) -> int:
    return int(self._act_space.n)

  def observation_spec(self) -> specs.Array:
    space = self._obs_space
    if isinstance(space, spaces.Discrete):
      return specs.BoundedArray((int(space.n),), np.float32, 0.0, 1.0, name="observation")
    if self._is_image():
      shape = space.shape if len(space.shape) == 3 else (*space.shape, 1)
      return specs.BoundedArray(shape, np.uint8, 0, 255, name="observation")
    return specs.Array((int(np.prod(space.shape)),), np.float32, name="observation")

  def describe(self) -> str:
    spec = self.observation_spec()
    dtype = np.dtype(spec.dtype).name
    return f"Gymnasium {self.env_id}: observation {dtype}{list(spec.shape)}, {self.num_actions} actions"

  def _observation(self, obs: np.ndarray) -> np.ndarray:
    """The batched observation in the layout of `observation_spec`."""
    space = self._obs_space
    if isinstance(space, spaces.Discrete):
      index = np.asarray(obs, np.int64) - int(space.start)
      return np.eye(int(space.n), dtype=np.float32)[index]
    if self._is_image():
      return np.ascontiguousarray(
        np.asarray(obs, np.uint8).reshape((self.num_envs, *self.observation_spec().shape))
      )
    return np.asarray(obs, np.float32).reshape(self.num_envs, -1)

  def reset(self, seed: int) -> TimeStep:
    obs, _ = self._env.reset(seed=[int(s) for s in host.env_seeds(seed, self.num_envs)])
    self._returns[:] = 0.0
    self._action = None
    self._started = True
    return host.first_timestep(self._observation(obs))

  def send(self, action: np.ndarray) -> None:
    if not self._started:
      raise RuntimeError(f"{self.name}: call reset() before send()")
    if self._action is not None:
      raise RuntimeError(f"{self.name}: send() twice without recv()")
    self._action = self._check_action(action).astype(np.int64) + int(self._act_space.start)

  def recv(self) -> host.HostStep:
    if self._action is None:
      raise RuntimeError(f"{self.name}: recv() without send()")
    obs, reward, terminated, truncated, info = self._env.step(self._action)
    self._action = None
    reward = np.asarray(reward, np.float64)
    last = np.asarray(terminated, bool) | np.asarray(truncated, bool)
    self._returns += reward
    scores = host.Scores(done=last, score=np.where(last, self._returns, 0.0))
    self._returns[last] = 0.0
    observation = self._observation(obs)
    final = observation
    if last.any():  # Gymnasium's same-step auto-reset keeps the episodes' last observations.
      ended = np.asarray(info["_final_obs"], bool)
      final_obs = np.stack([info["final_obs"][i] if ended[i] else obs[i] for i in range(self.num_envs)])
      final = self._observation(final_obs.astype(np.asarray(obs).dtype, copy=False))
    ts = host.transition_timestep(observation, reward, terminated, truncated)
    return host.HostStep(ts, scores, final)

  def close(self) -> None:
    if getattr(self, "_env", None) is not None:
      self._env.close()
      self._env = None
