"""The inner agent: pi, y and value heads, trained on targets from any UpdateRule.

The agent never knows which rule produced its targets. Its loss (minimised) is the LPG
paper's Eq. 2 written as a loss, plus the terms a hand-designed rule may ask for:

  L(theta) = - mean_t[ log pi(a_t|s_t) * pi_hat_t ]              (policy, Eq. 2)
             + y_cost * mean_t[ KL(y(s_t) || y_hat_t) ]           (prediction, Eq. 2)
             + value_cost * mean_t[ 1/2 (v(s_t) - v_hat_t)^2 ]     (if the rule gives v_hat)
             - entropy_cost * mean_t[ H(pi(.|s_t)) ]               (A2C's entropy bonus)

The targets (pi_hat, y_hat, v_hat) are constants with respect to theta: they are computed
by the rule from stop-gradient'ed agent outputs (see `rule_inputs`), but they are *not*
stop-gradient'ed here, so gradients with respect to a rule's meta-parameters flow through
an update (what the meta-gradient needs).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import chex
import haiku as hk
import jax
import jax.numpy as jnp
import optax
from dm_env import specs

from inner_agents import networks
from inner_agents.types import AgentHParams, AgentOutput, Trajectory

OPTIMIZERS = ("sgd", "adam")


class Targets(NamedTuple):
  """Per-step targets from an update rule, time-major [T, B].

  pi_hat: [T, B] scalar weight on grad log pi(a_t|s_t).
  y_hat: [T, B, m] target distribution for y(s_t), or None.
  value_target: [T, B] regression target for v(s_t), or None.
  """

  pi_hat: chex.Array
  y_hat: chex.Array | None = None
  value_target: chex.Array | None = None


class AgentState(NamedTuple):
  params: hk.Params
  opt_state: optax.OptState


class LossStats(NamedTuple):
  loss: chex.Array
  policy_entropy: chex.Array
  y_entropy: chex.Array
  kl: chex.Array
  value_loss: chex.Array


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


@dataclasses.dataclass(frozen=True, eq=False)
class ActorCriticAgent:
  """An inner agent with policy, prediction (y) and value heads.

  Attributes:
    network: the haiku network, apply(params, obs [...]) -> AgentOutput [...].
    num_actions: size of the action set.
    y_size: m, the number of categorical bins of y.
    optimizer: 'sgd' or 'adam'; the learning rate is a per-lifetime hyperparameter.
  """

  network: hk.Transformed
  num_actions: int
  y_size: int
  optimizer: str = "sgd"
  description: str = "actor_critic"

  def __post_init__(self):
    if self.optimizer not in OPTIMIZERS:
      raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {self.optimizer!r}")

  @property
  def _transform(self) -> optax.GradientTransformation:
    # The step direction only; params move by -learning_rate * direction so that the
    # learning rate can be a traced, per-lifetime array.
    if self.optimizer == "sgd":
      return optax.identity()
    # eps_root > 0 keeps d sqrt(v)/dv finite where v = 0, so meta-gradients can flow
    # through Adam updates (optax's advice for meta-learning).
    return optax.scale_by_adam(eps_root=1e-8)

  def init(self, key: chex.PRNGKey, dummy_obs: chex.Array) -> AgentState:
    params = self.network.init(key, dummy_obs)
    return AgentState(params=params, opt_state=self._transform.init(params))

  def apply(self, params: hk.Params, obs: chex.Array) -> AgentOutput:
    return self.network.apply(params, obs)

  def loss(
    self,
    params: hk.Params,
    trajectory: Trajectory,
    targets: Targets,
    hparams: AgentHParams,
  ) -> tuple[chex.Array, LossStats]:
    """The agent loss on a trajectory [T, B] (see module docstring)."""
    out = self.apply(params, trajectory.observation[:-1])  # [T, B, ...]
    chex.assert_equal_shape([out.value, trajectory.action, targets.pi_hat])
    log_pi = jax.nn.log_softmax(out.logits)
    log_pi_a = jnp.take_along_axis(log_pi, trajectory.action[..., None], axis=-1)[..., 0]
    policy_entropy = jnp.mean(entropy(out.logits))
    loss = -jnp.mean(log_pi_a * targets.pi_hat) - hparams.entropy_cost * policy_entropy
    kl = jnp.zeros(())
    if targets.y_hat is not None:
      chex.assert_equal_shape([out.y_logits, targets.y_hat])
      kl = jnp.mean(categorical_kl(out.y_logits, targets.y_hat))
      loss += hparams.y_cost * kl
    value_loss = jnp.zeros(())
    if targets.value_target is not None:
      chex.assert_equal_shape([out.value, targets.value_target])
      value_loss = 0.5 * jnp.mean(jnp.square(out.value - targets.value_target))
      loss += hparams.value_cost * value_loss
    stats = LossStats(
      loss=loss,
      policy_entropy=policy_entropy,
      y_entropy=jnp.mean(entropy(out.y_logits)),
      kl=kl,
      value_loss=value_loss,
    )
    return loss, stats

  def update(
    self,
    state: AgentState,
    trajectory: Trajectory,
    targets: Targets,
    hparams: AgentHParams,
  ) -> tuple[AgentState, LossStats]:
    """One gradient step on the loss: theta <- theta - lr * optimizer(grad)."""
    grads, stats = jax.grad(self.loss, has_aux=True)(state.params, trajectory, targets, hparams)
    direction, opt_state = self._transform.update(grads, state.opt_state, state.params)
    params = jax.tree.map(lambda p, d: p - hparams.learning_rate * d, state.params, direction)
    return AgentState(params=params, opt_state=opt_state), stats


def make_agent(
  obs_spec: specs.Array,
  num_actions: int,
  y_size: int,
  optimizer: str,
  conv_channels: tuple[int, ...] = (),
  mlp_sizes: tuple[int, ...] = (),
  conv_kernels: tuple[int, ...] = (),
  conv_strides: tuple[int, ...] = (),
  conv_padding: str = "SAME",
) -> ActorCriticAgent:
  """An agent whose torso fits `obs_spec` (table, MLP or conv + MLP); see `networks`."""
  net = networks.make_network(
    obs_spec, num_actions, y_size, conv_channels, mlp_sizes, conv_kernels, conv_strides, conv_padding
  )
  if networks.is_tabular(obs_spec):
    desc = "actor_critic(table)"
  else:
    layers = [f"C{c}" for c in conv_channels] + [f"D{s}" for s in mlp_sizes]
    desc = f"actor_critic({'-'.join(layers) or 'linear'})"
  return ActorCriticAgent(
    network=net, num_actions=num_actions, y_size=y_size, optimizer=optimizer, description=desc
  )
