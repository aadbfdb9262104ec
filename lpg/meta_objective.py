"""The meta-objective: how good is the agent after K updates by the rule? (Eq. 1, 3, 4)

The paper ascends, with respect to eta,
  E[ grad log pi_theta_K(a|s) * A  +  beta0 grad H(pi_theta_K)  +  beta1 grad H(y_theta_K)
     - beta2 grad ||pi_hat||^2  -  beta3 grad ||y_hat||^2 ]
where theta_K is the agent after K updates driven by eta, A is an advantage estimated with
a value function trained only for this purpose (A2C; the LPG rule never sees it), and the
L2 terms regularise the rule's outputs over the K updates. This module holds the loss to
*minimise* (the negative) and the critic's own update.

Choices where the paper is silent: the advantage uses the lambda-return of the lifetime's
gamma bootstrapped by the critic (lambda configurable, 0.95 by default, as in the public
re-implementation) on a fresh T-step rollout of theta_K, optionally normalised per lifetime
(on by default: lifetimes of different envs have returns of very different scales, and
the meta-gradient is averaged over them); the critic is trained by regression on the same
lambda-returns over the K inner rollouts and the validation rollout. A return stops at
every episode end; an episode cut by a time limit (the grid worlds' max steps)
bootstraps from the critic's value of the state it reached, one that terminated does not.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import chex
import haiku as hk
import jax
import jax.numpy as jnp

from inner_agents.actor_critic.agent import ActorCriticAgent, AgentState
from inner_agents.bootstrap import bootstrap_values
from inner_agents.losses import entropy, log_prob
from inner_agents.rules.a2c import lambda_returns
from inner_agents.types import Trajectory


@dataclasses.dataclass(frozen=True)
class MetaObjectiveConfig:
  """beta1..beta3 of Table 2 (beta0 is drawn per lifetime); critic settings."""

  y_entropy_cost: float = 1e-3  # beta1
  pi_hat_l2_cost: float = 1e-3  # beta2
  y_hat_l2_cost: float = 1e-3  # beta3
  critic_lambda: float = 0.95
  normalize_advantages: bool = True


class MetaLossStats(NamedTuple):
  meta_loss: chex.Array
  policy_objective: chex.Array
  policy_entropy: chex.Array
  y_entropy: chex.Array
  pi_hat_l2: chex.Array
  y_hat_l2: chex.Array
  advantage_std: chex.Array


def critic_values(
  critic: ActorCriticAgent, params: hk.Params, trajectory: Trajectory
) -> tuple[chex.Array, chex.Array]:
  """The critic's values [T+1, B] on trajectory.observation, and the values [T, B] to
  bootstrap from after each step: v(s_{t+1}), or, where an episode was truncated, v of the
  state it reached (`trajectory.truncations`; `inner_agents.bootstrap`)."""
  values = critic.apply(params, trajectory.observation).value
  return values, _bootstrap(critic, params, trajectory, values)


def _bootstrap(
  critic: ActorCriticAgent, params: hk.Params, trajectory: Trajectory, values: chex.Array
) -> chex.Array:
  return bootstrap_values(lambda obs: critic.apply(params, obs).value, trajectory, values[1:])


def critic_returns(
  trajectory: Trajectory, bootstrap: chex.Array, gamma: chex.Numeric, lambda_: float
) -> chex.Array:
  """lambda-returns [T, B] of a trajectory [T, B], bootstrapped by critic values [T, B]
  (`critic_values`), as A2C's (`inner_agents.rules.a2c.lambda_returns`)."""
  discount_t = gamma * trajectory.discount
  return lambda_returns(trajectory.reward, discount_t, trajectory.end, bootstrap, lambda_)


