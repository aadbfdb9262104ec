"""A population of lifetimes on one environment, as arrays with a leading [L] axis.

A lifetime is an agent learning from scratch with the rule: its envs (and their per-
lifetime layout), its agent and optimiser state, its meta-objective critic, and its
hyperparameters. Per lifetime (paper, Section 4 / Table 2): gamma from {0.997, 0.995,
0.99}, beta0 from {0.01, 0.02}, and (alpha_lr, alpha_y) from the environment's bandit over
the Table 3 grid. A lifetime ends when its step budget is spent or its policy's entropy
collapses; its final return updates the environment's bandit, and it restarts with a fresh
agent, a fresh layout and fresh hyperparameters drawn from the updated bandit.

Everything random about a lifetime comes from its own PRNG key, so any slice of a
population's lifetimes can be initialised, stepped and restarted on its own (a shard on a
remote worker) and gives bit-for-bit the lifetimes the whole population would. The bandit
is the one thing lifetimes share: `end` returns a `BanditReport` for whoever owns the
bandit, and `restart` (at the start of the next meta-step) draws from the updated bandit.

Choice where the paper is silent: the first lifetimes get budgets drawn uniformly in
(0, lifetime_steps], so that later lifetimes are staggered and each meta-step sees agents
at all stages of learning rather than all at the same one.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from inner_agents.actor_critic.agent import ActorCriticAgent, AgentState, HParams
from inner_agents.drivers.on_policy import Trainer, TrainState
from inner_agents.drivers.runs import final_return
from lpg import bandit as bandit_lib


@dataclasses.dataclass(frozen=True)
class PopulationConfig:
  """Per-lifetime sampling and lifetime ends."""

  discounts: tuple[float, ...] = (0.997, 0.995, 0.99)
  policy_entropy_costs: tuple[float, ...] = (0.01, 0.02)
  lifetime_steps: int = 3_000_000
  entropy_collapse: float = 1e-3
  bandit_tau: float = 0.1
  bandit_rho: float = 0.2
  bandit_window: int = 10
  use_bandit: bool = True


class Lifetime(NamedTuple):
  """One lifetime (batched [L] in a population).

  train: the agent, its envs and PRNG key.  critic: the meta-objective's value function.
  arm: int32, the bandit arm that chose (alpha_lr, alpha_y).  hparams: the agent's HParams.
  policy_entropy_cost: beta0.  steps: env steps taken.  budget: env steps it may take.
  ended: bool, it ended in the last meta-step and restarts at the start of the next.
  key: the PRNG key its successor is drawn from.
  """

  train: TrainState
  critic: AgentState
  arm: chex.Array
  hparams: HParams
  policy_entropy_cost: chex.Array
  steps: chex.Array
  budget: chex.Array
  ended: chex.Array
  key: chex.PRNGKey


class BanditReport(NamedTuple):
  """What the bandit learns from lifetimes [l] at the end of a meta-step.

  arm: int32 [l].  final_return: float32 [l] (0 where not valid).  valid: bool [l], the
  lifetime ended and had a finished episode to report.
  """

  arm: chex.Array
  final_return: chex.Array
  valid: chex.Array


def update_bandit(bandit: bandit_lib.BanditState, report: BanditReport) -> bandit_lib.BanditState:
  """Feeds the reported final returns to an environment's bandit, in lifetime order."""
  return bandit_lib.update_many(bandit, report.arm, report.final_return, report.valid)


