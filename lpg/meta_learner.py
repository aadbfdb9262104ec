"""The meta-gradient of the rule's parameters eta through K unrolled inner updates.

One meta-step, for every lifetime of every population (one population per training
environment; all in one jitted computation, lifetimes vmapped):

  theta_0 -> K x [act T steps in B envs with theta_k; targets = LPG_eta(...);
                  theta_{k+1} = theta_k - lr * opt(grad_theta L(theta_k; targets))]
          -> act T more steps with theta_K (validation rollout)
          -> meta-loss of theta_K (lpg.meta_objective), differentiated w.r.t. eta
             through all K updates (truncated backprop: theta_0 is a constant).

The lifetimes may be split into shards (`MetaGradient.shard`) that run anywhere: each
returns the SUM of its lifetimes' meta-gradients and its bandit reports (`WorkerOutput`),
and `combine` averages over all lifetimes, so any sharding gives the same mean as one
process (up to float summation order). `MetaLearner` clips the mean and takes an Adam step
on eta (Table 2); a non-finite meta-gradient is skipped and counted. After the gradient,
each lifetime's critic takes a step, lifetimes that end are reported to their env's bandit
and restart at the start of the next meta-step, and the others continue from theta_K (the
paper's sliding window).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from inner_agents.drivers.on_policy import TrainState, UpdateMetrics
from inner_agents.types import Trajectory
from lpg import meta_objective
from lpg.bandit import BanditState
from lpg.population import BanditReport, Lifetime, Population


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
  values, bootstrap = meta_objective.critic_values(pop.critic, lifetime.critic.params, traj_v)
  loss, stats = meta_objective.meta_loss(
    trainer.agent,
    train.agent.params,
    traj_v,
    jax.lax.stop_gradient(values),
    jax.lax.stop_gradient(bootstrap),
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


class Part(NamedTuple):
  """Lifetimes [start, stop) of the population of training env `env` (an index)."""

  env: int
  start: int
  stop: int


def shard_parts(sizes: Sequence[int], index: int, count: int) -> tuple[Part, ...]:
  """The parts of shard `index` of `count`: contiguous, near-equal slices of all lifetimes.

  sizes: lifetimes per population. Lifetimes are numbered population by population; shard i
  gets global lifetimes [floor(i M / count), floor((i + 1) M / count)), M = sum(sizes).
  """
  total = sum(sizes)
  lo, hi = index * total // count, (index + 1) * total // count
  parts, offset = [], 0
  for env, size in enumerate(sizes):
    start, stop = max(lo - offset, 0), min(hi - offset, size)
    if start < stop:
      parts.append(Part(env, start, stop))
    offset += size
  return tuple(parts)


class WorkerOutput(NamedTuple):
  """What a meta-step of a shard of lifetimes sends to the meta-learner.

  grads: like eta, the SUM over the shard's lifetimes of d(meta-loss)/d(eta).
  reports: one BanditReport per part, for the bandit of that part's env.
  sums: {name: [] float32} metric sums over the shard (see `combine_metrics`).
  """

  grads: Any
  reports: tuple[BanditReport, ...]
  sums: dict[str, chex.Array]


@dataclasses.dataclass(frozen=True, eq=False)
class MetaGradient:
  """Meta-gradients over (a shard of) the populations, one jitted function.

  Attributes:
    populations: one Population per training environment.
    num_inner_updates: K (paper: 5).
    objective: the meta-objective's settings.
    parts: the lifetimes this instance owns (default: all of every population).
  """

  populations: Sequence[Population]
  num_inner_updates: int
  objective: meta_objective.MetaObjectiveConfig
  parts: tuple[Part, ...] | None = None

  def __post_init__(self):
    if self.parts is None:
      parts = tuple(Part(e, 0, p.num_lifetimes) for e, p in enumerate(self.populations))
      object.__setattr__(self, "parts", parts)

  def shard(self, index: int, count: int) -> MetaGradient:
    """The same meta-gradient over shard `index` of `count` of all lifetimes."""
    parts = shard_parts([p.num_lifetimes for p in self.populations], index, count)
    return dataclasses.replace(self, parts=parts)

  @property
  def num_lifetimes(self) -> int:
    return sum(part.stop - part.start for part in self.parts)

  def steps_per_meta_step(self) -> int:
    """Env steps of one meta-step: K inner and 1 validation rollout per lifetime."""
    return sum(
      (part.stop - part.start)
      * (self.num_inner_updates + 1)
      * self.populations[part.env].trainer.steps_per_update
      for part in self.parts
    )

  def init(self, key: chex.PRNGKey) -> tuple[Lifetime, ...]:
    """This shard's lifetimes, one [l] batch per part, as a whole-population init would draw them."""
    keys = jax.random.split(key, len(self.populations))
    return tuple(self.populations[p.env].init(keys[p.env], p.start, p.stop) for p in self.parts)

  def init_bandits(self) -> tuple[BanditState, ...]:
    return tuple(p.init_bandit() for p in self.populations)

  def loss(self, eta: Any, lifetimes: Sequence[Lifetime]) -> tuple[chex.Array, tuple[LifetimeAux, ...]]:
    """SUM of the meta-losses of this shard's lifetimes (the learner divides by the total)."""
    total, auxes = 0.0, []
    for part, lts in zip(self.parts, lifetimes):
      pop = self.populations[part.env]
      losses, aux = jax.vmap(lifetime_meta_loss, in_axes=(None, 0, None, None, None))(
        eta, lts, pop, self.num_inner_updates, self.objective
      )
      total += jnp.sum(losses)
      auxes.append(aux)
    return total, tuple(auxes)

  def step(
    self, eta: Any, bandits: Sequence[BanditState], lifetimes: Sequence[Lifetime]
  ) -> tuple[WorkerOutput, tuple[Lifetime, ...]]:
    """One meta-step of this shard's lifetimes.

    Lifetimes that ended in the previous step restart (arms drawn from `bandits`, one per
    training env), the meta-gradient is taken, critics step, and lifetimes that end now are
    marked and reported. Returns (the output for the meta-learner, the new lifetimes).
    """
    lifetimes = tuple(
      self.populations[p.env].restart(lts, bandits[p.env]) for p, lts in zip(self.parts, lifetimes)
    )
    grads, auxes = jax.grad(self.loss, has_aux=True)(eta, lifetimes)
    advanced = [
      self._advance(self.populations[p.env], lts, aux) for p, lts, aux in zip(self.parts, lifetimes, auxes)
    ]
    new_lifetimes = tuple(lts for lts, _, _ in advanced)
    reports = tuple(report for _, report, _ in advanced)
    sums = {k: sum(s[k] for _, _, s in advanced) for k in advanced[0][2]} if advanced else {}
    return WorkerOutput(grads, reports, sums), new_lifetimes

  def _advance(self, pop: Population, lifetimes: Lifetime, aux: LifetimeAux):
    critic, critic_loss = jax.vmap(
      lambda c, t, g: meta_objective.critic_update(
        pop.critic, c, t, g, pop.critic_learning_rate, self.objective.critic_lambda
      )
    )(lifetimes.critic, aux.trajectories, lifetimes.hparams.discount)
    steps_taken = (self.num_inner_updates + 1) * pop.trainer.steps_per_update
    lifetimes = lifetimes._replace(train=aux.train, critic=critic, steps=lifetimes.steps + steps_taken)
    lifetimes, report, finals = pop.end(lifetimes, aux.stats.policy_entropy)
    ended = lifetimes.ended
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
      "ended": jnp.sum(ended).astype(jnp.float32),
      "final_sum": jnp.sum(jnp.where(ended & jnp.isfinite(finals), finals, 0.0)),
      "final_count": jnp.sum(ended & jnp.isfinite(finals)).astype(jnp.float32),
      "lifetimes": jnp.asarray(ended.shape[0], jnp.float32),
    }
    return lifetimes, report, sums


