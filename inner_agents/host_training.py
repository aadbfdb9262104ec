"""Training an inner agent on a host-side environment (Atari, Gymnasium) with a rule.

The JAX envs train inside one `lax.scan` (`inner_agents.training`); host envs step in
numpy, so the loop over time steps is Python here, around two jitted functions:
`act` (one policy step for the B envs) and `learn` (the same update as the JAX trainer:
rule targets, then a gradient step, `training.learn`).

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

import chex
import jax
import jax.numpy as jnp
import numpy as np

from environments.host import HostEnvironment
from inner_agents.agent import ActorCriticAgent, AgentState, LossStats
from inner_agents.training import learn
from inner_agents.types import AgentHParams, AgentOutput, Trajectory
from lpg import rules as rules_lib


class HostRun(NamedTuple):
  """A finished host training run.

  curve: float [P] mean score of the scored episodes (full games) that ended during each
    curve point's updates (NaN where none ended).
  final_return: mean over envs of each env's latest scored episode (NaN if none).
  agent: the trained agent's parameters and optimiser state.
  steps_per_s: env steps per second of the whole loop (acting, stepping and learning).
  """

  curve: np.ndarray
  final_return: float
  agent: AgentState
  steps_per_s: float


@dataclasses.dataclass(frozen=True, eq=False)
class HostTrainer:
  """Trains `agent` with `rule` on the B envs of `env`, T = unroll_length steps per update."""

  env: HostEnvironment
  agent: ActorCriticAgent
  rule: rules_lib.UpdateRule
  unroll_length: int
  overlap: bool = True

  def __post_init__(self):
    object.__setattr__(self, "_act", jax.jit(self._act_fn))
    object.__setattr__(self, "_learn", jax.jit(self._learn_fn))

  @property
  def steps_per_update(self) -> int:
    return self.env.num_envs * self.unroll_length

  def _act_fn(self, params, obs: chex.Array, key: chex.PRNGKey) -> tuple[chex.Array, AgentOutput]:
    out = self.agent.apply(params, obs)  # [B, ...]
    return jax.random.categorical(key, out.logits).astype(jnp.int32), out

  def _learn_fn(
    self,
    agent_state: AgentState,
    meta_params: Any,
    hparams: AgentHParams,
    trajectory: Trajectory,
    outputs: AgentOutput,  # [T, B] from acting; step 0 is recomputed (see module doc).
  ) -> tuple[AgentState, LossStats]:
    first = self.agent.apply(agent_state.params, trajectory.observation[0])
    outputs = jax.tree.map(lambda xs, x: xs.at[0].set(x), outputs, first)
    agent_state, stats, _ = learn(
      self.agent, self.rule, agent_state, meta_params, hparams, trajectory, outputs
    )
    return agent_state, stats

  def train(
    self,
    seed: int,
    meta_params: Any,
    hparams: AgentHParams,
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
        observations, actions, rewards, dones, outs = [obs], [], [], [], []
        for _ in range(t_len):
          if pending is None:
            key, act_key = jax.random.split(key)
            action, out = self._act(agent_state.params, obs, act_key)
            action = np.asarray(action)
            self.env.send(action)
          else:
            action, out = pending
            pending = None
          ts, scores = self.env.recv()
          obs = ts.observation
          observations.append(obs)
          actions.append(action)
          rewards.append(ts.reward)
          dones.append(ts.step_type == 2)
          outs.append(out)
          score_sum += float(np.sum(scores.score[scores.done]))
          score_count += int(np.sum(scores.done))
          latest = np.where(scores.done, scores.score, latest)
        key, act_key = jax.random.split(key)
        last_action, last_out = self._act(agent_state.params, obs, act_key)
        if self.overlap:  # The envs step while the update runs.
          last_action = np.asarray(last_action)
          self.env.send(last_action)
          pending = (last_action, last_out)
        trajectory = Trajectory(
          observation=np.stack(observations),
          action=np.stack(actions).astype(np.int32),
          reward=np.stack(rewards).astype(np.float32),
          done=np.stack(dones).astype(np.float32),
        )
        outputs = jax.tree.map(lambda *xs: jnp.stack(xs), *outs, last_out)
        agent_state, _ = self._learn(agent_state, meta_params, hparams, trajectory, outputs)
      curve[p] = score_sum / score_count if score_count else np.nan
      if on_chunk is not None:
        on_chunk(len(updates), float(curve[p]))
    if pending is not None:
      self.env.recv()
    jax.block_until_ready(agent_state)
    elapsed = time.time() - start
    finished = ~np.isnan(latest)
    final = float(np.mean(latest[finished])) if finished.any() else float("nan")
    return HostRun(
      curve=curve,
      final_return=final,
      agent=agent_state,
      steps_per_s=num_updates * self.steps_per_update / max(elapsed, 1e-9),
    )
