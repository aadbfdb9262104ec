"""The values an agent bootstraps from after each step of a trajectory, truncations included."""

from __future__ import annotations

from collections.abc import Callable

import chex
import jax
import jax.numpy as jnp

from inner_agents.types import Trajectory


def max_truncations(max_episode_steps: int | None, num_envs: int, unroll_length: int) -> int:
  """An upper bound on the truncated steps of one [T, B] trajectory: an env's truncations
  are at least max_episode_steps apart, so it has at most ceil(T / limit) in T steps."""
  if max_episode_steps is None:
    return 0
  return min(num_envs * -(-unroll_length // max_episode_steps), num_envs * unroll_length)


def truncated(trajectory: Trajectory) -> chex.Array:
  """bool [T, B]: the steps whose episode a time limit cut (an end with a nonzero discount)."""
  return (trajectory.end > 0) & (trajectory.discount > 0)


def bootstrap_values(
  value_fn: Callable[[chex.Array], chex.Array], trajectory: Trajectory, next_values: chex.Array
) -> chex.Array:
  """v_tp1 [T, B]: the value of the state each step reached.

  next_values [T, B] are v(observation[t + 1]), which is that state unless the step ended
  an episode (then it is the next episode's first). Where an episode was truncated the
  value is value_fn of the observation it reached (`trajectory.truncations`, K of them:
  value_fn runs on K observations); after a termination the bootstrap is discounted to
  zero, so next_values stay, and so they do where the driver recorded no truncations.
  A trajectory without a truncation skips value_fn (`lax.cond`; under vmap both run).
  """
  if trajectory.truncations is None:
    return next_values
  t, b = next_values.shape
  cut = truncated(trajectory)

  def with_truncations() -> chex.Array:
    values = value_fn(trajectory.truncations.observation)  # [K]
    at_truncations = jnp.zeros((t * b,), next_values.dtype).at[trajectory.truncations.index].set(values)
    return jnp.where(cut, at_truncations.reshape(t, b), next_values)

  return jax.lax.cond(jnp.any(cut), with_truncations, lambda: next_values)
