"""The meta-gradient of the rule's parameters eta through K unrolled inner updates.

One meta-step, for every lifetime of every population (one population per training
environment; all in one jitted computation, lifetimes vmapped):

  theta_0 -> K x [act T steps in B envs with theta_k; targets = LPG_eta(...);
                  theta_{k+1} = theta_k - lr * opt(grad_theta L(theta_k; targets))]
          -> act T more steps with theta_K (validation rollout)
          -> meta-loss of theta_K (lpg.meta_objective), differentiated w.r.t. eta
             through all K updates (truncated backprop: theta_0 is a constant).

The meta-gradient is averaged over all lifetimes, then `MetaLearner` clips it and takes
an Adam step on eta (Table 2). A non-finite meta-gradient is skipped and counted. After
the gradient, each lifetime's critic takes a step, lifetimes that end restart, and the
next meta-step continues from theta_K (the paper's sliding window).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from inner_agents.training import TrainState, UpdateMetrics
from inner_agents.types import Trajectory
from lpg import meta_objective
from lpg.population import Lifetime, Population, PopulationState


class LifetimeAux(NamedTuple):
  """What one lifetime's meta-loss computation leaves behind (not differentiated)."""

  train: TrainState  # theta_K, and the envs after the validation rollout
  trajectories: Trajectory  # [K+1, T, B]: the inner rollouts and the validation rollout
  inner: UpdateMetrics  # [K]
  stats: meta_objective.MetaLossStats
  validation_return_sum: chex.Array
  validation_episode_count: chex.Array


class MetaStepMetrics(NamedTuple):
  """Scalars of one meta-step (means over lifetimes, or counts)."""

  meta_loss: chex.Array
  policy_entropy: chex.Array
  y_entropy: chex.Array
  pi_hat_l2: chex.Array
  y_hat_l2: chex.Array
  critic_loss: chex.Array
  episode_return: chex.Array  # mean return of episodes completed in this meta-step
  episodes: chex.Array
  lifetimes_ended: chex.Array
  final_return: chex.Array  # mean final return of the lifetimes that ended (NaN if none)


def lifetime_meta_loss(
  eta: Any,
  lifetime: Lifetime,
  pop: Population,
  num_inner_updates: int,
  objective: meta_objective.MetaObjectiveConfig,
) -> tuple[chex.Array, LifetimeAux]:
  """Meta-loss of one lifetime after K inner updates driven by eta (differentiable)."""
  trainer = pop.trainer

  def inner(train: TrainState, _):
    train, metrics, data = trainer.update_with_data(train, eta, lifetime.hparams)
    pi_hat_sq = jnp.mean(jnp.square(data.targets.pi_hat))
    y_hat_sq = jnp.mean(jnp.sum(jnp.square(data.targets.y_hat), axis=-1))
    return train, (data.trajectory, metrics, pi_hat_sq, y_hat_sq)

  train = jax.lax.stop_gradient(lifetime.train)  # truncated backprop: theta_0 is constant
  train, (trajs, inner_metrics, pi_hat_sq, y_hat_sq) = jax.lax.scan(
    inner, train, None, length=num_inner_updates
  )
  # Validation rollout: act with theta_K (no gradient through acting), then differentiate
  # the meta-objective through theta_K's log-probabilities and entropies.
  train, traj_v, _, rstats = trainer.act(train)
  critic_values = pop.critic.apply(lifetime.critic.params, traj_v.observation).value
  loss, stats = meta_objective.meta_loss(
    trainer.agent,
    train.agent.params,
    traj_v,
    jax.lax.stop_gradient(critic_values),
    lifetime.hparams.discount,
    lifetime.policy_entropy_cost,
    jnp.mean(pi_hat_sq),
    jnp.mean(y_hat_sq),
    objective,
  )
  all_trajs = jax.tree.map(lambda xs, x: jnp.concatenate([xs, x[None]]), trajs, traj_v)
  aux = LifetimeAux(
    train=train,
    trajectories=all_trajs,
    inner=inner_metrics,
    stats=stats,
    validation_return_sum=rstats.return_sum,
    validation_episode_count=rstats.episode_count,
  )
  return loss, aux


