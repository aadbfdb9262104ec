"""Per-environment hyperparameter bandit p(alpha|E) of LPG (Oh et al. 2020, Eq. 6).

Each environment E keeps its own bandit over a grid of agent hyperparameters
alpha = (alpha_lr, alpha_y) (Table 3). At the start of a lifetime an arm is drawn from

  p(alpha|E) ∝ exp((R(alpha,E) + rho / sqrt(N(alpha,E))) / tau),

where R is the mean final return of the last `window` (=10) lifetimes that used alpha in E
and N the number of lifetimes simulated with alpha in E; the bandit is updated whenever a
lifetime ends. Everything here is a pure function of array state, so a (vmapped) batch of
bandits can live inside a jitted meta-training step. Choices the paper leaves open are
documented in `scores`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

WINDOW = 10
TAU = 0.1
RHO = 0.2


class BanditState(NamedTuple):
  """State of one bandit; add a leading axis (and vmap) for several environments.

  returns: [num_arms, window] float32 ring buffer of the final returns of the last
    `window` lifetimes that used each arm (slots beyond min(count, window) are unused).
  count: [num_arms] int32 N(alpha,E), lifetimes ended with each arm.
  next_slot: [num_arms] int32 ring-buffer position the next return of each arm goes to.
  """

  returns: chex.Array
  count: chex.Array
  next_slot: chex.Array


def init(num_arms: int, window: int = WINDOW) -> BanditState:
  """An empty bandit: no arm tried yet."""
  return BanditState(
    returns=jnp.zeros((num_arms, window), jnp.float32),
    count=jnp.zeros((num_arms,), jnp.int32),
    next_slot=jnp.zeros((num_arms,), jnp.int32),
  )


def mean_returns(state: BanditState) -> chex.Array:
  """[num_arms] float32 R(alpha,E): mean of the stored returns; 0 for untried arms."""
  window = state.returns.shape[-1]
  n = jnp.minimum(state.count, window)  # [num_arms]
  valid = jnp.arange(window) < n[:, None]  # [num_arms, window]
  total = jnp.sum(jnp.where(valid, state.returns, 0.0), axis=-1)
  return total / jnp.maximum(n, 1).astype(jnp.float32)


def scores(
  state: BanditState, tau: chex.Numeric = TAU, rho: chex.Numeric = RHO, normalize: bool = True
) -> chex.Array:
  """[num_arms] float32 logits of p(alpha|E) = softmax(scores).

  Tried arms score (R + rho / sqrt(N)) / tau. Choices the paper leaves open:
  (a) Untried arms (N = 0) come first: while any remain, they score 0 and every tried arm
      -inf, so the draw is uniform over the untried arms (each arm is tried once before
      the Eq. 6 rule takes over).
  (b) With `normalize`, R is min-max normalised over the tried arms, so R ∈ [0, 1]
      (0 for all arms when every tried arm has the same R). Raw returns range from ~1 to
      ~300 across environments, while tau = 0.1 and rho = 0.2 assume a unit scale.
  """
  tried = state.count > 0
  r = mean_returns(state)
  if normalize:
    lo = jnp.min(jnp.where(tried, r, jnp.inf))
    hi = jnp.max(jnp.where(tried, r, -jnp.inf))
    span = hi - lo
    r = jnp.where(span > 0, (r - lo) / jnp.where(span > 0, span, 1.0), 0.0)
  bonus = rho / jnp.sqrt(jnp.maximum(state.count, 1).astype(jnp.float32))
  eq6 = (r + bonus) / tau
  explore = jnp.where(tried, -jnp.inf, 0.0)
  return jnp.where(jnp.all(tried), eq6, explore).astype(jnp.float32)


def probs(
  state: BanditState, tau: chex.Numeric = TAU, rho: chex.Numeric = RHO, normalize: bool = True
) -> chex.Array:
  """[num_arms] float32 p(alpha|E)."""
  return jax.nn.softmax(scores(state, tau, rho, normalize))


def sample(
  state: BanditState,
  key: chex.PRNGKey,
  tau: chex.Numeric = TAU,
  rho: chex.Numeric = RHO,
  normalize: bool = True,
) -> chex.Array:
  """[] int32 arm drawn from p(alpha|E), for a lifetime about to start."""
  return jax.random.categorical(key, scores(state, tau, rho, normalize)).astype(jnp.int32)


def update(state: BanditState, arm: chex.Numeric, final_return: chex.Numeric) -> BanditState:
  """Records the final return of one ended lifetime that used `arm` ([] int).

  The caller should pass a finite return: a NaN would poison the arm's mean.
  """
  window = state.returns.shape[-1]
  slot = state.next_slot[arm]
  return BanditState(
    returns=state.returns.at[arm, slot].set(jnp.asarray(final_return, jnp.float32)),
    count=state.count.at[arm].add(1),
    next_slot=state.next_slot.at[arm].set((slot + 1) % window),
  )


def update_many(
  state: BanditState, arms: chex.Array, final_returns: chex.Array, ended: chex.Array
) -> BanditState:
  """Applies `update` for each lifetime l with ended[l], in order l = 0..L-1.

  arms: [L] int arm of each lifetime; final_returns: [L] float; ended: [L] bool.
  Lifetimes with ended[l] False leave the state unchanged.
  """

  def step(s: BanditState, x: tuple[chex.Array, chex.Array, chex.Array]) -> tuple[BanditState, None]:
    arm, ret, done = x
    new = update(s, arm, ret)
    return jax.tree.map(lambda a, b: jnp.where(done, a, b), new, s), None

  xs = (jnp.asarray(arms, jnp.int32), jnp.asarray(final_returns, jnp.float32), jnp.asarray(ended, bool))
  state, _ = jax.lax.scan(step, state, xs)
  return state


def arm_grid(learning_rates: Sequence[float], y_costs: Sequence[float]) -> np.ndarray:
  """[len(lr) * len(y), 2] float32 arms (alpha_lr, alpha_y); arm = i_lr * len(y) + i_y."""
  return np.asarray(list(itertools.product(learning_rates, y_costs)), np.float32).reshape(-1, 2)


def arm_hparams(grid: chex.Array, arm: chex.Numeric) -> tuple[chex.Array, chex.Array]:
  """(learning_rate, y_cost), each [] float32 (or arm's shape), of `arm` in `grid` [A, 2]."""
  values = jnp.asarray(grid, jnp.float32)[arm]
  return values[..., 0], values[..., 1]
