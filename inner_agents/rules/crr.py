"""Critic Regularized Regression's policy weights (Wang, Novikov, Zolna et al. 2020) as rules.

CRR maximises E_{(s,a)~B}[ f(Q, pi, s, a) log pi(a|s) ] over dataset actions (its Eq. 2):
a rule's pi_hat is exactly that f. With A(s, a) = Q(s, a) - V(s),

  binary (Eq. 3):       f = 1[A(s, a) > 0]              (acme: heaviside(A, 0), so A = 0 gives 0)
  exponential (Eq. 4):  f = min(exp(A(s, a) / beta), 20) (beta = 1; every public code clips at 20)
  behaviour cloning:    f = 1

and V(s) over the policy being trained, with discrete actions computed exactly (as RLlib's
'expectation', tianshou and trfl's sarse do, rather than from m sampled actions):

  mean:  V(s) = sum_a pi(a|s) Q(s, a)
  max:   V(s) = E_{a_1..a_m ~ pi}[ max_j Q(s, a_j) ]   (m = 4, the public codes' count)

The max is the exact expectation of the sampled maximum: with the actions sorted by Q and
F_k the policy's mass on the k lowest, max_j Q(a_j) = Q_(k) with probability F_k^m - F_{k-1}^m.
(The plain max over all actions would make binary-max weigh every action 0.)

The rules read the agent's action values q_t, its whole policy pi_t and the actions a_t
(`RuleInputs`); they do not assume on-policy data.
"""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp

from inner_agents.rules.base import RuleInputs, Targets, UpdateRule

WEIGHTS = ("exp", "binary")
BASELINES = ("mean", "max")
EXP_CLIP = 20.0  # min(exp(A / beta), 20): acme, d3rlpy, RLlib, tianshou.


def expected_max(q: chex.Array, pi: chex.Array, num_samples: int) -> chex.Array:
  """E_{a_1..a_m ~ pi}[max_j q(a_j)] over the last axis: q, pi [..., A] -> [...]."""
  order = jnp.argsort(q, axis=-1)
  q_sorted = jnp.take_along_axis(q, order, axis=-1)
  cdf = jnp.cumsum(jnp.take_along_axis(pi, order, axis=-1), axis=-1)
  cdf = jnp.minimum(cdf, 1.0)
  below = jnp.concatenate([jnp.zeros_like(cdf[..., :1]), cdf[..., :-1]], axis=-1)
  return jnp.sum(q_sorted * (cdf**num_samples - below**num_samples), axis=-1)


def advantage(
  q_t: chex.Array, pi_t: chex.Array, a_t: chex.Array, baseline: str = "mean", num_samples: int = 4
) -> chex.Array:
  """A(s_t, a_t) = Q(s_t, a_t) - V(s_t) with V the `baseline` over pi (module docstring).

  q_t, pi_t: [..., A] at the states of a_t [...]; returns [...].
  """
  chex.assert_equal_shape([q_t, pi_t])
  q_a = jnp.take_along_axis(q_t, a_t[..., None], axis=-1)[..., 0]
  if baseline == "mean":
    v = jnp.sum(pi_t * q_t, axis=-1)
  elif baseline == "max":
    v = expected_max(q_t, pi_t, num_samples)
  else:
    raise ValueError(f"baseline must be one of {BASELINES}, got {baseline!r}")
  return q_a - v


def weight(adv: chex.Array, kind: str = "exp", beta: float = 1.0, clip: float = EXP_CLIP) -> chex.Array:
  """CRR's f(A): 'exp' min(exp(A / beta), clip) (Eq. 4) or 'binary' 1[A > 0] (Eq. 3)."""
  if kind == "exp":
    return jnp.exp(jnp.minimum(adv / beta, jnp.log(clip)))  # = min(exp(A / beta), clip), no overflow
  if kind == "binary":
    return (adv > 0).astype(adv.dtype)
  raise ValueError(f"weight must be one of {WEIGHTS}, got {kind!r}")


class CRRRule(UpdateRule):
  """CRR exp (Wang et al. 2020, Eq. 4): pi_hat = min(exp(A/beta), 20), A = Q(s,a) - E_pi Q(s,.).

  A = Q(s_t, a_t) minus the `baseline` over the policy being trained (mean or max of m
  samples, computed exactly); beta = 1.
  """

  name = "crr"
  consumes = frozenset({"pi", "q"})
  on_policy = False
  weight_kind = "exp"
  baseline = "mean"

  def __init__(self, beta: float = 1.0, num_samples: int = 4):
    self.beta = beta
    self.num_samples = num_samples

  def targets(self, meta_params: Any, inputs: RuleInputs) -> Targets:
    del meta_params
    adv = advantage(inputs.q_t[:-1], inputs.pi_t[:-1], inputs.a_t, self.baseline, self.num_samples)
    return Targets(pi_hat=jax.lax.stop_gradient(weight(adv, self.weight_kind, self.beta)))


class CRRBinaryRule(CRRRule):
  """CRR binary (Wang et al. 2020, Eq. 3): pi_hat = 1[Q(s,a) - E_pi Q(s,.) > 0]."""

  name = "crr_binary"
  weight_kind = "binary"


class CRRBinaryMaxRule(CRRRule):
  """CRR binary max (Wang et al. 2020): pi_hat = 1[Q(s,a) > E max_{j<=4} Q(s,a_j)], a_j ~ pi."""

  name = "crr_binary_max"
  weight_kind = "binary"
  baseline = "max"


class CRRMaxRule(CRRRule):
  """CRR exp max (Wang et al. 2020): pi_hat = min(exp(Q(s,a) - E max_{j<=4} Q(s,a_j)), 20)."""

  name = "crr_max"
  baseline = "max"


class BCRule(UpdateRule):
  """Behaviour cloning: pi_hat = 1, i.e. maximise log pi(a|s) of the data (CRR's f = 1)."""

  name = "bc"
  consumes = frozenset({"pi"})
  on_policy = False

  def targets(self, meta_params: Any, inputs: RuleInputs) -> Targets:
    del meta_params
    return Targets(pi_hat=jnp.ones_like(inputs.r_t))
