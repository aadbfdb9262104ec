"""A population of lifetimes on one environment, as arrays with a leading [L] axis.

A lifetime is an agent learning from scratch with the rule: its envs (and their per-
lifetime layout), its agent and optimiser state, its meta-objective critic, and its
hyperparameters. Per lifetime (paper, Section 4 / Table 2): gamma from {0.997, 0.995,
0.99}, beta0 from {0.01, 0.02}, and (alpha_lr, alpha_y) from the environment's bandit over
the Table 3 grid. A lifetime ends when its step budget is spent or its policy's entropy
collapses; it then restarts with a fresh agent, a fresh layout and fresh hyperparameters,
and its final return updates the bandit.

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

from inner_agents.agent import ActorCriticAgent, AgentState
from inner_agents.training import Trainer, TrainState, final_return
from inner_agents.types import AgentHParams
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
  arm: int32, the bandit arm that chose (alpha_lr, alpha_y).  hparams: AgentHParams.
  policy_entropy_cost: beta0.  steps: env steps taken.  budget: env steps it may take.
  """

  train: TrainState
  critic: AgentState
  arm: chex.Array
  hparams: AgentHParams
  policy_entropy_cost: chex.Array
  steps: chex.Array
  budget: chex.Array


class PopulationState(NamedTuple):
  lifetimes: Lifetime
  bandit: bandit_lib.BanditState
  key: chex.PRNGKey


@dataclasses.dataclass(frozen=True, eq=False)
class Population:
  """L lifetimes of `trainer`'s agent on `trainer`'s env.

  Attributes:
    trainer: env, agent, rule, envs per lifetime and unroll length.
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
    train_key, critic_key, gamma_key, beta_key = jax.random.split(key, 4)
    train = self.trainer.init(train_key)
    critic = self.critic.init(critic_key, train.actor.observation)
    arms = jnp.asarray(self.arms, jnp.float32)
    gamma = jax.random.choice(gamma_key, jnp.asarray(self.config.discounts, jnp.float32))
    beta0 = jax.random.choice(beta_key, jnp.asarray(self.config.policy_entropy_costs, jnp.float32))
    hparams = AgentHParams(
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
    )

  def _sample_arms(self, bandit: bandit_lib.BanditState, key: chex.PRNGKey) -> chex.Array:
    """[L] arms: from the bandit, or uniformly when the bandit is off."""
    keys = jax.random.split(key, self.num_lifetimes)
    if not self.config.use_bandit:
      return jax.vmap(lambda k: jax.random.randint(k, (), 0, len(self.arms)))(keys)
    sample = lambda k: bandit_lib.sample(bandit, k, self.config.bandit_tau, self.config.bandit_rho)  # noqa: E731
    return jax.vmap(sample)(keys)

  def init(self, key: chex.PRNGKey) -> PopulationState:
    arm_key, budget_key, life_key, key = jax.random.split(key, 4)
    bandit = bandit_lib.init(len(self.arms), self.config.bandit_window)
    arms = jax.vmap(lambda k: jax.random.randint(k, (), 0, len(self.arms)))(
      jax.random.split(arm_key, self.num_lifetimes)
    )
    full = self.config.lifetime_steps
    budgets = jnp.ceil(jax.random.uniform(budget_key, (self.num_lifetimes,), minval=1e-6) * full)
    keys = jax.random.split(life_key, self.num_lifetimes)
    lifetimes = jax.vmap(self._new_lifetime)(keys, arms, budgets.astype(jnp.int32))
    return PopulationState(lifetimes=lifetimes, bandit=bandit, key=key)

  def end_and_restart(
    self, state: PopulationState, policy_entropy: chex.Array
  ) -> tuple[PopulationState, chex.Array, chex.Array]:
    """Ends lifetimes over budget or with collapsed entropy [L]; restarts them fresh.

    Returns the new state, ended bool [L] and the final returns [L] of those lifetimes.
    """
    lifetimes = state.lifetimes
    ended = (lifetimes.steps >= lifetimes.budget) | (policy_entropy < self.config.entropy_collapse)
    finals = jax.vmap(final_return)(lifetimes.train)  # [L]
    # A lifetime whose episodes never finished has no return to report: the bandit skips it.
    report = ended & jnp.isfinite(finals)
    bandit = bandit_lib.update_many(state.bandit, lifetimes.arm, jnp.nan_to_num(finals), report)
    arm_key, life_key, key = jax.random.split(state.key, 3)
    arms = self._sample_arms(bandit, arm_key)
    budgets = jnp.full((self.num_lifetimes,), self.config.lifetime_steps, jnp.int32)
    fresh = jax.vmap(self._new_lifetime)(jax.random.split(life_key, self.num_lifetimes), arms, budgets)

    def select(new, old):
      mask = ended.reshape(ended.shape + (1,) * (old.ndim - 1))
      return jnp.where(mask, new, old)

    lifetimes = jax.tree.map(select, fresh, lifetimes)
    return PopulationState(lifetimes=lifetimes, bandit=bandit, key=key), ended, finals
