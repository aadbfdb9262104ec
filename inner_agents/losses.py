"""Distribution maths shared by agents and the meta-objective."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp


def categorical_kl(p_logits: chex.Array, q_probs: chex.Array) -> chex.Array:
  """KL(p || q) = sum_x p(x) (log p(x) - log q(x)) over the last axis.

  p is given by logits (the agent's y), q by probabilities (the rule's target y_hat).
  q is floored at 1e-8 inside the log so that a target with zeros stays finite.
  """
  log_p = jax.nn.log_softmax(p_logits)
  return jnp.sum(jnp.exp(log_p) * (log_p - jnp.log(jnp.maximum(q_probs, 1e-8))), axis=-1)


def entropy(logits: chex.Array) -> chex.Array:
  """Entropy of the categorical distribution softmax(logits) over the last axis.

  Terms with p = 0 count as 0 (not 0 * -inf), so a collapsed policy has entropy 0.
  """
  log_p = jax.nn.log_softmax(logits)
  p = jnp.exp(log_p)
  return -jnp.sum(jnp.where(p > 0, p * log_p, 0.0), axis=-1)


def log_prob(logits: chex.Array, action: chex.Array) -> chex.Array:
  """log pi(a|s) of the taken actions: logits [..., A], action int [...] -> [...]."""
  log_pi = jax.nn.log_softmax(logits)
  return jnp.take_along_axis(log_pi, action[..., None], axis=-1)[..., 0]
