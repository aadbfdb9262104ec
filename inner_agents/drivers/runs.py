"""What a driver reports of a set of training runs, and the final-return measure they share."""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import jax.numpy as jnp
import numpy as np


class TrainingRuns(NamedTuple):
  """Fresh agents trained one per seed.

  curve: float [S, P] mean return of the episodes completed during each curve point's
    updates (NaN where none completed).
  final_return: float [S] `final_return` of each seed's envs at the end.
  params: per seed, the trained agent's parameters (host drivers keep them), or None.
  """

  curve: np.ndarray
  final_return: np.ndarray
  params: tuple[Any, ...] | None = None


def mean_over_seeds(returns: np.ndarray) -> float:
  """The mean of the seeds' finite returns at a curve point (NaN if none), for progress."""
  finite = np.isfinite(returns)
  return float(np.mean(returns[finite])) if finite.any() else float("nan")


def final_return(last_return: chex.Array) -> chex.Array:
  """Mean over envs of each env's latest completed episode return (NaN if none finished).

  last_return: [B], NaN for envs that completed no episode; numpy or JAX.
  """
  xp = np if isinstance(last_return, np.ndarray) else jnp
  finished = ~xp.isnan(last_return)
  total = xp.sum(xp.where(finished, last_return, 0.0))
  return xp.where(xp.any(finished), total / xp.maximum(xp.sum(finished), 1), xp.nan)
