"""Agents by name: one entry per agent folder (`inner_agents/<agent>/`).

    entry = registry.entry("actor_critic")
    agent = registry.make("actor_critic", env_name, obs_spec, num_actions, config)

An entry (`inner_agents.agent.AgentEntry`) holds the agent's spec (outputs, data regime,
native rule, roles), its typed config class and how to build it for an environment.
`config_from_dict` turns a command line's settings into that typed config, with one error
line for an unknown field or a bad value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from dm_env import specs

from inner_agents.actor_critic import agent as actor_critic
from inner_agents.agent import AgentEntry, ConfigError, InnerAgent
from inner_agents.crr import agent as crr


class UnknownAgentError(ValueError):
  """An agent name that is not registered."""


_AGENTS: dict[str, AgentEntry] = {}


def register(entry: AgentEntry) -> None:
  """Adds an agent under its spec's name (overwriting is an error)."""
  name = entry.spec.name
  if name in _AGENTS:
    raise ValueError(f"agent {name!r} is already registered")
  _AGENTS[name] = entry


register(actor_critic.ENTRY)
register(crr.ENTRY)


def names() -> list[str]:
  return list(_AGENTS)


def entries() -> tuple[AgentEntry, ...]:
  return tuple(_AGENTS.values())


def entry(name: str) -> AgentEntry:
  if name not in _AGENTS:
    raise UnknownAgentError(f"unknown agent {name!r}; valid: {', '.join(names())}")
  return _AGENTS[name]


def default_config(name: str) -> dict[str, Any]:
  """The agent's config defaults as a dict (for a command line's config tree)."""
  return dataclasses.asdict(entry(name).config_class())


def config_from_dict(name: str, values: Mapping[str, Any]) -> Any:
  """The agent's typed config from `values` (ConfigError for unknown fields or bad values)."""
  config_class = entry(name).config_class
  fields = [f.name for f in dataclasses.fields(config_class)]
  unknown = sorted(set(values) - set(fields))
  if unknown:
    raise ConfigError(f"agent {name} has no config field(s) {', '.join(unknown)}; valid: {', '.join(fields)}")
  return config_class(**values)


def make(name: str, env_name: str, obs_spec: specs.Array, num_actions: int, config: Any = None) -> InnerAgent:
  """Agent `name` for environment `env_name` (its presets), with `config` (default: its defaults)."""
  e = entry(name)
  return e.make(env_name, obs_spec, num_actions, config if config is not None else e.config_class())