def meta_loss(
  agent: ActorCriticAgent,
  params_k: hk.Params,
  trajectory: Trajectory,
  values: chex.Array,
  bootstrap: chex.Array,
  gamma: chex.Numeric,
  policy_entropy_cost: chex.Numeric,
  pi_hat_sq: chex.Array,
  y_hat_sq: chex.Array,
  config: MetaObjectiveConfig,
) -> tuple[chex.Array, MetaLossStats]:
  """The loss (minimised) whose gradient w.r.t. eta (through params_k) is Eq. 4's negative.

  Args:
    agent: the inner agent.
    params_k: theta_K, a differentiable function of eta.
    trajectory: a validation rollout [T, B] acted by theta_K.
    values, bootstrap: [T+1, B] and [T, B] the critic's `critic_values` (constants).
    gamma: the lifetime's discount.
    policy_entropy_cost: beta0 of the lifetime.
    pi_hat_sq: mean of pi_hat^2 over the K inner updates (a function of eta).
    y_hat_sq: mean of ||y_hat||^2 over the K inner updates (a function of eta).
    config: beta1..beta3 and the advantage settings.
  """
  returns = critic_returns(trajectory, bootstrap, gamma, config.critic_lambda)
  advantage = returns - values[:-1]
  adv_std = jnp.std(advantage)
  if config.normalize_advantages:
    advantage = (advantage - jnp.mean(advantage)) / (adv_std + 1e-6)
  advantage = jax.lax.stop_gradient(advantage)
  out = agent.apply(params_k, trajectory.observation[:-1])  # [T, B, ...]
  log_pi_a = log_prob(out.logits, trajectory.action)
  policy_objective = jnp.mean(log_pi_a * advantage)
  h_pi = jnp.mean(entropy(out.logits))
  h_y = jnp.mean(entropy(out.y_logits))
  objective = (
    policy_objective
    + policy_entropy_cost * h_pi
    + config.y_entropy_cost * h_y
    - config.pi_hat_l2_cost * pi_hat_sq
    - config.y_hat_l2_cost * y_hat_sq
  )
  stats = MetaLossStats(
    meta_loss=-objective,
    policy_objective=policy_objective,
    policy_entropy=h_pi,
    y_entropy=h_y,
    pi_hat_l2=pi_hat_sq,
    y_hat_l2=y_hat_sq,
    advantage_std=adv_std,
  )
  return -objective, stats


def merge_batches(x: chex.Array) -> chex.Array:
  """[N, T, B, ...] -> [T, N * B, ...]: N time-major batches side by side."""
  x = jnp.swapaxes(x, 0, 1)
  return x.reshape((x.shape[0], -1, *x.shape[3:]))


def critic_update(
  critic: ActorCriticAgent,
  state: AgentState,
  trajectories: Trajectory,
  gamma: chex.Numeric,
  learning_rate: chex.Numeric,
  lambda_: float,
) -> tuple[AgentState, chex.Array]:
  """One regression step of the critic's value head toward lambda-returns.

  The critic has the agent's network, of which only the value head is trained, with the
  agent's optimiser.

  Args:
    trajectories: [N, T, B] trajectories (e.g. the K inner rollouts and the validation
      rollout); the targets use the critic's values before the step.
  Returns:
    The new critic state and the value loss 1/2 mean (v - G)^2 before the step.
  """
  values = critic.apply(state.params, trajectories.observation).value  # [N, T+1, B]
  bootstrap = jax.vmap(lambda tr, v: _bootstrap(critic, state.params, tr, v))(trajectories, values)
  returns = jax.vmap(critic_returns, in_axes=(0, 0, None, None))(trajectories, bootstrap, gamma, lambda_)
  returns = merge_batches(returns)  # [T, N * B]
  observations = merge_batches(trajectories.observation[:, :-1])  # [T, N * B, ...]

  def value_loss(params):
    return 0.5 * jnp.mean(jnp.square(critic.apply(params, observations).value - returns))

  loss, grads = jax.value_and_grad(value_loss)(state.params)
  return critic.apply_gradients(state, grads, learning_rate), loss
