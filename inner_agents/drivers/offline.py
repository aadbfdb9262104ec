"""The offline driver: an agent learns from a fixed dataset and is evaluated in the real env.

No interaction while learning. Each update samples B windows of T consecutive transitions
(`Windows`) uniformly from the dataset's transitions, laid end to end, episode after
episode, as a rollout with auto-reset would give them (a window may cross an episode end;
`end` marks it, and a rule's recurrences stop there). Windows serve every rule alike: CRR
reads them transition by transition, the LPG rule as the 20-step trajectories it was
meta-trained on. After each chunk of updates (one curve point) the policy is rolled out
in the environment the data came from: `eval_episodes` episodes, the first episode of
each of that many parallel envs, all jitted for JAX envs, stepped on the host for
Gymnasium ones. The curve is that evaluation return; the final return is the last one.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from environments.host import HostEnvironment
from environments.types import Environment
from inner_agents.agent import InnerAgent
from inner_agents.drivers.runs import TrainingRuns, mean_over_seeds
from inner_agents.rules.base import UpdateRule
from inner_agents.types import Windows


class DeviceData(NamedTuple):
  """A dataset's N transitions as device arrays, laid end to end.

  observation: [N+1, ...] s_t of every transition, then the last transition's next state.
  next_observation: [N, ...] the state each transition reached (an episode's final state at
    its last step).
  action: int32 [N].  reward: float32 [N].
  discount: float32 [N] 0 where the episode terminated, else 1.
  end: float32 [N] 1 where the episode ended (terminated or truncated).
  """

  observation: chex.Array
  next_observation: chex.Array
  action: chex.Array
  reward: chex.Array
  discount: chex.Array
  end: chex.Array


def device_data(
  observations: np.ndarray,
  next_observations: np.ndarray,
  actions: np.ndarray,
  rewards: np.ndarray,
  terminations: np.ndarray,
  truncations: np.ndarray,
) -> DeviceData:
  """`DeviceData` from a dataset's flat [N] arrays (episodes in order)."""
  terminations = np.asarray(terminations, bool)
  return DeviceData(
    observation=jnp.asarray(np.concatenate([observations, next_observations[-1:]])),
    next_observation=jnp.asarray(next_observations),
    action=jnp.asarray(actions, jnp.int32),
    reward=jnp.asarray(rewards, jnp.float32),
    discount=jnp.asarray(~terminations, jnp.float32),
    end=jnp.asarray(terminations | np.asarray(truncations, bool), jnp.float32),
  )


def sample_windows(data: DeviceData, key: chex.PRNGKey, num_windows: int, length: int) -> Windows:
  """B = num_windows windows of T = length consecutive transitions, starts uniform."""
  n = data.action.shape[0]
  if length > n:
    raise ValueError(f"windows of {length} steps need at least that many transitions, the dataset has {n}")
  start = jax.random.randint(key, (num_windows,), 0, n - length + 1)
  index = start[None, :] + jnp.arange(length + 1)[:, None]  # [T+1, B]
  step = index[:-1]
  return Windows(
    observation=data.observation[index],
    next_observation=data.next_observation[step],
    action=data.action[step],
    reward=data.reward[step],
    discount=data.discount[step],
    end=data.end[step],
  )


def evaluate_in_env(
  env: Environment,
  env_params: Any,
  agent: InnerAgent,
  agent_state: Any,
  key: chex.PRNGKey,
  num_episodes: int,
  max_steps: int,
) -> chex.Array:
  """Mean undiscounted return of the first episode of `num_episodes` parallel JAX envs,
  run for max_steps (an episode still going then counts what it collected)."""
  reset_key, key = jax.random.split(key)
  env_state, ts = jax.vmap(env.reset, in_axes=(0, None))(
    jax.random.split(reset_key, num_episodes), env_params
  )

  def step(carry, act_key):
    env_state, obs, done, ret = carry
    action, _ = agent.act(agent_state, obs, act_key)
    env_state, ts = jax.vmap(env.step, in_axes=(0, 0, None))(env_state, action, env_params)
    ret = ret + jnp.where(done, 0.0, ts.reward)
    return (env_state, ts.observation, done | ts.last(), ret), None

  init = (env_state, ts.observation, jnp.zeros(num_episodes, bool), jnp.zeros(num_episodes))
  (_, _, _, ret), _ = jax.lax.scan(step, init, jax.random.split(key, max_steps))
  return jnp.mean(ret)


