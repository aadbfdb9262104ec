"""Finished meta-test results on disk, so that a killed `meta_test.py` run resumes.

Each finished (env, agent, rule) is saved as OUT/done/<env>__<agent>__<rule>__<key>.npz (a
pickle-free checkpoint) the moment it ends; `key` hashes everything the result depends on:
the env as given, the agent and its config, the rule's name, type and meta-parameters (a
learned eta's values, not its file name), the number of seeds, the env steps and the
meta-test config's general fields (seed offset included). A rerun into the same OUT with the same settings loads these instead of
training again; any changed setting gives another key, so it trains afresh.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import jax
import ml_collections
import numpy as np

from harness import checkpoint, reporting
from harness.evaluation import EvalResult
from inner_agents import registry as agent_registry
from inner_agents.rules.base import UpdateRule

KIND = "lpg_meta_test_result"
DIRNAME = "done"
FIELDS = ("seeds", "env_steps", "curve", "final_return")


def rule_digest(rule: UpdateRule, meta_params: Any) -> str:
  """A hex digest of a rule's identity: its type, name, settings and meta-parameters."""
  h = hashlib.sha256(f"{type(rule).__name__}|{rule.name}|{getattr(rule, 'config', None)!r}".encode())
  for path, leaf in jax.tree_util.tree_flatten_with_path(meta_params)[0]:
    arr = np.ascontiguousarray(jax.device_get(leaf))
    h.update(f"{jax.tree_util.keystr(path)}|{arr.dtype.str}|{arr.shape}".encode())
    h.update(arr.tobytes())
  return h.hexdigest()


def result_key(
  env_name: str,
  agent_name: str,
  rule: UpdateRule,
  meta_params: Any,
  seeds: int,
  env_steps: int,
  config: ml_collections.ConfigDict,
) -> str:
  """The first 16 hex digits of a hash of everything an EvalResult depends on (the config's
  general fields and this agent's sub-tree; other agents' settings do not matter)."""
  agents = set(agent_registry.names())
  settings = {
    "env": env_name,
    "agent": agent_name,
    "rule": rule_digest(rule, meta_params),
    "seeds": seeds,
    "env_steps": env_steps,
    "config": {k: v for k, v in config.to_dict().items() if k not in agents or k == agent_name},
  }
  return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def path(out_dir: str, env_name: str, agent_name: str, rule_name: str, key: str) -> str:
  """OUT/done/<env>__<agent>__<rule>__<key>.npz, with path separators in names replaced."""
  return os.path.join(out_dir, DIRNAME, reporting.file_stem(env_name, agent_name, rule_name, key) + ".npz")


def save(file: str, result: EvalResult) -> None:
  """Writes a finished result (without agent parameters) atomically."""
  os.makedirs(os.path.dirname(file), exist_ok=True)
  tree = {
    "seeds": np.asarray(result.seeds, np.int64),
    "env_steps": np.asarray(result.env_steps, np.int64),
    "curve": np.asarray(result.curve, np.float64),
    "final_return": np.asarray(result.final_return, np.float64),
  }
  meta = {
    "kind": KIND,
    "env": result.env,
    "rule": result.rule,
    "agent": result.agent,
    "agent_description": result.agent_description,
    "wall_time_s": result.wall_time_s,
    "off_policy": result.off_policy,
  }
  checkpoint.save(file, tree, meta)


def load(file: str) -> EvalResult | None:
  """The result saved at `file`, or None if there is none; CheckpointError if the file is
  not a meta-test result."""
  if not os.path.exists(file):
    return None
  tree, meta = checkpoint.load(file)
  if meta.get("kind") != KIND or not isinstance(tree, dict) or set(tree) != set(FIELDS):
    raise checkpoint.CheckpointError(f"{file} is not a meta-test result; delete it or pass --noresume")
  return EvalResult(
    env=meta["env"],
    rule=meta["rule"],
    agent=meta["agent"],
    agent_description=meta.get("agent_description", ""),
    seeds=tuple(int(s) for s in tree["seeds"]),
    env_steps=np.asarray(tree["env_steps"]),
    curve=np.asarray(tree["curve"]),
    final_return=np.asarray(tree["final_return"]),
    wall_time_s=float(meta["wall_time_s"]),
    off_policy=bool(meta.get("off_policy", False)),
  )
