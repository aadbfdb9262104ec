"""Host-side batched environments (numpy), used for meta-testing only.

A `HostEnvironment` steps B environments outside JAX (Atari through ale-py's vector env,
any Gymnasium env) and returns the same batched `environments.types.TimeStep` as the
JAX-native environments, in numpy:

  ts = env.reset(seed)                 # FIRST, reward 0, discount 1
  env.send(action)                     # int32 [B]; starts the step (async where possible)
  ts, scores, final = env.recv()       # finishes it; or `env.step(action)`

Auto-reset is same-step, as in the JAX envs: on the step that ends an episode, step_type
is LAST with that transition's reward and discount (0 on termination, 1 on a time-limit
truncation) and the observation is the first one of the next episode; every other step
is MID. `final_observation` is the observation each env reached before any reset (what a
learner bootstraps from at a truncation; the TimeStep's where no episode ended). `Scores`
reports what evaluation counts, which can differ from what learning sees: for Atari a
scored episode is a whole game (not one life) and its score is unclipped.

Observations: vectors are float32 [B, D]; images are uint8 channels-last [B, H, W, C].
"""

from __future__ import annotations

import abc
from typing import NamedTuple

import numpy as np
from dm_env import specs

from environments.types import FIRST, LAST, MID, TimeStep


class UnsupportedEnvironmentError(ValueError):
  """An environment that exists but that the host interface cannot drive (e.g. continuous actions)."""


class Scores(NamedTuple):
  """Scored episodes that ended at a step.

  done: bool [B], a scored episode ended at this step (Atari: a full game, not a life).
  score: float64 [B], that episode's undiscounted, unclipped return (0 where not done).
  """

  done: np.ndarray
  score: np.ndarray


class HostStep(NamedTuple):
  """What `recv` returns for one step of the B envs.

  timestep: the batched TimeStep (after a LAST step, the next episode's first observation).
  scores: the scored episodes that ended at this step.
  final_observation: [B, ...] the observation each env reached before any auto-reset.
  """

  timestep: TimeStep
  scores: Scores
  final_observation: np.ndarray


def first_timestep(observation: np.ndarray) -> TimeStep:
  """A batched FIRST TimeStep: reward 0, discount 1.

  Args:
    observation: [B, ...] the first observations.
  """
  num_envs = observation.shape[0]
  return TimeStep(
    step_type=np.full(num_envs, FIRST, np.int8),
    reward=np.zeros(num_envs, np.float32),
    discount=np.ones(num_envs, np.float32),
    observation=observation,
  )


def transition_timestep(
  observation: np.ndarray, reward: np.ndarray, terminated: np.ndarray, truncated: np.ndarray
) -> TimeStep:
  """A batched TimeStep after a step: LAST where terminated or truncated, else MID.

  Args:
    observation: [B, ...] (the next episode's first observation where LAST).
    reward: [B] the transition's reward.
    terminated: bool [B], the episode ended (discount 0).
    truncated: bool [B], the episode was cut by a time limit (discount 1).
  """
  terminated = np.asarray(terminated, bool)
  last = terminated | np.asarray(truncated, bool)
  return TimeStep(
    step_type=np.where(last, LAST, MID).astype(np.int8),
    reward=np.asarray(reward, np.float32),
    discount=np.where(terminated, 0.0, 1.0).astype(np.float32),
    observation=observation,
  )


class HostEnvironment(abc.ABC):
  """B environments stepped on the host in numpy; used for meta-testing only.

  Attributes:
    name: e.g. "atari/Breakout", "gym/CartPole-v1".
    num_envs: B.
  """

  name: str
  num_envs: int

  @property
  @abc.abstractmethod
  def num_actions(self) -> int:
    """Size of the discrete action set."""

  @abc.abstractmethod
  def observation_spec(self) -> specs.Array:
    """Spec of one (unbatched) observation."""

  def action_spec(self) -> specs.DiscreteArray:
    return specs.DiscreteArray(self.num_actions, dtype=np.int32, name="action")

  @abc.abstractmethod
  def reset(self, seed: int) -> TimeStep:
    """Starts all B episodes (seeded by `seed`); returns the FIRST TimeStep, batched [B]."""

  @abc.abstractmethod
  def send(self, action: np.ndarray) -> None:
    """Starts a step with int32 [B] actions (asynchronously where the backend allows)."""

  @abc.abstractmethod
  def recv(self) -> HostStep:
    """Finishes the step started by `send`: the batched TimeStep, the episodes scored and
    the observations reached before any auto-reset."""

  def step(self, action: np.ndarray) -> HostStep:
    """`send` then `recv`."""
    self.send(action)
    return self.recv()

  @abc.abstractmethod
  def close(self) -> None:
    """Releases the backend's resources."""

  @abc.abstractmethod
  def describe(self) -> str:
    """One line describing the environment (for `meta_test.py --list`)."""

  def __enter__(self) -> HostEnvironment:
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()

  def _check_action(self, action: np.ndarray) -> np.ndarray:
    """The actions as int32 [B], after checking shape and range."""
    action = np.asarray(action)
    if action.shape != (self.num_envs,) or not np.issubdtype(action.dtype, np.integer):
      raise ValueError(
        f"{self.name}: expected integer actions of shape ({self.num_envs},), got {action.dtype}{list(action.shape)}"
      )
    if action.size and (action.min() < 0 or action.max() >= self.num_actions):
      raise ValueError(f"{self.name}: actions must lie in [0, {self.num_actions}), got {action}")
    return action.astype(np.int32, copy=False)


def env_seeds(seed: int, num_envs: int) -> np.ndarray:
  """Distinct per-env seeds in [0, 2**31) derived from one seed (int64 [B]).

  Unlike the backends' `seed + i`, runs with seeds s and s + 1 share no env seed.
  """
  words = np.random.SeedSequence(seed).generate_state(num_envs, np.uint32)
  return (words & 0x7FFFFFFF).astype(np.int64)
