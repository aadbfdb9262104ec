"""The InnerAgent interface: the registry, what an agent declares, the rule x agent checks,
`--rule=native`, and typed agent configs with one-line errors."""

import dataclasses

import pytest

import lpg  # noqa: F401  Registers the LPG rules.
from harness import config as meta_test_config
from harness import runner
from inner_agents import agent as agent_lib
from inner_agents import registry
from inner_agents.actor_critic import agent as actor_critic
from inner_agents.rules import registry as rules


def _spec(**overrides):
  fields = dict(
    name="probe",
    provides=frozenset({"pi"}),
    data_regime="offline",
    native_rule="random",
    rule_roles=("policy",),
  )
  return agent_lib.AgentSpec(**{**fields, **overrides})


def test_registry_holds_the_actor_critic_and_its_declarations():
  assert registry.names() == ["actor_critic", "crr"]
  crr_spec = registry.entry("crr").spec
  assert crr_spec.data_regime == "offline" and crr_spec.native_rule == "crr" and "q" in crr_spec.provides
  spec = registry.entry("actor_critic").spec
  assert spec.provides == {"pi", "y", "v"} and spec.data_regime == "on_policy"
  assert spec.native_rule == "a2c" and spec.rule_roles == ("policy",)
  with pytest.raises(registry.UnknownAgentError, match="unknown agent 'nope'; valid: actor_critic, crr"):
    registry.entry("nope")
  with pytest.raises(ValueError, match="already registered"):
    registry.register(registry.entry("actor_critic"))


def test_the_actor_critic_implements_the_protocol():
  from dm_env import specs

  agent = registry.make("actor_critic", "chain_short", specs.BoundedArray((), int, 0, 61), 2)
  for method in ("init", "act", "predict", "learn", "hparams"):
    assert callable(getattr(agent, method)), method
  assert agent.spec is actor_critic.SPEC and agent.description == "actor_critic(table)"


def test_spec_validation():
  with pytest.raises(ValueError, match="unknown outputs"):
    _spec(provides=frozenset({"pi", "logits"}))
  with pytest.raises(ValueError, match="data_regime"):
    _spec(data_regime="streaming")


def test_compatibility_checks_name_both_and_why():
  a2c, lpg_init, random = (rules.resolve(n)[0] for n in ("a2c", "lpg_init", "random"))
  offline = _spec(provides=frozenset({"pi", "v"}))
  with pytest.raises(
    agent_lib.IncompatibleRuleError, match="rule lpg_init consumes y, which agent probe does not provide"
  ):
    agent_lib.check_compatible(offline, lpg_init)
  with pytest.raises(
    agent_lib.IncompatibleRuleError, match="rule a2c assumes on-policy data but agent probe learns"
  ):
    agent_lib.check_compatible(offline, a2c)
  agent_lib.check_compatible(offline, a2c, allow_off_policy=True)
  agent_lib.check_compatible(offline, random)  # consumes nothing, assumes nothing
  ac = actor_critic.SPEC
  with pytest.raises(agent_lib.IncompatibleRuleError, match="rule lpg_init predicts y over 30 bins"):
    agent_lib.check_compatible(ac, lpg_init, actor_critic.ActorCriticConfig(y_size=8))
  for rule in (a2c, lpg_init, random):
    agent_lib.check_compatible(ac, rule, actor_critic.ActorCriticConfig())


def test_native_rule_and_pairs():
  config = meta_test_config.get_config()
  pairs = runner.resolve_pairs(["actor_critic"], ["native", "random"], config)
  assert [(p.agent, p.rule.name) for p in pairs] == [("actor_critic", "a2c"), ("actor_critic", "random")]
  with pytest.raises(runner.UsageError, match="distinct names for agent actor_critic"):
    runner.resolve_pairs(["actor_critic"], ["native", "a2c"], config)
  with pytest.raises(runner.UsageError, match="--agent is empty; valid: actor_critic"):
    runner.resolve_pairs([], ["a2c"], config)
  with pytest.raises(registry.UnknownAgentError, match="unknown agent 'nope'"):
    runner.resolve_pairs(["nope"], ["a2c"], config)


def test_agent_config_is_typed_and_checked():
  config = meta_test_config.get_config()
  typed = runner.evaluation.agent_config(config, "actor_critic")
  assert typed == actor_critic.ActorCriticConfig()
  assert set(config.actor_critic) == {f.name for f in dataclasses.fields(actor_critic.ActorCriticConfig)}
  with pytest.raises(
    agent_lib.ConfigError, match=r"agent actor_critic has no config field\(s\) nope; valid: y_size"
  ):
    registry.config_from_dict("actor_critic", {"nope": 1})
  config.actor_critic.y_cost = float("nan")
  with pytest.raises(agent_lib.ConfigError, match=r"actor_critic\.y_cost must be a finite number"):
    runner.evaluation.validate_config(config)