def combine(
  outputs: Sequence[WorkerOutput], parts: Sequence[Sequence[Part]], num_envs: int
) -> tuple[Any, tuple[BanditReport | None, ...], MetaStepMetrics]:
  """Merges shards' outputs: (mean meta-gradient, a report per env or None, metrics).

  outputs[i] came from the shard owning parts[i]; shards are given in lifetime order, so
  each env's report lists its lifetimes in the order a single worker would.
  """
  sums = [o.sums for o in outputs if o.sums]
  count = sum(s["lifetimes"] for s in sums)
  grads = jax.tree.map(lambda *g: sum(g) / count, *[o.grads for o in outputs])
  per_env: list[list[BanditReport]] = [[] for _ in range(num_envs)]
  for output, shard in zip(outputs, parts):
    for part, report in zip(shard, output.reports):
      per_env[part.env].append(report)
  reports = tuple(jax.tree.map(lambda *x: jnp.concatenate(x), *rs) if rs else None for rs in per_env)
  return grads, reports, combine_metrics(sums)


def slice_lifetimes(lifetimes: Sequence[Lifetime], parts: Sequence[Part]) -> tuple[Lifetime, ...]:
  """A shard's lifetimes (one batch per part) from the whole population's (one per env)."""

  def part_of(p: Part) -> Lifetime:
    return jax.tree.map(lambda x: np.asarray(x)[p.start : p.stop], lifetimes[p.env])

  return tuple(part_of(p) for p in parts)


def merge_lifetimes(
  shards: Sequence[Sequence[Lifetime]], parts: Sequence[Sequence[Part]], num_envs: int
) -> tuple[Lifetime, ...]:
  """The whole population's lifetimes (one [L] batch per env) from shards in lifetime order."""
  per_env: list[list[Lifetime]] = [[] for _ in range(num_envs)]
  for shard, shard_parts in zip(shards, parts):
    for part, lifetimes in zip(shard_parts, shard):
      per_env[part.env].append(lifetimes)
  return tuple(jax.tree.map(lambda *x: np.concatenate(x), *batches) for batches in per_env)


def combine_metrics(per_shard: Sequence[dict[str, chex.Array]]) -> MetaStepMetrics:
  """Metrics of a meta-step from per-shard (or per-population) sums."""
  total = {k: sum(p[k] for p in per_shard) for k in per_shard[0]}
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
