"""Rules by name or path: hand-designed names, `lpg_init`, and learned checkpoints.

a2c, random            hand-designed rules (`lpg.rules`)
lpg_init               the LPG network at initialisation (an untrained control)
PATH.npz               a meta-training checkpoint: its eta and network config
DIR                    a meta-training workdir: its latest checkpoint
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np

from lpg import checkpoint, rules
from lpg.network import LPGNetworkConfig


class RuleLoadError(ValueError):
  """A rule spec that names no rule, or a checkpoint that holds no usable rule."""


def _checkpoint_file(spec: str) -> str:
  if os.path.isdir(spec):
    path = checkpoint.latest(os.path.join(spec, "checkpoints")) or checkpoint.latest(spec)
    if path is None:
      raise RuleLoadError(f"{spec} holds no checkpoint (expected {spec}/checkpoints/ckpt_*.npz)")
    return path
  return spec


def _looks_like_path(spec: str) -> bool:
  return os.sep in spec or spec.endswith(".npz") or os.path.exists(spec)


def load_learned(spec: str) -> tuple[rules.LPGRule, Any, dict[str, Any]]:
  """(rule, eta, metadata) from a meta-training checkpoint file or workdir."""
  path = _checkpoint_file(spec)
  meta = checkpoint.read_metadata(path)
  if meta.get("kind") != "lpg_meta_train" or "config" not in meta:
    raise RuleLoadError(f"{path} is not an LPG meta-training checkpoint")
  net = meta["config"]["lpg"]
  config = LPGNetworkConfig(int(net["hidden_size"]), int(net["phi_size"]), int(net["y_size"]))
  name = os.path.basename(os.path.normpath(spec)).removesuffix(".npz")
  rule = rules.LPGRule(config, name=name)
  tree, _ = checkpoint.load(path)
  try:
    eta = tree["learner"]["eta"]
  except (KeyError, TypeError):
    raise RuleLoadError(f"{path} holds no eta (learner.eta)") from None
  template = jax.eval_shape(rule.init_meta_params, jax.random.PRNGKey(0))
  expected = {k: {p: v.shape for p, v in d.items()} for k, d in template.items()}
  got = {k: {p: np.shape(v) for p, v in d.items()} for k, d in eta.items()} if isinstance(eta, dict) else None
  if got != expected:
    raise RuleLoadError(f"{path}: eta does not match an LPG network of {config}")
  eta = jax.tree.map(lambda x: np.asarray(x, np.float32), eta)
  return rule, eta, meta


def resolve(
  spec: str, lpg_config: LPGNetworkConfig | None = None, seed: int = 0
) -> tuple[rules.UpdateRule, Any]:
  """(rule, meta_params) for a rule name or checkpoint path (see module docstring)."""
  if spec == "lpg_init":
    rule = rules.LPGRule(lpg_config, name="lpg_init")
    return rule, rule.init_meta_params(jax.random.PRNGKey(seed))
  if spec in rules.names():
    rule = rules.make_rule(spec)
    return rule, rule.init_meta_params(None)
  if _looks_like_path(spec):
    if not os.path.exists(spec):
      raise RuleLoadError(f"no such rule checkpoint or workdir: {spec}")
    rule, eta, _ = load_learned(spec)
    return rule, eta
  raise rules.UnknownRuleError(
    f"unknown rule {spec!r}; valid: {', '.join([*rules.names(), 'lpg_init'])}, or a checkpoint path / workdir"
  )
