"""The on-policy driver for JAX environments: act T steps in B envs, learn, repeat.

`rollout` steps B environments T times with the agent's `act` (one `lax.scan`);
`Trainer.run(state, meta_params, hparams, num_updates)` chains rollout -> the agent's
`learn` (rule targets, gradient step) in one `lax.scan` over updates: a pure function, to
jit once and map over seeds (`train_seeds`) or vmap over lifetimes (meta-training). Any
agent that acts on-policy fits: it never knows which rule produced its targets.

Final observations (the observation a step reached before the auto-reset; a learner
bootstraps from it where a time limit cut an episode) are recorded only where someone
uses them (`Trainer.final_observations`; by default, where the agent bootstraps with the
rule, `uses_final_observation`) and the environment has a time limit
(`max_episode_steps`), and only for the truncated steps (`Trajectory.truncations`): a
rollout keeps each step's env state (small), then steps again the at most
`max_truncations` transitions that were truncated and observes them, once per rollout and
without a branch, so it costs about 1/T of the rollout's env steps, also under `vmap`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from environments.types import Environment
from inner_agents.agent import InnerAgent
from inner_agents.bootstrap import max_truncations, truncated
from inner_agents.drivers.runs import TrainingRuns, final_return, mean_over_seeds
from inner_agents.rules.base import Targets, UpdateRule
from inner_agents.types import Trajectory, Truncations


class ActorState(NamedTuple):
  """The acting side of one run, batched over its B environments.

  env_state: the envs' states [B].
  observation: [B, ...] current observations.
  episode_return: float32 [B] return so far of the running episodes.
  last_return: float32 [B] return of each env's latest completed episode (NaN if none).
  """

  env_state: Any
  observation: chex.Array
  episode_return: chex.Array
  last_return: chex.Array


class RolloutStats(NamedTuple):
  """return_sum: summed returns of the episodes completed in the rollout; episode_count:
  how many completed."""

  return_sum: chex.Array
  episode_count: chex.Array


def init_actor(env: Environment, env_params: Any, key: chex.PRNGKey, num_envs: int) -> ActorState:
  """Resets `num_envs` environments that share the run's `env_params`."""
  keys = jax.random.split(key, num_envs)
  env_state, ts = jax.vmap(env.reset, in_axes=(0, None))(keys, env_params)
  return ActorState(
    env_state=env_state,
    observation=ts.observation,
    episode_return=jnp.zeros(num_envs, jnp.float32),
    last_return=jnp.full(num_envs, jnp.nan, jnp.float32),
  )


