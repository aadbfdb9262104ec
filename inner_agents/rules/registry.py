"""Rules by name: the hand-designed rules here, and whatever other layers register.

    rule, meta_params = registry.resolve("a2c")
    pairs = registry.resolve_all(["pretrained:default_cpu", "lpg_init", "a2c"])

An entry resolves the specs it `matches` (an exact name, a prefix such as `pretrained:`, a
path) to a rule and its meta-parameters. The learned LPG rule registers its own entries
(`lpg_init`, `pretrained:NAME`, a rule file, checkpoint or workdir) when the `lpg` package
is imported, so this layer never imports the one above it. A `control` entry (`lpg_init`,
the untrained network) resolves after the others and sees them as `peers`: the control of
a learned rule takes that rule's sizes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from inner_agents.rules import a2c, base, crr, random


class RuleError(ValueError):
  """A rule spec that cannot be resolved (one line); layers that register entries raise
  subclasses of it for their own failures (e.g. a corrupt rule file)."""


class UnknownRuleError(RuleError):
  """A rule spec that no registered entry resolves."""


Resolver = Callable[[str, Sequence[base.UpdateRule]], tuple[base.UpdateRule, Any]]


@dataclasses.dataclass(frozen=True)
class RuleEntry:
  """How a family of rule specs resolves.

  Attributes:
    name: the spec as users write it ('a2c', 'pretrained:NAME', 'PATH').
    summary: one line for `meta_test.py --list`.
    matches: whether a spec is this entry's.
    resolve: (spec, peers) -> (rule, meta_params); peers are the non-control rules
      resolved alongside (for control entries), else empty.
    control: resolved after the other specs of a list, with them as peers.
    listing: optional: (name, summary) lines for --list in place of this entry's own
      (e.g. one per shipped pretrained rule).
  """

  name: str
  summary: str
  matches: Callable[[str], bool]
  resolve: Resolver
  control: bool = False
  listing: Callable[[], list[tuple[str, str]]] | None = None


_ENTRIES: list[RuleEntry] = []


def register(entry: RuleEntry) -> None:
  """Adds an entry; the first entry that matches a spec resolves it. Registering an entry
  of the same name again replaces it (re-imports are harmless)."""
  for i, existing in enumerate(_ENTRIES):
    if existing.name == entry.name:
      _ENTRIES[i] = entry
      return
  _ENTRIES.append(entry)


def register_rule(rule_class: Callable[[], base.UpdateRule]) -> None:
  """Registers a hand-designed rule under its `name` (meta-parameters: its empty ones)."""
  rule = rule_class()

  def resolve(spec: str, peers: Sequence[base.UpdateRule]) -> tuple[base.UpdateRule, Any]:
    del spec, peers
    made = rule_class()
    return made, made.init_meta_params(None)

  register(RuleEntry(rule.name, rule.describe(), lambda spec: spec == rule.name, resolve))


for _rule in (
  a2c.A2CRule,
  random.RandomRule,
  crr.CRRRule,
  crr.CRRBinaryRule,
  crr.CRRMaxRule,
  crr.CRRBinaryMaxRule,
  crr.BCRule,
):
  register_rule(_rule)


def entries() -> tuple[RuleEntry, ...]:
  return tuple(_ENTRIES)


def names() -> list[str]:
  """The specs users can write, in registration order."""
  return [e.name for e in _ENTRIES]


def _entry(spec: str) -> RuleEntry:
  for entry in _ENTRIES:
    if entry.matches(spec):
      return entry
  hint = "" if "lpg_init" in names() else " (the learned LPG rules register on `import lpg`)"
  raise UnknownRuleError(f"unknown rule {spec!r}; valid: {', '.join(names())}{hint}")


def resolve(spec: str, peers: Sequence[base.UpdateRule] = ()) -> tuple[base.UpdateRule, Any]:
  """(rule, meta_params) for one spec."""
  return _entry(spec).resolve(spec, peers)


def resolve_all(specs: Sequence[str]) -> list[tuple[base.UpdateRule, Any]]:
  """[(rule, meta_params)] for several specs, in order; control entries see the others as
  peers. Each distinct spec resolves once."""
  control = {s for s in specs if _entry(s).control}
  resolved = {s: resolve(s) for s in dict.fromkeys(specs) if s not in control}
  peers = [rule for rule, _ in resolved.values()]
  resolved.update({s: resolve(s, peers) for s in dict.fromkeys(specs) if s in control})
  return [resolved[s] for s in specs]
