"""The driver for host-side environments (Atari, Gymnasium): any on-policy agent, any rule.

The JAX envs train inside one `lax.scan` (`inner_agents.drivers.on_policy`); host envs
step in numpy, so the loop over time steps is Python here, around two jitted functions:
the agent's `act` (one policy step for the B envs) and its `learn` (the same update as in
the JAX driver: rule targets, then a gradient step).

Overlap (on by default): after the T-th step, the next trajectory's first action is
sampled and sent to the envs *before* the update is computed, so the envs step (in
ale-py's threads) while XLA learns. That first action comes from the parameters one
update old; the rule still sees pi(a_0|s_0) and y(s_0) under the parameters being
updated (they are recomputed in `learn`), so only the behaviour of one step in T lags.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from environments.host import HostEnvironment
from inner_agents.agent import InnerAgent
from inner_agents.drivers.runs import TrainingRuns, final_return
from inner_agents.rules.base import UpdateRule
from inner_agents.types import Trajectory, Truncations


class HostRun(NamedTuple):
  """A finished host training run.

  curve: float [P] mean score of the scored episodes (full games) that ended during each
    curve point's updates (NaN where none ended).
  final_return: `final_return` of each env's latest scored episode (NaN if none).
  agent: the trained agent's state.
  steps_per_s: env steps per second of the whole loop (acting, stepping and learning).
  """

  curve: np.ndarray
  final_return: float
  agent: Any
  steps_per_s: float


def host_truncations(trajectory: Trajectory, finals: list[np.ndarray]) -> Truncations | None:
  """The truncated steps of a host trajectory and the observations they reached (the envs'
  final observations `finals`, T of [B, ...]), or None if there are none. K is B, or T * B
  when more than B were truncated (two shapes at most, so `learn` compiles at most twice);
  padding repeats the first truncated step."""
  t, b = trajectory.reward.shape
  (index,) = np.nonzero(((trajectory.end > 0) & (trajectory.discount > 0)).reshape(-1))
  if index.size == 0:
    return None
  size = b if index.size <= b else t * b
  index = np.concatenate([index, np.full(size - index.size, index[0])]).astype(np.int32)
  observation = np.stack(finals).reshape((t * b, *finals[0].shape[1:]))[index]
  return Truncations(index=index, observation=observation)


@dataclasses.dataclass(frozen=True, eq=False)
class HostTrainer:
  """Trains `agent` with `rule` on the B envs of `env`, T = unroll_length steps per update."""

  env: HostEnvironment
  agent: InnerAgent
  rule: UpdateRule
  unroll_length: int
  overlap: bool = True

  def __post_init__(self):
    if self.agent.spec.data_regime != "on_policy":
      raise ValueError(
        f"the host driver cannot train agent {self.agent.spec.name} ({self.agent.spec.data_regime})"
      )
    object.__setattr__(self, "_act", jax.jit(self.agent.act))
    object.__setattr__(self, "_records_final_observations", self.agent.uses_final_observation(self.rule))
    object.__setattr__(self, "_learn", jax.jit(self._learn_fn))

  @property
  def steps_per_update(self) -> int:
    return self.env.num_envs * self.unroll_length

  def _learn_fn(self, agent_state: Any, meta_params: Any, hparams: Any, trajectory: Trajectory, outputs: Any):
    # outputs [T+1, B] come from acting; step 0's are recomputed (see the module doc).
    first = self.agent.predict(agent_state, trajectory.observation[0])
    outputs = jax.tree.map(lambda xs, x: xs.at[0].set(x), outputs, first)
    agent_state, stats, _ = self.agent.learn(
      agent_state, trajectory, outputs, self.rule, meta_params, hparams
    )
    return agent_state, stats

  def train(
    self,
    seed: int,
    meta_params: Any,
    hparams: Any,
    num_updates: int,
    num_points: int,
    on_chunk: Callable[[int, float], None] | None = None,
  ) -> HostRun:
    """`num_updates` updates from a fresh agent; the curve has `num_points` points.

    `on_chunk(updates_done, mean_score)` is called after each point (progress bars).
    """
    key = jax.random.PRNGKey(seed)
    init_key, key = jax.random.split(key)
    ts = self.env.reset(seed)
    agent_state = self.agent.init(init_key, jnp.asarray(ts.observation))
    b, t_len = self.env.num_envs, self.unroll_length
    points = np.array_split(np.arange(num_updates), num_points)
    curve = np.full(len(points), np.nan)
    latest = np.full(b, np.nan)
    obs = ts.observation
    pending = None  # (action, output) sent but not yet received, with overlap.
    start = time.time()
    for p, updates in enumerate(points):
      score_sum, score_count = 0.0, 0
      for _ in updates:
        observations, actions, rewards, discounts, ends, finals, outs = [obs], [], [], [], [], [], []
        for _ in range(t_len):
          if pending is None:
            key, act_key = jax.random.split(key)
            action, out = self._act(agent_state, obs, act_key)
            action = np.asarray(action)
            self.env.send(action)
          else:
            action, out = pending
            pending = None
          ts, scores, final = self.env.recv()
          obs = ts.observation
          observations.append(obs)
          actions.append(action)
          rewards.append(ts.reward)
          discounts.append(ts.discount)
          ends.append(ts.step_type == 2)
          finals.append(final)
          outs.append(out)
          score_sum += float(np.sum(scores.score[scores.done]))
          score_count += int(np.sum(scores.done))
          latest = np.where(scores.done, scores.score, latest)
        key, act_key = jax.random.split(key)
        last_action, last_out = self._act(agent_state, obs, act_key)
        if self.overlap:  # The envs step while the update runs.
          last_action = np.asarray(last_action)
          self.env.send(last_action)
          pending = (last_action, last_out)
        trajectory = Trajectory(
          observation=np.stack(observations),
          action=np.stack(actions).astype(np.int32),
          reward=np.stack(rewards).astype(np.float32),
          discount=np.stack(discounts).astype(np.float32),
          end=np.stack(ends).astype(np.float32),
        )
        if self._records_final_observations:
          trajectory = trajectory._replace(truncations=host_truncations(trajectory, finals))
        outputs = jax.tree.map(lambda *xs: jnp.stack(xs), *outs, last_out)
        agent_state, _ = self._learn(agent_state, meta_params, hparams, trajectory, outputs)
      curve[p] = score_sum / score_count if score_count else np.nan
      if on_chunk is not None:
        on_chunk(len(updates), float(curve[p]))
    if pending is not None:
      self.env.recv()
    jax.block_until_ready(agent_state)
    elapsed = time.time() - start
    return HostRun(
      curve=curve,
      final_return=float(final_return(latest)),
      agent=agent_state,
      steps_per_s=num_updates * self.steps_per_update / max(elapsed, 1e-9),
    )

  def train_seeds(
    self,
    seeds: tuple[int, ...],
    meta_params: Any,
    hparams: Any,
    updates_per_point: int,
    num_points: int,
    on_chunk: Callable[[int, float], None] | None = None,
  ) -> TrainingRuns:
    """One fresh agent per seed, one after another in these B envs (reset with each seed)
    and this trainer, so acting and learning compile once; keeps each agent's parameters."""
    runs = [
      self.train(seed, meta_params, hparams, updates_per_point * num_points, num_points, on_chunk)
      for seed in seeds
    ]
    return TrainingRuns(
      curve=np.stack([r.curve for r in runs]),
      final_return=np.asarray([r.final_return for r in runs]),
      params=tuple(jax.device_get(getattr(r.agent, "params", r.agent)) for r in runs),
    )