def rollout(
  env: Environment,
  agent: InnerAgent,
  agent_state: Any,
  env_params: Any,
  actor: ActorState,
  key: chex.PRNGKey,
  unroll_length: int,
  final_observations: bool = True,
) -> tuple[ActorState, Trajectory, Any, RolloutStats]:
  """Acts for T = unroll_length steps in B envs with `agent.act`.

  Returns:
    The new ActorState, the Trajectory [T, B] (observations [T+1, B]; with
    `final_observations`, also the observations truncated steps reached, `truncations`,
    see the module doc), the agent's outputs on those T+1 observations (with `agent_state`, so on-policy
    rules need no second forward pass), and RolloutStats.
  """
  step_env = jax.vmap(env.step, in_axes=(0, 0, None))
  num_envs = actor.observation.shape[0]
  bound = max_truncations(env.max_episode_steps, num_envs, unroll_length) if final_observations else 0
  one_per_env = bound == num_envs  # The time limit is at least T: an env truncates at most once.

  def step(carry, xs):
    actor, last = carry
    key, t = xs
    action, out = agent.act(agent_state, actor.observation, key)  # [B], [B, ...]
    env_state, ts = step_env(actor.env_state, action, env_params)
    end = ts.last()
    episode_return = actor.episode_return + ts.reward
    next_actor = ActorState(
      env_state=env_state,
      observation=ts.observation,
      episode_return=jnp.where(end, 0.0, episode_return),
      last_return=jnp.where(end, episode_return, actor.last_return),
    )
    before = None  # The env states to step truncated transitions again from.
    if one_per_env:  # Each env's latest truncated transition: (state before it, action, step).
      cut = end & (ts.discount > 0)
      keep = lambda new, old: jnp.where(cut.reshape(cut.shape + (1,) * (old.ndim - 1)), new, old)  # noqa: E731
      last = jax.tree.map(keep, (actor.env_state, action, jnp.full_like(action, t)), last)
    elif bound:
      before = actor.env_state
    record = (actor.observation, action, ts.reward, ts.discount, end.astype(jnp.float32), before, out)
    completed = (jnp.sum(jnp.where(end, episode_return, 0.0)), jnp.sum(end))
    return (next_actor, last), (record, completed)

  keys = jax.random.split(key, unroll_length)
  last = (
    (actor.env_state, jnp.zeros(num_envs, jnp.int32), jnp.full(num_envs, -1, jnp.int32))
    if one_per_env
    else None
  )
  (actor, last), ((obs, action, reward, discount, end, before, out), (ret, count)) = jax.lax.scan(
    step, (actor, last), (keys, jnp.arange(unroll_length))
  )
  last_out = agent.predict(agent_state, actor.observation)
  outputs = jax.tree.map(lambda xs, x: jnp.concatenate([xs, x[None]]), out, last_out)
  observation = jnp.concatenate([obs, actor.observation[None]])
  trajectory = Trajectory(observation, action, reward, discount, end)
  if one_per_env:
    state, last_action, last_t = last
    _, _, reached = jax.vmap(env.step_autoreset, in_axes=(0, 0, None))(state, last_action, env_params)
    # An env without a truncation points at its step 0, which was not one (masked).
    index = jnp.maximum(last_t, 0) * num_envs + jnp.arange(num_envs)
    trajectory = trajectory._replace(truncations=Truncations(index.astype(jnp.int32), reached))
  elif bound:
    trajectory = trajectory._replace(truncations=truncations_of(env, env_params, before, trajectory, bound))
  stats = RolloutStats(return_sum=jnp.sum(ret), episode_count=jnp.sum(count).astype(jnp.int32))
  return actor, trajectory, outputs, stats


def truncations_of(
  env: Environment, env_params: Any, before: Any, trajectory: Trajectory, bound: int
) -> Truncations:
  """The observations the trajectory's truncated steps reached, at most `bound` of them.

  They are stepped again from their env states `before` [T, B] with their actions: the same
  transitions (the state carries its key), observed by `step_autoreset` before the reset.
  """
  t, b = trajectory.reward.shape
  flat = lambda x: x.reshape((t * b, *x.shape[2:]))  # noqa: E731
  if bound >= t * b:
    index = jnp.arange(t * b)
  else:  # Padding repeats step 0, whose observation then comes along.
    (index,) = jnp.nonzero(truncated(trajectory).reshape(-1), size=bound, fill_value=0)
  states = jax.tree.map(lambda x: flat(x)[index], before)
  _, _, reached = jax.vmap(env.step_autoreset, in_axes=(0, 0, None))(
    states, flat(trajectory.action)[index], env_params
  )
  return Truncations(index=index.astype(jnp.int32), observation=reached)


class TrainState(NamedTuple):
  """Everything one training run carries from update to update."""

  agent: Any
  actor: ActorState
  env_params: Any
  key: chex.PRNGKey


class UpdateMetrics(NamedTuple):
  """Scalars of one update: completed-episode returns of its rollout, the agent's stats."""

  return_sum: chex.Array
  episode_count: chex.Array
  learn: Any


class UpdateData(NamedTuple):
  """What one update learned from: the trajectory [T, B] and the rule's targets [T, B]."""

  trajectory: Trajectory
  targets: Targets


