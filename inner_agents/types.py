"""Data that flows between environments, inner agents and update rules."""

from __future__ import annotations

from typing import NamedTuple

import chex


class AgentOutput(NamedTuple):
  """What an inner agent predicts for a batch of observations [...].

  logits: [..., A] policy logits.
  y_logits: [..., m] logits of the categorical prediction y (LPG's y = softmax(y_logits)).
  value: [...] scalar state value (used by value-based rules such as A2C).
  """

  logits: chex.Array
  y_logits: chex.Array
  value: chex.Array


class Trajectory(NamedTuple):
  """T steps of B environments, time-major.

  observation: [T+1, B, ...] s_0 .. s_T; s_T is the bootstrap observation. After a LAST
    step, the next observation is the first of the next episode (auto-reset).
  action: int32 [T, B] a_t.
  reward: float32 [T, B] r_{t+1}, the reward for taking a_t in s_t.
  done: float32 [T, B] 1 where the step after a_t ended the episode (the paper's d_t).
  """

  observation: chex.Array
  action: chex.Array
  reward: chex.Array
  done: chex.Array


class AgentHParams(NamedTuple):
  """Per-lifetime agent hyperparameters (arrays, so populations can vmap over them).

  learning_rate: alpha_lr.
  y_cost: alpha_y, weight of KL(y || y_hat).
  value_cost: weight of the value regression 1/2 (v - v_hat)^2 (rules with value targets).
  entropy_cost: weight of the policy-entropy bonus (A2C; 0 for LPG, as in the paper).
  discount: the lifetime's gamma, given to the rule.
  """

  learning_rate: chex.Numeric
  y_cost: chex.Numeric
  value_cost: chex.Numeric
  entropy_cost: chex.Numeric
  discount: chex.Numeric
