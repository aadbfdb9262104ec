"""The rule <-> agent contract: what a rule sees of a trajectory, what it returns, and what
it declares about the agents it can drive.

A rule maps what an agent produced on a trajectory [T, B] (rewards, discounts, episode
ends, the agent's own pi(a_t|s_t), y(s) and v(s), all stop-gradient'ed) to per-step
`Targets`: pi_hat, a scalar weight on grad log pi(a_t|s_t), and optionally y_hat, a
distribution y(s_t) is pulled toward by KL, and v_hat, a regression target for v(s_t)
(Oh et al. 2020, Eq. 2, for the LPG rule; A2C and the others fill the same slot). Rules
are pure functions of (meta_params, inputs); hand-designed rules have empty
meta-parameters, so the meta-gradient can flow through the learned one.

Each rule declares which agent outputs it consumes (`consumes`, a subset of `OUTPUTS`) and
whether its targets assume on-policy data (`on_policy`), so a harness can refuse a rule x
agent pair that cannot work before running it (`inner_agents.agent.check_compatible`).
"""

from __future__ import annotations

import abc
from typing import Any, NamedTuple

import chex

# What an agent can provide to a rule: a policy pi, LPG's prediction y, a state value v,
# action values q.
OUTPUTS = ("pi", "y", "v", "q")


class RuleInputs(NamedTuple):
  """What a rule sees of a trajectory [T, B], time-major; constants with respect to theta.

  r_t: [T, B] the reward after a_t.
  discount_t: [T, B] the bootstrap discount after a_t: gamma where the return goes on
    (mid-episode, or an episode cut by a time limit), 0 where the episode terminated.
  end_t: [T, B] 1.0 where the episode ended after a_t, by termination or truncation (the
    LPG paper's d_t, which resets its backward LSTM): no return crosses it.
  gamma: [] the agent's discount factor (an input of the LPG network).
  pi_a_t: [T, B] pi(a_t|s_t) under the agent being updated.
  y_t: [T+1, B, m] y(s_t) for the trajectory's observations s_0..s_T (after an episode
    end, s_{t+1} is the next episode's first state), or None.
  v_t: [T+1, B] v(s_t) for the same observations, or None.
  v_tp1: [T, B] the value to bootstrap from after a_t: v(s_{t+1}), except where a_t ended
    an episode, where it is the value of the state a_t reached before the auto-reset (what
    a truncated episode bootstraps from); or None.
  mu_a_t: [T, B] mu(a_t|s_t) of the policy that collected the data (off-policy data), or None.
  q_t: [T+1, B, A] q(s_t, .) (agents with an action-value critic), or None.
  a_t: int32 [T, B] the actions taken, or None (given with q_t: Q(s_t, a_t) = q_t[t, a_t]).
  pi_t: [T+1, B, A] the whole policy pi(.|s_t), or None (given with q_t: expectations of
    q under pi, e.g. CRR's advantage).
  """

  r_t: chex.Array
  discount_t: chex.Array
  end_t: chex.Array
  gamma: chex.Numeric
  pi_a_t: chex.Array
  y_t: chex.Array | None = None
  v_t: chex.Array | None = None
  v_tp1: chex.Array | None = None
  mu_a_t: chex.Array | None = None
  q_t: chex.Array | None = None
  a_t: chex.Array | None = None
  pi_t: chex.Array | None = None


class Targets(NamedTuple):
  """Per-step targets from an update rule, time-major [T, B].

  pi_hat: [T, B] scalar weight on grad log pi(a_t|s_t).
  y_hat: [T, B, m] target distribution for y(s_t), or None.
  v_hat: [T, B] regression target for v(s_t), or None.
  """

  pi_hat: chex.Array
  y_hat: chex.Array | None = None
  v_hat: chex.Array | None = None


