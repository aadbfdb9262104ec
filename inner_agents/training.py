"""Training an inner agent with an update rule: rollout -> rule targets -> agent update.

`Trainer.run(state, meta_params, hparams, num_updates)` is a pure function, one `lax.scan`
over updates; jit it once and `vmap` it over seeds (or lifetimes).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

from environments.types import Environment
from inner_agents import rollout as rollout_lib
from inner_agents.agent import ActorCriticAgent, AgentState, LossStats, Targets
from inner_agents.types import AgentHParams, AgentOutput, Trajectory
from lpg import rules as rules_lib


class TrainState(NamedTuple):
  """Everything one training run carries from update to update."""

  agent: AgentState
  actor: rollout_lib.ActorState
  env_params: Any
  key: chex.PRNGKey


class UpdateMetrics(NamedTuple):
  """Scalars of one update: completed-episode returns of its rollout and loss stats."""

  return_sum: chex.Array
  episode_count: chex.Array
  loss: chex.Array
  policy_entropy: chex.Array
  y_entropy: chex.Array
  kl: chex.Array
  value_loss: chex.Array


class UpdateData(NamedTuple):
  """What one update learned from: the trajectory [T, B] and the rule's targets [T, B]."""

  trajectory: Trajectory
  targets: Targets


def learn(
  agent: ActorCriticAgent,
  rule: rules_lib.UpdateRule,
  agent_state: AgentState,
  meta_params: Any,
  hparams: AgentHParams,
  trajectory: Trajectory,
  outputs: AgentOutput,
) -> tuple[AgentState, LossStats, Targets]:
  """One agent update from a trajectory [T, B] and the agent's outputs on its T+1
  observations: rule targets, then a gradient step. Returns the new state, the loss
  stats and the targets."""
  inputs = rules_lib.rule_inputs(outputs, trajectory)
  targets = rule.targets(meta_params, inputs, hparams)
  agent_state, stats = agent.update(agent_state, trajectory, targets, hparams)
  return agent_state, stats, targets


@dataclasses.dataclass(frozen=True, eq=False)
class Trainer:
  """Trains `agent` on `env` with `rule`, B = num_envs envs, T = unroll_length steps.

  One update consumes B * T environment steps.
  """

  env: Environment
  agent: ActorCriticAgent
  rule: rules_lib.UpdateRule
  num_envs: int
  unroll_length: int

  @property
  def steps_per_update(self) -> int:
    return self.num_envs * self.unroll_length

  def init(self, key: chex.PRNGKey) -> TrainState:
    """A fresh lifetime: env params (layout, chain length), agent, envs."""
    params_key, agent_key, actor_key, key = jax.random.split(key, 4)
    env_params = self.env.sample_params(params_key)
    actor = rollout_lib.init_actor(self.env, env_params, actor_key, self.num_envs)
    agent = self.agent.init(agent_key, actor.observation)
    return TrainState(agent=agent, actor=actor, env_params=env_params, key=key)

  def update(
    self, state: TrainState, meta_params: Any, hparams: AgentHParams
  ) -> tuple[TrainState, UpdateMetrics]:
    """One rollout and one agent update."""
    state, metrics, _ = self.update_with_data(state, meta_params, hparams)
    return state, metrics

  def update_with_data(
    self, state: TrainState, meta_params: Any, hparams: AgentHParams
  ) -> tuple[TrainState, UpdateMetrics, UpdateData]:
    """`update`, also returning the trajectory it learned from and the rule's targets.

    Acting uses stop-gradient'ed parameters: when eta's meta-gradient flows through this
    update, it flows through the rule's targets and the agent's gradient step only.
    """
    state, trajectory, outputs, rstats = self.act(state)
    agent, lstats, targets = learn(
      self.agent, self.rule, state.agent, meta_params, hparams, trajectory, outputs
    )
    metrics = UpdateMetrics(
      return_sum=rstats.return_sum,
      episode_count=rstats.episode_count,
      loss=lstats.loss,
      policy_entropy=lstats.policy_entropy,
      y_entropy=lstats.y_entropy,
      kl=lstats.kl,
      value_loss=lstats.value_loss,
    )
    return state._replace(agent=agent), metrics, UpdateData(trajectory=trajectory, targets=targets)

  def act(self, state: TrainState) -> tuple[TrainState, Trajectory, AgentOutput, rollout_lib.RolloutStats]:
    """One T-step rollout in the B envs with the current agent (no gradient through
    acting); returns the state with its envs and key advanced, the trajectory [T, B],
    the agent's outputs on its T+1 observations, and the rollout's episode stats."""
    key, rollout_key = jax.random.split(state.key)
    actor, trajectory, outputs, rstats = rollout_lib.rollout(
      self.env,
      self.agent,
      jax.lax.stop_gradient(state.agent.params),
      state.env_params,
      state.actor,
      rollout_key,
      self.unroll_length,
    )
    return state._replace(actor=actor, key=key), trajectory, outputs, rstats

  def run(
    self, state: TrainState, meta_params: Any, hparams: AgentHParams, num_updates: int
  ) -> tuple[TrainState, UpdateMetrics]:
    """`num_updates` updates as one scan; metrics have a leading [num_updates] axis."""

    def body(state, _):
      return self.update(state, meta_params, hparams)

    return jax.lax.scan(body, state, None, length=num_updates)


def final_return(state: TrainState) -> chex.Array:
  """Mean over envs of each env's latest completed episode return (NaN if none finished)."""
  last = state.actor.last_return
  finished = ~jnp.isnan(last)
  return jnp.where(jnp.any(finished), jnp.sum(jnp.where(finished, last, 0.0)) / jnp.sum(finished), jnp.nan)
