"""Data that flows between environments, drivers, inner agents and update rules."""

from __future__ import annotations

from typing import NamedTuple

import chex


class AgentOutput(NamedTuple):
  """What a policy agent predicts for a batch of observations [...].

  logits: [..., A] policy logits.
  y_logits: [..., m] logits of the categorical prediction y (LPG's y = softmax(y_logits)).
  value: [...] scalar state value v(s) (its critic; used by value-based rules such as A2C).
  baseline: [...] or None, the LPG paper's Eq. 7 head f(s), which regresses onto pi_hat
    and is subtracted from it at meta-test (None where the agent has no such head).
  """

  logits: chex.Array
  y_logits: chex.Array
  value: chex.Array
  baseline: chex.Array | None = None


class Truncations(NamedTuple):
  """The states a trajectory's truncated episodes reached (cut by a time limit), compactly:
  K entries, K static (a bound on how many a [T, B] trajectory can hold).

  index: int32 [K] flat indices t * B + b of truncated steps; entries past the real ones
    repeat a real one (or step 0), with its observation, so a scatter by index is exact
    where a step was truncated.
  observation: [K, ...] the observations those steps reached, before the auto-reset.
  """

  index: chex.Array
  observation: chex.Array


class Trajectory(NamedTuple):
  """T steps of B environments, time-major, as an on-policy driver records them.

  observation: [T+1, B, ...] s_0 .. s_T; s_T is the bootstrap observation. After a step
    that ends an episode, the next observation is the first of the next episode (auto-reset).
  action: int32 [T, B] a_t.
  reward: float32 [T, B] r_{t+1}, the reward for taking a_t in s_t.
  discount: float32 [T, B] the environment's discount after a_t: 0 where the episode
    terminated (nothing to bootstrap from), 1 otherwise, including a time-limit truncation.
  end: float32 [T, B] 1 where the episode ended after a_t, terminated or truncated (the LPG
    paper's d_t): no return and no backward recurrence crosses it.
  truncations: where episodes were truncated (`end` with a nonzero discount), the
    observations they reached (`Truncations`), which a learner bootstraps from; None where
    the driver recorded none (nobody bootstraps, no time limit, or none happened).
  """

  observation: chex.Array
  action: chex.Array
  reward: chex.Array
  discount: chex.Array
  end: chex.Array
  truncations: Truncations | None = None


class Windows(NamedTuple):
  """B windows of T consecutive transitions of a dataset, time-major, as the offline driver
  samples them (episodes follow each other, as in a rollout with auto-reset).

  observation: [T+1, B, ...] s_0 .. s_T; after a step that ends an episode, the next
    observation is the first of the next episode.
  next_observation: [T, B, ...] the state a_t reached (for an episode's last step, its final
    state, not the next episode's first).
  action, reward, discount, end: [T, B] as in `Trajectory` (discount 0 where the episode
    terminated, 1 otherwise; end 1 where it terminated or was truncated).
  """

  observation: chex.Array
  next_observation: chex.Array
  action: chex.Array
  reward: chex.Array
  discount: chex.Array
  end: chex.Array
