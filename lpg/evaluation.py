"""Training fresh agents with a fixed rule on an environment, over several seeds.

This is what meta-testing measures: a rule is frozen (hand-designed, or a learned eta)
and trains agents from scratch; the learning curve and the final return are reported.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from environments import registry
from inner_agents.agent import make_agent
from inner_agents.training import Trainer, final_return
from inner_agents.types import AgentHParams
from lpg import rules as rules_lib


class ConfigError(ValueError):
  """An invalid meta-test setting."""


@dataclasses.dataclass(frozen=True)
class EvalResult:
  """Learning curves of one (env, rule) over seeds.

  env_steps: int [P], env steps per seed at the end of each curve point.
  curve: float [S, P], mean return of the episodes completed during each point's
    updates (NaN where none completed).
  final_return: float [S], mean over envs of each env's latest completed episode return.
  agent: the agent's description.
  """

  env: str
  rule: str
  agent: str
  seeds: tuple[int, ...]
  env_steps: np.ndarray
  curve: np.ndarray
  final_return: np.ndarray
  wall_time_s: float = 0.0


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Raises ConfigError naming the first invalid field."""
  for field in ("num_envs", "unroll_length", "y_size", "num_curve_points"):
    if not isinstance(config[field], int) or config[field] < 1:
      raise ConfigError(f"config.{field} must be a positive integer, got {config[field]!r}")
  if not 0.0 <= config.discount <= 1.0:
    raise ConfigError(f"config.discount must lie in [0, 1], got {config.discount}")
  for field in ("learning_rate", "y_cost", "value_cost", "entropy_cost"):
    if not math.isfinite(config[field]):
      raise ConfigError(f"config.{field} must be finite, got {config[field]}")


def hparams_for(
  rule: rules_lib.UpdateRule, optimizer: str, config: ml_collections.ConfigDict
) -> AgentHParams:
  """Agent hyperparameters: the config's, where set (>= 0), else the rule's defaults."""

  def pick(value: float, default: float) -> float:
    return float(value) if value >= 0 else float(default)

  d = rule.hparam_defaults
  return AgentHParams(
    learning_rate=pick(config.learning_rate, rule.learning_rates[optimizer]),
    y_cost=pick(config.y_cost, d.get("y_cost", 0.5)),
    value_cost=pick(config.value_cost, d.get("value_cost", 0.0)),
    entropy_cost=pick(config.entropy_cost, d.get("entropy_cost", 0.0)),
    discount=float(config.discount),
  )


def make_trainer(env_name: str, rule: rules_lib.UpdateRule, config: ml_collections.ConfigDict) -> Trainer:
  env = registry.make(env_name)
  preset = registry.preset(env_name)
  agent = make_agent(
    env.observation_spec(),
    env.num_actions,
    config.y_size,
    preset.optimizer,
    preset.conv_channels,
    preset.mlp_sizes,
  )
  return Trainer(env, agent, rule, config.num_envs, config.unroll_length)


def schedule(env_steps: int, steps_per_update: int, num_points: int) -> tuple[int, int]:
  """(updates per curve point, number of points) covering at least env_steps."""
  num_updates = max(1, math.ceil(env_steps / steps_per_update))
  num_points = min(num_points, num_updates)
  chunk = math.ceil(num_updates / num_points)
  return chunk, math.ceil(num_updates / chunk)


def evaluate(
  env_name: str,
  rule: rules_lib.UpdateRule,
  meta_params: Any,
  config: ml_collections.ConfigDict,
  seeds: int,
  env_steps: int,
  on_chunk: Callable[[int, float], None] | None = None,
) -> EvalResult:
  """Trains `seeds` fresh agents for >= env_steps steps each with a frozen rule.

  The seeds run as one `lax.map` inside one jitted chunk of updates (on CPU `lax.map`
  beats `vmap` for these small per-seed networks); each chunk is one curve point.
  `on_chunk(updates_done, mean_return)` is called after each chunk (progress bars).
  """
  trainer = make_trainer(env_name, rule, config)
  hparams = hparams_for(rule, trainer.agent.optimizer, config)
  chunk, num_points = schedule(env_steps, trainer.steps_per_update, config.num_curve_points)
  seed_ids = tuple(config.seed_offset + i for i in range(seeds))
  keys = jnp.stack([jax.random.PRNGKey(s) for s in seed_ids])

  @jax.jit
  def init(keys):
    return jax.lax.map(trainer.init, keys)

  @jax.jit
  def run_chunk(states, meta_params):
    states, metrics = jax.lax.map(lambda s: trainer.run(s, meta_params, hparams, chunk), states)
    ret = jnp.sum(metrics.return_sum, axis=1) / jnp.sum(metrics.episode_count, axis=1)  # [S]
    return states, ret

  start = time.time()
  states = init(keys)
  curve = np.zeros((seeds, num_points))
  for point in range(num_points):
    states, ret = run_chunk(states, meta_params)
    curve[:, point] = np.asarray(ret)
    if on_chunk is not None:
      on_chunk(
        chunk, float(np.nanmean(curve[:, point])) if np.any(np.isfinite(curve[:, point])) else math.nan
      )
  finals = np.asarray(jax.vmap(final_return)(states))
  return EvalResult(
    env=trainer.env.name,
    rule=rule.name,
    agent=trainer.agent.description,
    seeds=seed_ids,
    env_steps=np.arange(1, num_points + 1) * chunk * trainer.steps_per_update,
    curve=curve,
    final_return=finals,
    wall_time_s=time.time() - start,
  )
