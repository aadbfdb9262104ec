"""LPG rules by name or path, and their files: what `lpg` registers in the rule registry.

lpg_init               the LPG network at initialisation (an untrained control; it takes
                       the sizes of the learned rule it is listed with)
pretrained:NAME        a rule shipped with the package (lpg/pretrained/NAME.npz)
PATH.npz               a rule file (`export`) or a meta-training checkpoint
DIR                    a meta-training workdir: its latest checkpoint

`register()` adds these to `inner_agents.rules.registry` (importing `lpg` does it), so any
harness resolves them next to the hand-designed rules. A rule file is a pickle-free
checkpoint (`harness.checkpoint`) holding {"eta": ...} with metadata: kind "lpg_rule", its
name, the LPG network's sizes and where it came from (the meta-training config,
meta-steps, env steps, wall time, code version).
"""

from __future__ import annotations

import datetime
import os
import subprocess
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from harness import checkpoint
from inner_agents.rules import registry
from inner_agents.rules.base import UpdateRule
from lpg.network import LPGNetworkConfig
from lpg.rule import LPGRule

PRETRAINED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pretrained")
PRETRAINED_PREFIX = "pretrained:"
RULE_KIND = "lpg_rule"
META_TRAIN_KIND = "lpg_meta_train"


class RuleLoadError(registry.RuleError):
  """A rule spec that names no rule, or a checkpoint that holds no usable rule."""


def pretrained_names(directory: str | None = None) -> list[str]:
  """Names of the rules shipped with the package (or in `directory`)."""
  directory = directory or PRETRAINED_DIR
  if not os.path.isdir(directory):
    return []
  return sorted(f.removesuffix(".npz") for f in os.listdir(directory) if f.endswith(".npz"))


def pretrained_path(name: str, directory: str | None = None) -> str:
  """The rule file of pretrained:NAME."""
  directory = directory or PRETRAINED_DIR
  path = os.path.join(directory, f"{name}.npz")
  if not name or os.sep in name or not os.path.isfile(path):
    shipped = ", ".join(PRETRAINED_PREFIX + n for n in pretrained_names(directory)) or "none"
    raise RuleLoadError(f"no pretrained rule {name!r}; shipped: {shipped}")
  return path


def _checkpoint_file(spec: str) -> str:
  if os.path.isdir(spec):
    path = checkpoint.latest(os.path.join(spec, "checkpoints")) or checkpoint.latest(spec)
    if path is None:
      raise RuleLoadError(f"{spec} holds no checkpoint (expected {spec}/checkpoints/ckpt_*.npz)")
    return path
  return spec


def _looks_like_path(spec: str) -> bool:
  return os.sep in spec or spec.endswith(".npz") or os.path.exists(spec)


def load_learned(spec: str) -> tuple[LPGRule, Any, dict[str, Any]]:
  """(rule, eta, metadata) from a rule file, a meta-training checkpoint file or a workdir."""
  path = _checkpoint_file(spec)
  meta = checkpoint.read_metadata(path)
  if meta.get("kind") == RULE_KIND and "network" in meta:
    net, name, key = meta["network"], meta.get("name"), "eta"
  elif meta.get("kind") == META_TRAIN_KIND and "config" in meta:
    net, name, key = meta["config"]["lpg"], None, "learner.eta"
  else:
    raise RuleLoadError(f"{path} is neither an LPG rule file nor a meta-training checkpoint")
  config = LPGNetworkConfig(int(net["hidden_size"]), int(net["phi_size"]), int(net["y_size"]))
  name = name or os.path.basename(os.path.normpath(spec)).removesuffix(".npz")
  rule = LPGRule(config, name=name)
  tree, _ = checkpoint.load(path)
  try:
    eta = tree["eta"] if key == "eta" else tree["learner"]["eta"]
  except (KeyError, TypeError):
    raise RuleLoadError(f"{path} holds no eta ({key})") from None
  template = jax.eval_shape(rule.init_meta_params, jax.random.PRNGKey(0))
  expected = {k: {p: v.shape for p, v in d.items()} for k, d in template.items()}
  got = {k: {p: np.shape(v) for p, v in d.items()} for k, d in eta.items()} if isinstance(eta, dict) else None
  if got != expected:
    raise RuleLoadError(f"{path}: eta does not match an LPG network of {config}")
  eta = jax.tree.map(lambda x: np.asarray(x, np.float32), eta)
  return rule, eta, meta


