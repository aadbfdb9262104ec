"""Advantage actor-critic (Mnih et al. 2016, "Asynchronous methods for deep RL") as a rule."""

from __future__ import annotations

from typing import Any

import chex
import jax
import rlax

from inner_agents.rules.base import RuleInputs, Targets, UpdateRule


def lambda_returns(
  r_t: chex.Array, discount_t: chex.Array, end_t: chex.Array, v_tp1: chex.Array, lambda_: float
) -> chex.Array:
  """lambda-returns [T, B] of a trajectory that stop at every episode end.

    G_t = r_t + discount_t [(1 - lambda) v_tp1 + lambda G_{t+1}]   within an episode,
    G_t = r_t + discount_t v_tp1                                  where it ends,

  with G_T = v_tp1 at the last step: a termination (discount 0) keeps r_t, a truncation
  bootstraps from the value of the state it reached (v_tp1; partial-episode bootstrapping,
  Pardo et al. 2018, "Time limits in RL"), and no return crosses an episode end. The
  bootstrap of an end is folded into its reward and its discount set to 0, so that rlax's
  recursion runs with a scalar lambda. Args as in `RuleInputs`, all [T, B].
  """
  reward = r_t + end_t * discount_t * v_tp1  # Nonzero only where a truncated episode ends.
  discount = discount_t * (1.0 - end_t)
  return jax.vmap(rlax.lambda_returns, in_axes=(1, 1, 1, None), out_axes=1)(reward, discount, v_tp1, lambda_)


class A2CRule(UpdateRule):
  """Advantage actor-critic (A2C): pi_hat = G_t - v(s_t), v_hat = G_t.

  G_t is the lambda-return bootstrapped from the agent's own values (lambda = 1: the
  n-step return over the trajectory, as in A2C); see `lambda_returns`.
  """

  name = "a2c"
  consumes = frozenset({"pi", "v"})
  on_policy = True
  hparam_defaults = {"value_cost": 0.5, "entropy_cost": 0.01}
  # Tables: SGD at 20+ makes the value regression diverge on states many envs share
  # (measured on tabular_dense); 10 is stable and fast.
  learning_rates = {"sgd": 10.0, "adam": 2e-3}

  def __init__(self, lambda_: float = 1.0):
    self.lambda_ = lambda_

  def targets(self, meta_params: Any, inputs: RuleInputs) -> Targets:
    del meta_params
    returns = lambda_returns(
      inputs.r_t, inputs.discount_t, inputs.end_t, inputs.v_tp1, self.lambda_
    )  # [T, B]
    return Targets(pi_hat=returns - inputs.v_t[:-1], v_hat=returns)
