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
from environments.host import HostEnvironment
from inner_agents.agent import make_agent
from inner_agents.host_training import HostTrainer
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
  For host envs (Atari) returns are full-episode (full-game), unclipped scores.
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
  params: tuple | None = None  # Per seed, the trained agent's parameters (host envs).


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Raises ConfigError naming the first invalid field."""
  for field in ("unroll_length", "y_size", "num_curve_points"):
    if not isinstance(config[field], int) or config[field] < 1:
      raise ConfigError(f"config.{field} must be a positive integer, got {config[field]!r}")
  if not isinstance(config.num_envs, int) or config.num_envs < 0:
    raise ConfigError(f"config.num_envs must be a positive integer (0: the env's), got {config.num_envs!r}")
  if not (config.discount < 0 or 0.0 <= config.discount <= 1.0):
    raise ConfigError(f"config.discount must lie in [0, 1] (negative: the env's), got {config.discount}")
  for field in ("learning_rate", "y_cost", "value_cost", "entropy_cost"):
    if not math.isfinite(config[field]):
      raise ConfigError(f"config.{field} must be finite, got {config[field]}")
  if config.pi_hat_baseline not in (-1, 0, 1):
    raise ConfigError(
      f"config.pi_hat_baseline must be -1 (the env's), 0 or 1, got {config.pi_hat_baseline!r}"
    )


def num_envs(env_name: str, config: ml_collections.ConfigDict) -> int:
  """B: the config's, or the env's meta-test preset when it is 0."""
  return config.num_envs or registry.test_preset(env_name).num_envs


def test_rule(
  env_name: str, rule: rules_lib.UpdateRule, config: ml_collections.ConfigDict
) -> rules_lib.UpdateRule:
  """`rule`, with the Eq. 7 baseline on pi_hat where it applies (LPG rules, where the
  config or the env's preset asks for it)."""
  on = (
    config.pi_hat_baseline if config.pi_hat_baseline >= 0 else registry.test_preset(env_name).pi_hat_baseline
  )
  return rules_lib.PiHatBaseline(rule) if on and isinstance(rule, rules_lib.LPGRule) else rule


def hparams_for(
  rule: rules_lib.UpdateRule, optimizer: str, config: ml_collections.ConfigDict, env_name: str = ""
) -> AgentHParams:
  """Agent hyperparameters: the config's where set (>= 0), else the env's meta-test
  preset's (Atari: Table 4), else the rule's defaults."""
  preset = registry.test_preset(env_name)

  def pick(value: float, *defaults: float | None) -> float:
    return float(value) if value >= 0 else float(next(d for d in defaults if d is not None))

  d = rule.hparam_defaults
  return AgentHParams(
    learning_rate=pick(config.learning_rate, preset.learning_rate, rule.learning_rates[optimizer]),
    y_cost=pick(config.y_cost, preset.y_cost, d.get("y_cost", 0.5)),
    value_cost=pick(config.value_cost, d.get("value_cost", 0.0)),
    entropy_cost=pick(config.entropy_cost, d.get("entropy_cost", 0.0)),
    discount=pick(config.discount, preset.discount),
  )


def make_trainer(env_name: str, rule: rules_lib.UpdateRule, config: ml_collections.ConfigDict) -> Trainer:
  env = registry.make(env_name)
  preset = registry.preset(env_name)
  agent = make_agent(
    env.observation_spec(), env.num_actions, config.y_size, preset.optimizer, **preset.torso_kwargs()
  )
  return Trainer(env, agent, rule, num_envs(env_name, config), config.unroll_length)


def make_host_trainer(
  env: HostEnvironment, rule: rules_lib.UpdateRule, config: ml_collections.ConfigDict, overlap: bool = True
) -> HostTrainer:
  """A HostTrainer on an open host env, with the registry's agent for it (Table 4's for images)."""
  preset = registry.host_preset(env)
  agent = make_agent(
    env.observation_spec(), env.num_actions, config.y_size, preset.optimizer, **preset.torso_kwargs()
  )
  return HostTrainer(env, agent, rule, config.unroll_length, overlap=overlap)


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
  if registry.is_host(env_name):
    return evaluate_host(env_name, rule, meta_params, config, seeds, env_steps, on_chunk)
  rule = test_rule(env_name, rule, config)
  trainer = make_trainer(env_name, rule, config)
  hparams = hparams_for(rule, trainer.agent.optimizer, config, env_name)
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


def evaluate_host(
  env_name: str,
  rule: rules_lib.UpdateRule,
  meta_params: Any,
  config: ml_collections.ConfigDict,
  seeds: int,
  env_steps: int,
  on_chunk: Callable[[int, float], None] | None = None,
) -> EvalResult:
  """`evaluate` for a host env (Atari, Gymnasium): seeds run one after another in one set
  of B envs (reset with each seed) and one trainer, so acting and learning compile once;
  returns are full-episode (full-game) scores."""
  rule = test_rule(env_name, rule, config)
  curves, finals, params = [], [], []
  start = time.time()
  seed_ids = tuple(config.seed_offset + i for i in range(seeds))
  with registry.make_host(env_name, num_envs(env_name, config)) as env:
    trainer = make_host_trainer(env, rule, config)
    agent = trainer.agent
    chunk, num_points = schedule(env_steps, trainer.steps_per_update, config.num_curve_points)
    hparams = hparams_for(rule, agent.optimizer, config, env_name)
    for seed in seed_ids:
      run = trainer.train(seed, meta_params, hparams, chunk * num_points, num_points, on_chunk)
      curves.append(run.curve)
      finals.append(run.final_return)
      params.append(jax.device_get(run.agent.params))
  return EvalResult(
    env=env_name,
    rule=rule.name,
    agent=agent.description,
    seeds=seed_ids,
    env_steps=np.arange(1, num_points + 1) * chunk * trainer.steps_per_update,
    curve=np.stack(curves),
    final_return=np.asarray(finals),
    wall_time_s=time.time() - start,
    params=tuple(params),
  )