@dataclasses.dataclass(frozen=True, eq=False)
class Trainer:
  """Trains `agent` on `env` with `rule`, B = num_envs envs, T = unroll_length steps.

  One update consumes B * T environment steps.
  """

  env: Environment
  agent: InnerAgent
  rule: UpdateRule
  num_envs: int
  unroll_length: int
  final_observations: bool | None = None

  def __post_init__(self):
    if self.agent.spec.data_regime != "on_policy":
      raise ValueError(
        f"the on-policy driver cannot train agent {self.agent.spec.name} ({self.agent.spec.data_regime})"
      )

  @property
  def records_final_observations(self) -> bool:
    """Whether `act` records final observations: `final_observations`, or (None) whether the
    agent bootstraps from them with the rule."""
    if self.final_observations is not None:
      return self.final_observations
    return self.agent.uses_final_observation(self.rule)

  @property
  def steps_per_update(self) -> int:
    return self.num_envs * self.unroll_length

  def init(self, key: chex.PRNGKey, env_params: Any = None) -> TrainState:
    """A fresh run: env params (drawn, or `env_params` as given, e.g. by a level designer),
    agent, envs."""
    params_key, agent_key, actor_key, key = jax.random.split(key, 4)
    if env_params is None:
      env_params = self.env.sample_params(params_key)
    actor = init_actor(self.env, env_params, actor_key, self.num_envs)
    agent = self.agent.init(agent_key, actor.observation)
    return TrainState(agent=agent, actor=actor, env_params=env_params, key=key)

  def act(self, state: TrainState) -> tuple[TrainState, Trajectory, Any, RolloutStats]:
    """One T-step rollout in the B envs with the current agent (no gradient through
    acting); returns the state with its envs and key advanced, the trajectory [T, B],
    the agent's outputs on its T+1 observations, and the rollout's episode stats."""
    key, rollout_key = jax.random.split(state.key)
    actor, trajectory, outputs, rstats = rollout(
      self.env,
      self.agent,
      jax.lax.stop_gradient(state.agent),
      state.env_params,
      state.actor,
      rollout_key,
      self.unroll_length,
      self.records_final_observations,
    )
    return state._replace(actor=actor, key=key), trajectory, outputs, rstats

  def update_with_data(
    self, state: TrainState, meta_params: Any, hparams: Any
  ) -> tuple[TrainState, UpdateMetrics, UpdateData]:
    """One rollout and one agent update, also returning the trajectory it learned from and
    the rule's targets.

    Acting uses stop-gradient'ed parameters: when eta's meta-gradient flows through this
    update, it flows through the rule's targets and the agent's gradient step only.
    """
    state, trajectory, outputs, rstats = self.act(state)
    agent, stats, targets = self.agent.learn(
      state.agent, trajectory, outputs, self.rule, meta_params, hparams
    )
    metrics = UpdateMetrics(return_sum=rstats.return_sum, episode_count=rstats.episode_count, learn=stats)
    return state._replace(agent=agent), metrics, UpdateData(trajectory=trajectory, targets=targets)

  def update(self, state: TrainState, meta_params: Any, hparams: Any) -> tuple[TrainState, UpdateMetrics]:
    """One rollout and one agent update."""
    state, metrics, _ = self.update_with_data(state, meta_params, hparams)
    return state, metrics

  def run(
    self, state: TrainState, meta_params: Any, hparams: Any, num_updates: int
  ) -> tuple[TrainState, UpdateMetrics]:
    """`num_updates` updates as one scan; metrics have a leading [num_updates] axis."""

    def body(state, _):
      return self.update(state, meta_params, hparams)

    return jax.lax.scan(body, state, None, length=num_updates)

  def train_seeds(
    self,
    seeds: tuple[int, ...],
    meta_params: Any,
    hparams: Any,
    updates_per_point: int,
    num_points: int,
    on_chunk: Callable[[int, float], None] | None = None,
  ) -> TrainingRuns:
    """Fresh agents, one per seed, each trained for updates_per_point * num_points updates.

    The seeds run as one `lax.map` inside one jitted chunk of updates (on CPU `lax.map`
    beats `vmap` for these small per-seed networks); each chunk is one curve point.
    `on_chunk(updates_done, mean_return)` is called after each chunk (progress bars).
    """
    keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])

    @jax.jit
    def init(keys):
      return jax.lax.map(self.init, keys)

    @jax.jit
    def run_chunk(states, meta_params):
      states, metrics = jax.lax.map(lambda s: self.run(s, meta_params, hparams, updates_per_point), states)
      ret = jnp.sum(metrics.return_sum, axis=1) / jnp.sum(metrics.episode_count, axis=1)  # [S]
      return states, ret

    states = init(keys)
    curve = np.zeros((len(seeds), num_points))
    for point in range(num_points):
      states, ret = run_chunk(states, meta_params)
      curve[:, point] = np.asarray(ret)
      if on_chunk is not None:
        on_chunk(updates_per_point, mean_over_seeds(curve[:, point]))
    finals = np.asarray(jax.vmap(lambda s: final_return(s.actor.last_return))(states))
    return TrainingRuns(curve=curve, final_return=finals)