# The RuleInputs fields each consumable output fills (checked at the boundary). An agent
# with action values also gives the actions taken and its whole policy, so that a rule can
# score a_t against an expectation under pi (CRR's advantage).
_FIELDS = {"pi": ("pi_a_t",), "y": ("y_t",), "v": ("v_t", "v_tp1"), "q": ("q_t", "a_t", "pi_t")}


class UpdateRule(abc.ABC):
  """A rule: (meta_params, RuleInputs [T, B]) -> Targets [T, B].

  Attributes:
    name: the name it is selected by.
    consumes: the agent outputs (of `OUTPUTS`) its targets read.
    on_policy: whether its targets assume the data came from the agent's current policy.
    learned: whether it has meta-parameters learned by meta-training (a learned pi_hat is
      not centred, so the LPG paper's Eq. 7 baseline applies to it at meta-test).
    hparam_defaults: agent hyperparameters this rule is designed for (e.g. A2C's entropy
      bonus); an agent's explicit settings take precedence.
    learning_rates: default agent learning rate per optimiser ('sgd' for tables, 'adam'
      otherwise). The base values are the middle of the LPG paper's Table 3 grids.
  """

  name: str = ""
  consumes: frozenset[str] = frozenset()
  on_policy: bool = True
  learned: bool = False
  hparam_defaults: dict[str, float] = {}
  learning_rates: dict[str, float] = {"sgd": 40.0, "adam": 2e-3}

  def init_meta_params(self, key: chex.PRNGKey | None) -> Any:
    """Meta-parameters eta; empty for hand-designed rules."""
    del key
    return {}

  @abc.abstractmethod
  def targets(self, meta_params: Any, inputs: RuleInputs) -> Targets:
    """Per-step targets for the agent update."""

  def describe(self) -> str:
    """One line for listings: the first line of the class docstring."""
    return (type(self).__doc__ or "").strip().splitlines()[0]


def check_inputs(inputs: RuleInputs, consumes: frozenset[str]) -> None:
  """chex asserts at the agent -> rule boundary: the consumed fields are present and every
  field has its documented shape ([T, B], [T+1, B, ...])."""
  for output in consumes:
    for field in _FIELDS[output]:
      if getattr(inputs, field) is None:
        raise ValueError(f"the rule consumes {output!r} but RuleInputs.{field} is None")
  chex.assert_rank(inputs.r_t, 2)
  chex.assert_equal_shape([inputs.r_t, inputs.discount_t, inputs.end_t, inputs.pi_a_t])
  t, b = inputs.r_t.shape
  if inputs.y_t is not None:
    chex.assert_rank(inputs.y_t, 3)
    chex.assert_shape(inputs.y_t, (t + 1, b, None))
  if inputs.v_t is not None:
    chex.assert_shape(inputs.v_t, (t + 1, b))
  for field in ("v_tp1", "mu_a_t"):
    if getattr(inputs, field) is not None:
      chex.assert_shape(getattr(inputs, field), (t, b))
  if inputs.q_t is not None:
    chex.assert_shape(inputs.q_t, (t + 1, b, None))
  if inputs.a_t is not None:
    chex.assert_shape(inputs.a_t, (t, b))
  if inputs.pi_t is not None:
    chex.assert_shape(inputs.pi_t, (t + 1, b, None))
    if inputs.q_t is not None:
      chex.assert_equal_shape([inputs.pi_t, inputs.q_t])


def check_targets(targets: Targets, inputs: RuleInputs) -> None:
  """chex asserts at the rule -> agent boundary: targets are [T, B] (y_hat [T, B, m])."""
  t, b = inputs.r_t.shape
  chex.assert_shape(targets.pi_hat, (t, b))
  if targets.y_hat is not None:
    m = None if inputs.y_t is None else inputs.y_t.shape[-1]
    chex.assert_shape(targets.y_hat, (t, b, m))
  if targets.v_hat is not None:
    chex.assert_shape(targets.v_hat, (t, b))
