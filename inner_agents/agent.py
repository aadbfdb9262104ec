"""The InnerAgent interface: what every agent declares and does, and which rules it takes.

An agent learns from data its driver collects, with targets from an update rule:

  state = agent.init(key, observation)                  # fresh parameters and optimiser
  action, outputs = agent.act(state, observation, key)  # choose actions for B envs
  outputs = agent.predict(state, observation)           # its outputs, no action chosen
  state, stats, targets = agent.learn(state, trajectory, outputs, rule, meta_params, hparams)
  hparams = agent.hparams(rule)                         # per-run numbers for that rule
  agent.uses_final_observation(rule)                    # whether learn bootstraps at truncations

`learn` is the whole update: the agent turns its own outputs on the data into the rule's
`RuleInputs`, asks the rule for `Targets`, and takes a step on its policy and y losses
plus whatever native losses it has (critic, auxiliary, reward model, ...). The agent never
knows which rule produced its targets; the rule never sees the agent's parameters.

Each agent declares an `AgentSpec`: its name, the outputs it provides to rules, its data
regime (on-policy rollouts, a replay buffer or an offline dataset), its native rule (the
baseline it is published with) and which of its roles take a swapped-in rule.
`check_compatible` refuses a rule x agent pair that cannot work, in one line.

Hyperparameters come in two kinds: a typed, static `config` of the agent's own (its
dataclass, validated once; `meta_test.py --config.<agent>.<field>`), and per-run numbers
(`hparams`, a NamedTuple of arrays so that lifetimes and seeds can vmap over them), which
`agent.hparams(rule)` resolves from the config, the agent's presets for the environment
and the rule's defaults.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

import chex

from inner_agents.rules import base

DATA_REGIMES = ("on_policy", "replay", "offline")


class ConfigError(ValueError):
  """An invalid agent or harness setting (one line, naming the field)."""


class IncompatibleRuleError(ValueError):
  """A rule x agent pair that cannot work (one line, naming both and why)."""


@dataclasses.dataclass(frozen=True)
class AgentSpec:
  """What an agent declares about itself.

  Attributes:
    name: the registry name (`meta_test.py --agent=NAME`).
    provides: the outputs (of `rules.base.OUTPUTS`) it gives rules.
    data_regime: 'on_policy' (acts and learns from its own rollouts), 'replay' (learns from
      a buffer of past behaviour) or 'offline' (a fixed dataset, no interaction).
    native_rule: the rule it is published with (`--rule=native`).
    rule_roles: the roles whose update a swapped-in rule drives (e.g. ('policy',)).
    summary: one line for `meta_test.py --list`.
  """

  name: str
  provides: frozenset[str]
  data_regime: str
  native_rule: str
  rule_roles: tuple[str, ...]
  summary: str = ""

  def __post_init__(self):
    unknown = set(self.provides) - set(base.OUTPUTS)
    if unknown:
      raise ValueError(
        f"agent {self.name}: unknown outputs {sorted(unknown)}; valid: {', '.join(base.OUTPUTS)}"
      )
    if self.data_regime not in DATA_REGIMES:
      raise ValueError(f"agent {self.name}: data_regime must be one of {', '.join(DATA_REGIMES)}")


class InnerAgent(Protocol):
  """The interface every inner agent implements (see the module docstring)."""

  spec: AgentSpec
  description: str  # one line: the agent and its network for this environment

  def init(self, key: chex.PRNGKey, observation: chex.Array) -> Any:
    """A fresh agent state for observations like `observation` [B, ...]."""

  def act(self, state: Any, observation: chex.Array, key: chex.PRNGKey) -> tuple[chex.Array, Any]:
    """(actions [B], outputs [B, ...]) for observations [B, ...]."""

  def predict(self, state: Any, observation: chex.Array) -> Any:
    """The agent's outputs [...] for observations [..., *obs_shape], without acting."""

  def learn(
    self, state: Any, trajectory: Any, outputs: Any, rule: base.UpdateRule, meta_params: Any, hparams: Any
  ) -> tuple[Any, Any, base.Targets]:
    """One update from data and the agent's outputs on it: (state, stats, targets)."""

  def hparams(self, rule: base.UpdateRule) -> Any:
    """The per-run hyperparameters for training with `rule`."""

  def uses_final_observation(self, rule: base.UpdateRule) -> bool:
    """Whether `learn` with `rule` bootstraps from the state a truncated episode reached, so
    that a driver must record `Trajectory.truncations`."""


def check_compatible(
  spec: AgentSpec, rule: base.UpdateRule, agent_config: Any = None, allow_off_policy: bool = False
) -> None:
  """Raises IncompatibleRuleError (one line, naming both and why) for a pair that cannot
  work: the rule consumes an output the agent lacks, predicts a y of another size than the
  agent's (`agent_config.y_size`), or assumes on-policy data that the agent does not learn
  from (unless `allow_off_policy`)."""
  missing = sorted(rule.consumes - spec.provides)
  if missing:
    raise IncompatibleRuleError(
      f"rule {rule.name} consumes {', '.join(missing)}, which agent {spec.name} does not provide "
      f"(it provides {', '.join(sorted(spec.provides)) or 'nothing'})"
    )
  rule_y, agent_y = getattr(rule, "y_size", None), getattr(agent_config, "y_size", None)
  if "y" in rule.consumes and None not in (rule_y, agent_y) and rule_y != agent_y:
    raise IncompatibleRuleError(
      f"rule {rule.name} predicts y over {rule_y} bins but agent {spec.name} has y_size={agent_y} "
      f"(--config.{spec.name}.y_size)"
    )
  if rule.on_policy and spec.data_regime != "on_policy" and not allow_off_policy:
    raise IncompatibleRuleError(
      f"rule {rule.name} assumes on-policy data but agent {spec.name} learns from {spec.data_regime} data; "
      "pass --allow_off_policy to run the pair anyway"
    )


@dataclasses.dataclass(frozen=True)
class AgentEntry:
  """An agent's registry entry (`inner_agents.registry`).

  Attributes:
    spec: what it declares.
    config_class: its typed config, a frozen dataclass whose defaults are the agent's.
    make: (env_name, obs_spec, num_actions, config) -> the agent for that environment.
    num_envs: env_name -> B, the parallel environments a meta-test run gives it there.
  """

  spec: AgentSpec
  config_class: type
  make: Callable[[str, Any, int, Any], InnerAgent]
  num_envs: Callable[[str], int]
