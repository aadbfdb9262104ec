"""Update rules: the learned LPG rule and hand-designed rules behind one interface.

A rule maps what the agent produced on a trajectory (rewards, terminations, the agent's
own pi(a_t|s_t), y(s) and v(s), all stop-gradient'ed) to per-step targets (`Targets`):
pi_hat, a scalar weight on grad log pi(a_t|s_t), and optionally y_hat, a distribution
y(s_t) is pulled toward by KL, and a value target. `ActorCriticAgent.loss` turns targets
into an update, so every rule drives the same agent. Rules are pure functions of
(meta_params, inputs, hparams): hand-designed rules have empty meta-parameters.
"""

from __future__ import annotations

import abc
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import rlax

from inner_agents.agent import Targets
from inner_agents.types import AgentHParams, AgentOutput, Trajectory


class UnknownRuleError(ValueError):
  """A rule name that is not registered."""


class RuleInputs(NamedTuple):
  """What a rule sees of a trajectory, time-major; constants with respect to theta.

  reward: [T, B] r_{t+1}.
  done: [T, B] 1.0 where the episode ended after step t (d_t).
  pi_a: [T, B] pi(a_t|s_t) under the agent being updated.
  y: [T+1, B, m] y(s_t) = softmax(y_logits) for t = 0..T.
  value: [T+1, B] v(s_t) for t = 0..T.
  """

  reward: chex.Array
  done: chex.Array
  pi_a: chex.Array
  y: chex.Array
  value: chex.Array


def rule_inputs(out: AgentOutput, trajectory: Trajectory) -> RuleInputs:
  """Builds RuleInputs from agent outputs on trajectory.observation [T+1, B]."""
  out = jax.lax.stop_gradient(out)
  probs = jax.nn.softmax(out.logits[:-1])  # [T, B, A]
  pi_a = jnp.take_along_axis(probs, trajectory.action[..., None], axis=-1)[..., 0]
  return RuleInputs(
    reward=trajectory.reward,
    done=trajectory.done,
    pi_a=pi_a,
    y=jax.nn.softmax(out.y_logits),
    value=out.value,
  )


class UpdateRule(abc.ABC):
  """A rule: (meta_params, RuleInputs [T, B], AgentHParams) -> Targets [T, B].

  Attributes:
    name: the name it is selected by.
    hparam_defaults: agent hyperparameters this rule is designed for (e.g. A2C's entropy
      bonus); the caller's explicit settings take precedence.
  """

  name: str = ""
  hparam_defaults: dict[str, float] = {}

  def init_meta_params(self, key: chex.PRNGKey) -> Any:
    """Meta-parameters eta; empty for hand-designed rules."""
    del key
    return {}

  @abc.abstractmethod
  def targets(self, meta_params: Any, inputs: RuleInputs, hparams: AgentHParams) -> Targets:
    """Per-step targets for the agent update."""


def discounts(done: chex.Array, gamma: chex.Numeric) -> chex.Array:
  """gamma_t = gamma * (1 - d_t): no bootstrapping across an episode's end. [T, B]."""
  return gamma * (1.0 - done)


class A2CRule(UpdateRule):
  """Advantage actor-critic (Mnih et al. 2016) as an update rule.

  With G_t the lambda-return bootstrapped from v(s_T) (lambda = 1: the n-step return
  over the trajectory, as in A2C),
    pi_hat_t = G_t - v(s_t)    (advantage),    v_hat_t = G_t    (value target).
  """

  name = "a2c"
  hparam_defaults = {"value_cost": 0.5, "entropy_cost": 0.01}

  def __init__(self, lambda_: float = 1.0):
    self.lambda_ = lambda_

  def targets(self, meta_params: Any, inputs: RuleInputs, hparams: AgentHParams) -> Targets:
    del meta_params
    discount_t = discounts(inputs.done, hparams.discount)
    returns = jax.vmap(rlax.lambda_returns, in_axes=(1, 1, 1, None), out_axes=1)(
      inputs.reward, discount_t, inputs.value[1:], self.lambda_
    )  # [T, B]
    return Targets(pi_hat=returns - inputs.value[:-1], value_target=returns)


class RandomRule(UpdateRule):
  """No learning: all targets are zero, so the (uniform) initial policy never changes.

  The floor every learning rule must beat.
  """

  name = "random"

  def targets(self, meta_params: Any, inputs: RuleInputs, hparams: AgentHParams) -> Targets:
    del meta_params, hparams
    return Targets(pi_hat=jnp.zeros_like(inputs.reward))


_HAND_DESIGNED = {"a2c": A2CRule, "random": RandomRule}


def names() -> list[str]:
  return list(_HAND_DESIGNED)


def make_rule(name: str) -> UpdateRule:
  """A hand-designed rule by name."""
  if name not in _HAND_DESIGNED:
    raise UnknownRuleError(f"unknown rule {name!r}; valid: {', '.join(names())}")
  return _HAND_DESIGNED[name]()
