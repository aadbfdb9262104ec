"""The meta-test run: every env x agent x rule, resumable, written as CSVs, tables and plots.

`resolve_pairs` turns agent names and rule specs into the (agent, rule) pairs to train,
refusing any pair that cannot work before anything runs; `run` trains each pair on each
env (offline agents: on each dataset, evaluated in the dataset's env; `evaluation.evaluate`), saving each finished result in OUT/done/ the moment it ends
(so a killed run resumes, and a later run with more envs, agents or rules reuses them),
then writes OUT/results.csv, final.csv, summary.txt, curves.png and, for host envs, the
trained agents. `meta_test.py` and `lpg.report` call it in-process.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any, NamedTuple

import ml_collections

from environments import offline_data
from environments import registry as env_registry
from harness import evaluation, reporting, result_store
from inner_agents import registry as agent_registry
from inner_agents.agent import check_compatible
from inner_agents.rules import registry as rule_registry
from inner_agents.rules.base import UpdateRule

NATIVE = "native"  # --rule=native: each agent's own rule


class UsageError(ValueError):
  """Bad input to a meta-test run (one line)."""


class Pair(NamedTuple):
  """An agent and a rule (with its meta-parameters) to train it with."""

  agent: str
  rule: UpdateRule
  meta_params: Any


def resolve_pairs(
  agent_names: Sequence[str],
  rule_specs: Sequence[str],
  config: ml_collections.ConfigDict,
  allow_off_policy: bool = False,
) -> list[Pair]:
  """Every agent with every rule (`native`: the agent's own), checked for compatibility.

  Raises UnknownAgentError, UnknownRuleError, IncompatibleRuleError or UsageError (one line).
  """
  if not agent_names:
    raise UsageError(f"--agent is empty; valid: {', '.join(agent_registry.names())}")
  if not rule_specs:
    raise UsageError(f"--rule is empty; valid: {', '.join([NATIVE, *rule_registry.names()])}")
  for name in agent_names:
    agent_registry.entry(name)
  native = {name: agent_registry.entry(name).spec.native_rule for name in agent_names}
  specs = [native[a] if s == NATIVE else s for a in agent_names for s in rule_specs]
  resolved = dict(zip(specs, rule_registry.resolve_all(specs)))
  pairs = []
  for name in agent_names:
    entry = agent_registry.entry(name)
    agent_config = evaluation.agent_config(config, name)
    rules = [resolved[native[name] if s == NATIVE else s] for s in rule_specs]
    names = [rule.name for rule, _ in rules]
    if len(set(names)) != len(names):
      raise UsageError(f"rules must have distinct names for agent {name}, got {names}")
    for rule, meta_params in rules:
      check_compatible(entry.spec, rule, agent_config, allow_off_policy)
      pairs.append(Pair(name, rule, meta_params))
  return pairs


def validate_envs(env_names: Sequence[str]) -> None:
  """Raises the env layer's one-line error for a bad env name."""
  if not env_names:
    raise UsageError("--env is empty; see --list")
  for name in env_names:
    env_registry.validate(name)


class Job(NamedTuple):
  """One pair on one data source: an env, or for offline agents a dataset and its env."""

  env: str
  pair: Pair
  dataset: offline_data.Dataset | None = None

  @property
  def label(self) -> str:
    """The result's env column: the env, or the dataset's id."""
    return self.env if self.dataset is None else self.dataset.dataset_id

  @property
  def source_key(self) -> str:
    """What the result depends on of its data source (a dataset by its content)."""
    return self.env if self.dataset is None else f"{self.env}|dataset:{self.dataset.fingerprint}"


def is_offline(agent_name: str) -> bool:
  return agent_registry.entry(agent_name).spec.data_regime == "offline"


def jobs(
  pairs: Sequence[Pair],
  env_names: Sequence[str],
  datasets: Sequence[tuple[offline_data.Dataset, str]] = (),
) -> list[Job]:
  """Every online pair on every env, every offline pair on every (dataset, env); UsageError
  (one line) where a kind of agent has no data source or a data source no agent."""
  online = [p for p in pairs if not is_offline(p.agent)]
  offline_pairs = [p for p in pairs if is_offline(p.agent)]
  if offline_pairs and not datasets:
    raise UsageError(
      f"agent {offline_pairs[0].agent} learns from an offline dataset: pass --dataset=NAME|PATH"
    )
  if datasets and not offline_pairs:
    raise UsageError("--dataset is for offline agents (see --list), none of --agent is one")
  out = [Job(e, p) for e in (env_names if online else ()) for p in online]
  return out + [Job(env, p, d) for d, env in datasets for p in offline_pairs]


def run(
  pairs: Sequence[Pair],
  env_names: Sequence[str],
  seeds: int,
  env_steps: int,
  out: str,
  config: ml_collections.ConfigDict,
  resume: bool = True,
  progress: bool = True,
  datasets: Sequence[tuple[offline_data.Dataset, str]] = (),
) -> tuple[list[evaluation.EvalResult], list[str], int]:
  """Trains every pair on every env (offline agents: on every dataset, evaluated in its env);
  returns (results, paths written, results reused)."""
  if seeds < 1:
    raise UsageError(f"--seeds must be a positive integer, got {seeds}")
  if env_steps < 1:
    raise UsageError(f"--env_steps must be a positive integer, got {env_steps}")
  if os.path.exists(out) and not os.path.isdir(out):
    raise UsageError(f"--out={out} exists and is not a directory")
  todo = jobs(pairs, env_names, datasets)
  from tqdm import tqdm  # Imported late: errors stay fast.

  def steps_per_update(env_name: str, agent: str) -> int:
    return evaluation.num_envs(env_name, agent, config) * config.unroll_length

  def pair_steps(env_name: str, agent: str) -> int:  # env steps of one env x pair, all seeds
    per_update = steps_per_update(env_name, agent)
    chunk, points = evaluation.schedule(env_steps, per_update, config.num_curve_points)
    return chunk * points * per_update * seeds

  os.makedirs(os.path.join(out, result_store.DIRNAME), exist_ok=True)  # Fails now if unwritable.
  results, agents_written, reused = [], [], 0
  total = sum(pair_steps(j.env, j.pair.agent) for j in todo)
  with tqdm(total=total, unit="step", unit_scale=True, dynamic_ncols=True, disable=not progress) as bar:
    for job in todo:
      env_name, pair = job.env, job.pair
      # JAX envs and datasets run their seeds together, host envs (Atari) one after another.
      seeds_per_call = 1 if env_registry.is_host(env_name) and job.dataset is None else seeds

      def on_chunk(
        updates: int, ret: float, env_name=env_name, agent=pair.agent, seeds_per_call=seeds_per_call
      ) -> None:
        bar.update(updates * steps_per_update(env_name, agent) * seeds_per_call)
        bar.set_postfix(ret=f"{ret:.2f}")

      bar.set_description(f"{job.label} / {pair.agent} / {pair.rule.name}")
      key = result_store.result_key(
        job.source_key, pair.agent, pair.rule, pair.meta_params, seeds, env_steps, config
      )
      done = result_store.path(out, job.label, pair.agent, pair.rule.name, key)
      result = result_store.load(done) if resume else None
      if result is not None:
        reused += 1
        bar.update(pair_steps(env_name, pair.agent))
      else:
        result = evaluation.evaluate(
          env_name, pair.agent, pair.rule, pair.meta_params, config, seeds, env_steps, on_chunk, job.dataset
        )
        result_store.save(done, result)
        agents_written += reporting.write_agents(out, [result])
        result = dataclasses.replace(result, params=None)  # Saved; free the memory.
      results.append(result)
  return results, reporting.write_all(out, results) + agents_written, reused
