"""Training fresh agents with a fixed rule on an environment, over several seeds.

This is what meta-testing measures: a rule is frozen (hand-designed, or a learned eta)
and trains agents from scratch; the learning curve and the final return are reported.
One path for every agent and environment: `evaluate` builds the agent for the env (its
presets and its config), picks the driver for the env's data source (the JAX loop, or the
host loop for Atari and Gymnasium) and asks it to train the seeds.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import ml_collections
import numpy as np

from environments import offline_data
from environments import registry as env_registry
from environments.host import HostEnvironment
from harness import offline
from inner_agents import registry as agent_registry
from inner_agents.agent import ConfigError
from inner_agents.drivers.host import HostTrainer
from inner_agents.drivers.offline import OfflineTrainer
from inner_agents.drivers.on_policy import Trainer
from inner_agents.drivers.runs import TrainingRuns
from inner_agents.rules.base import UpdateRule


@dataclasses.dataclass(frozen=True)
class EvalResult:
  """Learning curves of one (env, agent, rule) over seeds.

  env_steps: int [P], env steps per seed at the end of each curve point.
  curve: float [S, P], mean return of the episodes completed during each point's
    updates (NaN where none completed).
  final_return: float [S], mean over envs of each env's latest completed episode return.
  For host envs (Atari) returns are full-episode (full-game), unclipped scores.
  agent: the agent's registry name; agent_description: it and its network for this env.
  For offline agents `env` is the dataset's id, env_steps count the dataset transitions
  sampled, and the curve is the return of the policy evaluated in the dataset's env.
  """

  env: str
  agent: str
  rule: str
  seeds: tuple[int, ...]
  env_steps: np.ndarray
  curve: np.ndarray
  final_return: np.ndarray
  wall_time_s: float = 0.0
  params: tuple | None = None  # Per seed, the trained agent's parameters (host envs).
  agent_description: str = ""
  off_policy: bool = False  # An on-policy rule trained on other data (--allow_off_policy).


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Raises ConfigError naming the first invalid field (agents' fields by their configs)."""
  for field in ("unroll_length", "num_curve_points"):
    if not isinstance(config[field], int) or config[field] < 1:
      raise ConfigError(f"config.{field} must be a positive integer, got {config[field]!r}")
  if not isinstance(config.num_envs, int) or config.num_envs < 0:
    raise ConfigError(f"config.num_envs must be a positive integer (0: the agent's), got {config.num_envs!r}")
  for name in agent_registry.names():
    agent_config(config, name)


def agent_config(config: ml_collections.ConfigDict, agent_name: str) -> Any:
  """The agent's typed config from its sub-tree of a meta-test config."""
  return agent_registry.config_from_dict(agent_name, config[agent_name].to_dict())


def num_envs(env_name: str, agent_name: str, config: ml_collections.ConfigDict) -> int:
  """B: the config's, or the agent's preset for the env when it is 0."""
  return config.num_envs or agent_registry.entry(agent_name).num_envs(env_name)


def make_trainer(
  env_name: str, agent_name: str, rule: UpdateRule, config: ml_collections.ConfigDict
) -> Trainer:
  """The JAX driver for `agent_name` on JAX env `env_name` with `rule`."""
  env = env_registry.make(env_name)
  agent = agent_registry.make(
    agent_name, env_name, env.observation_spec(), env.num_actions, agent_config(config, agent_name)
  )
  return Trainer(env, agent, rule, num_envs(env_name, agent_name, config), config.unroll_length)


def make_host_trainer(
  env: HostEnvironment,
  agent_name: str,
  rule: UpdateRule,
  config: ml_collections.ConfigDict,
  overlap: bool = True,
) -> HostTrainer:
  """The host driver for `agent_name` on an open host env (Table 4's agent for Atari)."""
  agent = agent_registry.make(
    agent_name, env.name, env.observation_spec(), env.num_actions, agent_config(config, agent_name)
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
  agent_name: str,
  rule: UpdateRule,
  meta_params: Any,
  config: ml_collections.ConfigDict,
  seeds: int,
  env_steps: int,
  on_chunk: Callable[[int, float], None] | None = None,
  dataset: offline_data.Dataset | None = None,
) -> EvalResult:
  """Trains `seeds` fresh agents for >= env_steps steps each with a frozen rule.

  `on_chunk(updates_done, mean_return)` is called after each curve point (progress bars).
  JAX envs run the seeds together, host envs one after another in one set of B envs.
  An offline agent learns from `dataset` (env_steps: transitions sampled from it) and is
  evaluated in `env_name`.
  """
  seed_ids = tuple(config.seed_offset + i for i in range(seeds))
  start = time.time()
  if agent_registry.entry(agent_name).spec.data_regime == "offline":
    if dataset is None:
      raise ConfigError(f"agent {agent_name} learns from an offline dataset: pass --dataset")
    windows = num_envs(env_name, agent_name, config)
    agent_cfg = agent_config(config, agent_name)
    with offline.offline_trainer(
      env_name, agent_name, rule, agent_cfg, dataset, windows, config.unroll_length
    ) as driver:
      env_label = dataset.dataset_id
      chunk, points, runs = _train(driver, rule, meta_params, seed_ids, env_steps, config, on_chunk)
  elif env_registry.is_host(env_name):
    with env_registry.make_host(env_name, num_envs(env_name, agent_name, config)) as env:
      driver = make_host_trainer(env, agent_name, rule, config)
      env_label = env_name
      chunk, points, runs = _train(driver, rule, meta_params, seed_ids, env_steps, config, on_chunk)
  else:
    driver = make_trainer(env_name, agent_name, rule, config)
    env_label = driver.env.name
    chunk, points, runs = _train(driver, rule, meta_params, seed_ids, env_steps, config, on_chunk)
  return EvalResult(
    env=env_label,
    agent=agent_name,
    rule=rule.name,
    seeds=seed_ids,
    env_steps=np.arange(1, points + 1) * chunk * driver.steps_per_update,
    curve=runs.curve,
    final_return=runs.final_return,
    wall_time_s=time.time() - start,
    params=runs.params,
    agent_description=driver.agent.description,
    off_policy=rule.on_policy and agent_registry.entry(agent_name).spec.data_regime != "on_policy",
  )


def _train(
  driver: Trainer | HostTrainer | OfflineTrainer,
  rule: UpdateRule,
  meta_params: Any,
  seed_ids: tuple[int, ...],
  env_steps: int,
  config: ml_collections.ConfigDict,
  on_chunk: Callable[[int, float], None] | None,
) -> tuple[int, int, TrainingRuns]:
  """(updates per curve point, points, the driver's runs) for `evaluate`."""
  chunk, points = schedule(env_steps, driver.steps_per_update, config.num_curve_points)
  hparams = driver.agent.hparams(rule)
  return chunk, points, driver.train_seeds(seed_ids, meta_params, hparams, chunk, points, on_chunk)