@dataclasses.dataclass(frozen=True, eq=False)
class Population:
  """L lifetimes of `trainer`'s agent on `trainer`'s env.

  Attributes:
    trainer: env, agent, rule, envs per lifetime and unroll length; its rollouts record the
      final observations the critic bootstraps from (`final_observations=True`).
    critic: the meta-objective's value network (same torso as the agent).
    arms: float [num_arms, 2] the (alpha_lr, alpha_y) grid of the bandit.
    num_lifetimes: L.
    critic_learning_rate: step size of the critic.
    config: sampling and lifetime-end settings.
  """

  trainer: Trainer
  critic: ActorCriticAgent
  arms: np.ndarray
  num_lifetimes: int
  critic_learning_rate: float
  config: PopulationConfig

  def _new_lifetime(self, key: chex.PRNGKey, arm: chex.Array, budget: chex.Array) -> Lifetime:
    train_key, critic_key, gamma_key, beta_key, next_key = jax.random.split(key, 5)
    train = self.trainer.init(train_key)
    critic = self.critic.init(critic_key, train.actor.observation)
    arms = jnp.asarray(self.arms, jnp.float32)
    gamma = jax.random.choice(gamma_key, jnp.asarray(self.config.discounts, jnp.float32))
    beta0 = jax.random.choice(beta_key, jnp.asarray(self.config.policy_entropy_costs, jnp.float32))
    hparams = HParams(
      learning_rate=arms[arm, 0],
      y_cost=arms[arm, 1],
      value_cost=jnp.zeros(()),
      entropy_cost=jnp.zeros(()),
      discount=gamma,
    )
    return Lifetime(
      train=train,
      critic=critic,
      arm=jnp.asarray(arm, jnp.int32),
      hparams=hparams,
      policy_entropy_cost=beta0,
      steps=jnp.zeros((), jnp.int32),
      budget=jnp.asarray(budget, jnp.int32),
      ended=jnp.zeros((), bool),
      key=next_key,
    )

  def init_bandit(self) -> bandit_lib.BanditState:
    return bandit_lib.init(len(self.arms), self.config.bandit_window)

  def init(self, key: chex.PRNGKey, start: int = 0, stop: int | None = None) -> Lifetime:
    """Lifetimes [start, stop) of the population (default all L), each with [..] leaves.

    Lifetime l's draws depend only on `key` and l, so slices of the population can be
    initialised separately and concatenate to the whole.
    """
    stop = self.num_lifetimes if stop is None else stop
    keys = jax.random.split(key, self.num_lifetimes)[start:stop]

    def first(k):
      arm_key, budget_key, life_key = jax.random.split(k, 3)
      arm = jax.random.randint(arm_key, (), 0, len(self.arms))
      budget = jnp.ceil(jax.random.uniform(budget_key, minval=1e-6) * self.config.lifetime_steps)
      return self._new_lifetime(life_key, arm, budget.astype(jnp.int32))

    return jax.vmap(first)(keys)

  def restart(self, lifetimes: Lifetime, bandit: bandit_lib.BanditState) -> Lifetime:
    """Replaces the ended lifetimes [l] by fresh ones, arms drawn from `bandit`."""

    def successor(lifetime):
      arm_key, life_key = jax.random.split(lifetime.key)
      if self.config.use_bandit:
        arm = bandit_lib.sample(bandit, arm_key, self.config.bandit_tau, self.config.bandit_rho)
      else:
        arm = jax.random.randint(arm_key, (), 0, len(self.arms))
      return self._new_lifetime(life_key, arm, jnp.asarray(self.config.lifetime_steps, jnp.int32))

    fresh = jax.vmap(successor)(lifetimes)
    ended = lifetimes.ended

    def select(new, old):
      return jnp.where(ended.reshape(ended.shape + (1,) * (old.ndim - 1)), new, old)

    return jax.tree.map(select, fresh, lifetimes)

  def end(self, lifetimes: Lifetime, policy_entropy: chex.Array) -> tuple[Lifetime, BanditReport, chex.Array]:
    """Marks lifetimes [l] over budget or with collapsed entropy as ended.

    Returns the marked lifetimes, the bandit's report and the final returns [l] (NaN where
    no episode finished).
    """
    ended = (lifetimes.steps >= lifetimes.budget) | (policy_entropy < self.config.entropy_collapse)
    finals = jax.vmap(lambda train: final_return(train.actor.last_return))(lifetimes.train)
    # A lifetime whose episodes never finished has no return to report: the bandit skips it.
    report = BanditReport(lifetimes.arm, jnp.nan_to_num(finals), ended & jnp.isfinite(finals))
    return lifetimes._replace(ended=ended), report, finals