def code_version() -> str:
  """The git commit of this checkout (with -dirty if modified), else 'unknown'."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

  def git(*args):
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True)

  try:
    commit = git("rev-parse", "--short=12", "HEAD").stdout.strip()
    dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
  except (OSError, subprocess.SubprocessError):
    return "unknown"
  return commit + ("-dirty" if dirty else "")


def provenance(meta: dict[str, Any]) -> dict[str, Any]:
  """Where a learned rule came from (training and held-out envs, meta-steps, env steps, wall
  time, meta-training config, code version), from a rule file's or a meta-training
  checkpoint's metadata."""
  if meta.get("kind") == RULE_KIND:
    keys = ("train_envs", "eval_envs", "meta_steps", "env_steps", "wall_time_s", "meta_train_config")
    return {k: meta[k] for k in (*keys, "code_version") if k in meta}
  config = meta["config"]
  return {
    "train_envs": [e for e in config["train_envs"].split(",") if e],
    "eval_envs": [e for e in config["eval_envs"].split(",") if e],
    "meta_steps": int(meta["meta_step"]),
    "env_steps": int(meta["env_steps"]),
    "wall_time_s": float(meta["wall_time_s"]),
    "meta_train_config": config,
    **({"code_version": meta["code_version"]} if meta.get("code_version") else {}),
  }


def learned_path(spec: str) -> str:
  """The file or workdir behind a learned rule spec (pretrained:NAME or a path)."""
  if spec.startswith(PRETRAINED_PREFIX):
    return pretrained_path(spec.removeprefix(PRETRAINED_PREFIX))
  if not os.path.exists(spec):
    raise RuleLoadError(f"no such rule checkpoint or workdir: {spec}")
  return spec


def export(source: str, path: str, name: str) -> dict[str, Any]:
  """Writes the rule of a meta-training checkpoint or workdir as a standalone rule file.

  Returns the file's metadata: the network, the run's `provenance` and the export date.
  """
  rule, eta, meta = load_learned(source)
  if meta.get("kind") != META_TRAIN_KIND:
    raise RuleLoadError(f"{source} is not a meta-training checkpoint or workdir")
  out = {
    "kind": RULE_KIND,
    "name": name,
    "network": {
      "hidden_size": rule.config.hidden_size,
      "phi_size": rule.config.phi_size,
      "y_size": rule.config.y_size,
    },
    # The code that meta-trained the rule (older checkpoints lack it: the exporting code's).
    "code_version": f"{code_version()} (at export)",
    **provenance(meta),
    "exported": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
  }
  checkpoint.save(path, {"eta": eta}, out)
  return out


def _init_rule(spec: str, peers: Sequence[UpdateRule]) -> tuple[LPGRule, Any]:
  """lpg_init: the LPG network at initialisation, with the sizes of the first learned LPG
  rule among `peers` (it is that rule's untrained control), else the default sizes."""
  learned = [r for r in peers if isinstance(r, LPGRule)]
  rule = LPGRule(learned[0].config if learned else None, name="lpg_init")
  return rule, rule.init_meta_params(jax.random.PRNGKey(0))


def _learned_rule(spec: str, peers: Sequence[UpdateRule]) -> tuple[LPGRule, Any]:
  del peers
  rule, eta, _ = load_learned(learned_path(spec))
  return rule, eta


def _pretrained_listing() -> list[tuple[str, str]]:
  lines = []
  for name in pretrained_names():
    meta = checkpoint.read_metadata(pretrained_path(name))
    lines.append(
      (
        PRETRAINED_PREFIX + name,
        f"meta-trained {meta['meta_steps']} meta-steps ({meta['wall_time_s'] / 60:.0f} min) "
        f"on {', '.join(meta['train_envs'])}",
      )
    )
  return lines


def register() -> None:
  """Adds lpg_init, pretrained:NAME and rule paths to the rule registry."""
  registry.register(
    registry.RuleEntry(
      "lpg_init",
      "the LPG network at initialisation (an untrained control)",
      lambda spec: spec == "lpg_init",
      _init_rule,
      control=True,
    )
  )
  registry.register(
    registry.RuleEntry(
      PRETRAINED_PREFIX + "NAME",
      "a rule shipped with the package",
      lambda spec: spec.startswith(PRETRAINED_PREFIX),
      _learned_rule,
      listing=_pretrained_listing,
    )
  )
  registry.register(
    registry.RuleEntry(
      "PATH",
      "a rule file, meta-training checkpoint (.npz) or workdir (its latest checkpoint)",
      _looks_like_path,
      _learned_rule,
    )
  )