def evaluate_on_host(
  env: HostEnvironment, act: Callable, agent_state: Any, seed: int, max_steps: int
) -> float:
  """Mean score of the first episode of each of the host env's B envs (reset with `seed`)."""
  key = jax.random.PRNGKey(seed)
  obs = env.reset(seed).observation
  score = np.full(env.num_envs, np.nan)
  for _ in range(max_steps):
    key, act_key = jax.random.split(key)
    action, _ = act(agent_state, obs, act_key)
    hs = env.step(np.asarray(action))
    obs = hs.timestep.observation
    first = hs.scores.done & np.isnan(score)
    score[first] = hs.scores.score[first]
    if not np.isnan(score).any():
      break
  return float(np.nanmean(score)) if not np.isnan(score).all() else math.nan


class OfflineState(NamedTuple):
  agent: Any
  key: chex.PRNGKey


@dataclasses.dataclass(frozen=True, eq=False)
class OfflineTrainer:
  """Trains `agent` with `rule` on `data`, B windows of T steps per update, evaluating in
  `env` (a JAX env with `env_params`) or `host_env` (a host env of B_eval envs).

  steps_per_update counts the dataset transitions one update samples (B * T).
  """

  data: DeviceData
  agent: InnerAgent
  rule: UpdateRule
  num_windows: int
  window: int
  env: Environment | None = None
  env_params: Any = None
  host_env: HostEnvironment | None = None
  eval_episodes: int = 32
  eval_max_steps: int = 1000

  def __post_init__(self):
    if self.agent.spec.data_regime != "offline":
      raise ValueError(
        f"the offline driver cannot train agent {self.agent.spec.name} ({self.agent.spec.data_regime})"
      )
    if (self.env is None) == (self.host_env is None):
      raise ValueError("the offline driver evaluates in exactly one of env (JAX) or host_env")

  @property
  def steps_per_update(self) -> int:
    return self.num_windows * self.window

  def init(self, key: chex.PRNGKey) -> OfflineState:
    agent_key, key = jax.random.split(key)
    return OfflineState(agent=self.agent.init(agent_key, self.data.observation[:1]), key=key)

  def update(self, state: OfflineState, meta_params: Any, hparams: Any) -> tuple[OfflineState, Any]:
    """One update on freshly sampled windows; returns the learner's stats."""
    key, sample_key = jax.random.split(state.key)
    windows = sample_windows(self.data, sample_key, self.num_windows, self.window)
    agent, stats, _ = self.agent.learn(state.agent, windows, None, self.rule, meta_params, hparams)
    return OfflineState(agent=agent, key=key), stats

  def run(
    self, state: OfflineState, meta_params: Any, hparams: Any, num_updates: int
  ) -> tuple[OfflineState, Any]:
    """`num_updates` updates as one scan; stats have a leading [num_updates] axis."""
    return jax.lax.scan(lambda s, _: self.update(s, meta_params, hparams), state, None, length=num_updates)

  def _max_steps(self) -> int:
    limit = self.env.max_episode_steps if self.env is not None else None
    return limit or self.eval_max_steps

  def train_seeds(
    self,
    seeds: tuple[int, ...],
    meta_params: Any,
    hparams: Any,
    updates_per_point: int,
    num_points: int,
    on_chunk: Callable[[int, float], None] | None = None,
  ) -> TrainingRuns:
    """Fresh agents, one per seed (one `lax.map` in each jitted chunk), each trained for
    updates_per_point * num_points updates and evaluated after every chunk."""
    keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])

    @jax.jit
    def run_chunk(states, meta_params):
      states, _ = jax.lax.map(lambda s: self.run(s, meta_params, hparams, updates_per_point), states)
      return states

    @jax.jit
    def evaluate(states, point):
      def one(state):
        key = jax.random.fold_in(jax.random.fold_in(state.key, 1 << 20), point)
        agent_state = jax.lax.stop_gradient(state.agent)
        return evaluate_in_env(
          self.env, self.env_params, self.agent, agent_state, key, self.eval_episodes, self._max_steps()
        )

      return jax.lax.map(one, states)

    act = jax.jit(self.agent.act)
    states = jax.jit(lambda keys: jax.lax.map(self.init, keys))(keys)
    curve = np.zeros((len(seeds), num_points))
    for point in range(num_points):
      states = run_chunk(states, meta_params)
      if self.env is not None:
        curve[:, point] = np.asarray(evaluate(states, point))
      else:
        for i, seed in enumerate(seeds):
          agent_state = jax.tree.map(lambda x, i=i: x[i], states.agent)
          curve[i, point] = evaluate_on_host(
            self.host_env, act, agent_state, seed * 1000 + point, self.eval_max_steps
          )
      if on_chunk is not None:
        on_chunk(updates_per_point, mean_over_seeds(curve[:, point]))
    return TrainingRuns(curve=curve, final_return=curve[:, -1].copy())
