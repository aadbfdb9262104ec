"""A test-only agent for the harness's rule x agent checks: it learns from offline data and
provides pi and v only. It is never built: `make` says so (one line)."""

import dataclasses

from inner_agents import registry
from inner_agents.agent import AgentEntry, AgentSpec, ConfigError


@dataclasses.dataclass(frozen=True)
class ProbeConfig:
  batch_size: int = 8


def _make(env_name, obs_spec, num_actions, config):
  raise ConfigError("offline_probe has no driver: it exists to test the rule x agent checks")


SPEC = AgentSpec(
  name="offline_probe",
  provides=frozenset({"pi", "v"}),
  data_regime="offline",
  native_rule="random",
  rule_roles=("policy",),
  summary="a test probe",
)
registry.register(AgentEntry(SPEC, ProbeConfig, _make, num_envs=lambda env_name: 1))