@dataclasses.dataclass(frozen=True, eq=False)
class MetaGradient:
  """Meta-gradients over populations (one per training env), one jitted function.

  Attributes:
    populations: one Population per training environment.
    num_inner_updates: K (paper: 5).
    objective: the meta-objective's settings.
  """

  populations: Sequence[Population]
  num_inner_updates: int
  objective: meta_objective.MetaObjectiveConfig

  @property
  def num_lifetimes(self) -> int:
    return sum(p.num_lifetimes for p in self.populations)

  def steps_per_meta_step(self) -> int:
    """Env steps of one meta-step: K inner and 1 validation rollout per lifetime."""
    return sum(
      p.num_lifetimes * (self.num_inner_updates + 1) * p.trainer.steps_per_update for p in self.populations
    )

  def init(self, key: chex.PRNGKey) -> tuple[PopulationState, ...]:
    keys = jax.random.split(key, len(self.populations))
    return tuple(p.init(k) for p, k in zip(self.populations, keys))

  def loss(self, eta: Any, states: Sequence[PopulationState]) -> tuple[chex.Array, tuple[LifetimeAux, ...]]:
    """Mean meta-loss over all lifetimes of all populations."""
    total, auxes = 0.0, []
    for pop, state in zip(self.populations, states):
      losses, aux = jax.vmap(lifetime_meta_loss, in_axes=(None, 0, None, None, None))(
        eta, state.lifetimes, pop, self.num_inner_updates, self.objective
      )
      total += jnp.sum(losses)
      auxes.append(aux)
    return total / self.num_lifetimes, tuple(auxes)

  def step(
    self, eta: Any, states: Sequence[PopulationState]
  ) -> tuple[Any, tuple[PopulationState, ...], MetaStepMetrics]:
    """One meta-step of every lifetime: (meta-gradient, new states, metrics)."""
    grads, auxes = jax.grad(self.loss, has_aux=True)(eta, states)
    advanced = [self._advance(p, s, a) for p, s, a in zip(self.populations, states, auxes)]
    new_states = tuple(state for state, _ in advanced)
    metrics = _combine_metrics([sums for _, sums in advanced])
    return grads, new_states, metrics

  def _advance(self, pop: Population, state: PopulationState, aux: LifetimeAux):
    lifetimes = state.lifetimes
    critic, critic_loss = jax.vmap(
      lambda c, t, g: meta_objective.critic_update(
        pop.critic, c, t, g, pop.critic_learning_rate, self.objective.critic_lambda
      )
    )(lifetimes.critic, aux.trajectories, lifetimes.hparams.discount)
    steps_taken = (self.num_inner_updates + 1) * pop.trainer.steps_per_update
    lifetimes = lifetimes._replace(train=aux.train, critic=critic, steps=lifetimes.steps + steps_taken)
    state, ended, finals = pop.end_and_restart(state._replace(lifetimes=lifetimes), aux.stats.policy_entropy)
    returns = jnp.sum(aux.inner.return_sum) + jnp.sum(aux.validation_return_sum)
    episodes = jnp.sum(aux.inner.episode_count) + jnp.sum(aux.validation_episode_count)
    sums = {
      "meta_loss": jnp.sum(aux.stats.meta_loss),
      "policy_entropy": jnp.sum(aux.stats.policy_entropy),
      "y_entropy": jnp.sum(aux.stats.y_entropy),
      "pi_hat_l2": jnp.sum(aux.stats.pi_hat_l2),
      "y_hat_l2": jnp.sum(aux.stats.y_hat_l2),
      "critic_loss": jnp.sum(critic_loss),
      "returns": returns,
      "episodes": episodes,
      "ended": jnp.sum(ended),
      "final_sum": jnp.sum(jnp.where(ended & jnp.isfinite(finals), finals, 0.0)),
      "final_count": jnp.sum(ended & jnp.isfinite(finals)),
      "lifetimes": jnp.asarray(pop.num_lifetimes, jnp.float32),
    }
    return state, sums


def _combine_metrics(per_pop: Sequence[dict[str, chex.Array]]) -> MetaStepMetrics:
  total = {k: sum(p[k] for p in per_pop) for k in per_pop[0]}
  n = total["lifetimes"]
  return MetaStepMetrics(
    meta_loss=total["meta_loss"] / n,
    policy_entropy=total["policy_entropy"] / n,
    y_entropy=total["y_entropy"] / n,
    pi_hat_l2=total["pi_hat_l2"] / n,
    y_hat_l2=total["y_hat_l2"] / n,
    critic_loss=total["critic_loss"] / n,
    episode_return=total["returns"] / jnp.maximum(total["episodes"], 1),
    episodes=total["episodes"],
    lifetimes_ended=total["ended"],
    final_return=jnp.where(
      total["final_count"] > 0, total["final_sum"] / jnp.maximum(total["final_count"], 1), jnp.nan
    ),
  )


class MetaLearnerState(NamedTuple):
  eta: Any
  opt_state: optax.OptState
  step: chex.Array
  skipped: chex.Array  # meta-steps whose gradient was non-finite and not applied


@dataclasses.dataclass(frozen=True)
class MetaLearner:
  """Clip, then Adam on eta (Table 2: Adam, learning rate 1e-4; clipping unspecified)."""

  learning_rate: float = 1e-4
  max_grad_norm: float = 1.0

  @property
  def optimizer(self) -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(self.max_grad_norm), optax.adam(self.learning_rate))

  def init(self, eta: Any) -> MetaLearnerState:
    zero = jnp.zeros((), jnp.int32)
    return MetaLearnerState(eta=eta, opt_state=self.optimizer.init(eta), step=zero, skipped=zero)

  def apply(self, state: MetaLearnerState, grads: Any) -> tuple[MetaLearnerState, chex.Array]:
    """Applies the averaged meta-gradient unless it is non-finite; returns its norm."""
    norm = optax.tree.norm(grads)
    finite = jnp.isfinite(norm)
    updates, opt_state = self.optimizer.update(grads, state.opt_state, state.eta)
    eta = optax.apply_updates(state.eta, updates)
    keep = lambda new, old: jnp.where(finite, new, old)  # noqa: E731
    return (
      MetaLearnerState(
        eta=jax.tree.map(keep, eta, state.eta),
        opt_state=jax.tree.map(keep, opt_state, state.opt_state),
        step=state.step + finite.astype(jnp.int32),
        skipped=state.skipped + (~finite).astype(jnp.int32),
      ),
      norm,
    )
