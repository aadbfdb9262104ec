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
from lpg import network as network_lib


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
    learning_rates: default agent learning rate per optimiser ('sgd' for tables, 'adam'
      otherwise). The base values are the middle of the LPG paper's Table 3 grids.
  """

  name: str = ""
  hparam_defaults: dict[str, float] = {}
  learning_rates: dict[str, float] = {"sgd": 40.0, "adam": 2e-3}

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
  # Tables: SGD at 20+ makes the value regression diverge on states many envs share
  # (measured on tabular_dense); 10 is stable and fast.
  learning_rates = {"sgd": 10.0, "adam": 2e-3}

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


class LPGRule(UpdateRule):
  """The learned policy gradient rule: targets from the LPG network with parameters eta.

  pi_hat, y_hat = LPG_eta(r_t, d_t, gamma, pi(a_t|s_t), phi(y(s_t)), phi(y(s_t+1)))
  (Oh et al. 2020, Eq. 2 and Fig. 1; see `lpg.network`). The agent then ascends
  pi_hat * grad log pi(a_t|s_t) - y_cost * grad KL(y(s_t) || y_hat_t).
  """

  hparam_defaults = {"y_cost": 0.5, "value_cost": 0.0, "entropy_cost": 0.0}

  def __init__(self, config: network_lib.LPGNetworkConfig | None = None, name: str = "lpg"):
    self.config = config or network_lib.LPGNetworkConfig()
    self.network = network_lib.make_lpg_network(self.config)
    self.name = name

  def init_meta_params(self, key: chex.PRNGKey) -> Any:
    t, b, m = 2, 1, self.config.y_size
    zeros = jnp.zeros((t, b))
    return self.network.init(key, zeros, zeros, 0.99, zeros, jnp.zeros((t + 1, b, m)))

  def targets(self, meta_params: Any, inputs: RuleInputs, hparams: AgentHParams) -> Targets:
    chex.assert_axis_dimension(inputs.y, -1, self.config.y_size)
    out = self.network.apply(meta_params, inputs.reward, inputs.done, hparams.discount, inputs.pi_a, inputs.y)
    return Targets(pi_hat=out.pi_hat, y_hat=out.y_hat)


class PiHatBaseline(UpdateRule):
  """A rule with the LPG paper's meta-test baseline on pi_hat (Eq. 7).

  The agent's scalar head f(s) (its `value` output) regresses onto pi_hat and is
  subtracted from it in the policy term:
    pi_hat'_t = pi_hat_t - f(s_t),   f's target = pi_hat_t   (weight 1: value_cost 1).
  f(s_t) comes from the rule inputs, so it is a constant of the policy term, as in Eq. 7.
  The paper uses this on Atari and says it helps slightly.
  """

  def __init__(self, rule: UpdateRule):
    self.rule = rule
    self.name = rule.name
    self.hparam_defaults = {**rule.hparam_defaults, "value_cost": 1.0}
    self.learning_rates = rule.learning_rates

  def init_meta_params(self, key: chex.PRNGKey) -> Any:
    return self.rule.init_meta_params(key)

  def targets(self, meta_params: Any, inputs: RuleInputs, hparams: AgentHParams) -> Targets:
    t = self.rule.targets(meta_params, inputs, hparams)
    return t._replace(pi_hat=t.pi_hat - inputs.value[:-1], value_target=t.pi_hat)


_HAND_DESIGNED = {"a2c": A2CRule, "random": RandomRule}


def names() -> list[str]:
  return list(_HAND_DESIGNED)


def make_rule(name: str) -> UpdateRule:
  """A hand-designed rule by name."""
  if name not in _HAND_DESIGNED:
    raise UnknownRuleError(f"unknown rule {name!r}; valid: {', '.join(names())}")
  return _HAND_DESIGNED[name]()
