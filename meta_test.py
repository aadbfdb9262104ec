r"""Meta-test: train fresh agents with given update rules and compare them.

  python meta_test.py --rule=a2c,random --env=tabular_dense,chain_short \
      --seeds=3 --env_steps=500000 --out=runs/meta_test
  python meta_test.py --list
  python meta_test.py --agent=actor_critic --rule=native,pretrained:default_cpu --env=tabular_sparse

  python meta_test.py --env=atari/Breakout,atari/Boxing --rule=PATH,a2c \
      --env_steps=200000 --seeds=2 --out=runs/atari
  python meta_test.py --agent=crr --dataset=lpg/tabular_dense/mixed-v0 \
      --rule=native,bc,crr_binary,pretrained:reference_cpu --allow_off_policy --env_steps=5200000

Offline agents (CRR) learn from --dataset (a Minari dataset id in the Minari root, or a
dataset directory; `python -m harness.datasets` makes them) and are evaluated by rolling
out their policy in the env the data came from; their env_steps count the dataset
transitions sampled (B windows x T steps per update).

Every env x agent x rule trains --seeds fresh agents (`--rule=native`: each agent's own
rule). Writes OUT/results.csv (learning curves: env, agent, rule, seed, env_steps,
episode_return), OUT/final.csv (final return per seed), OUT/summary.txt (mean ± std of the
final return per env x rule, also printed; for Atari also human-normalised scores) and
OUT/curves.png; for host envs (Atari, Gymnasium) also each trained agent's parameters,
OUT/agents/<env>__<agent>__<rule>__seed<k>.npz. Settings come from `harness/config.py`, the
agent's config and its presets for the env (Atari: the paper's Table 4); override them with
--config.<field>=<value> and --config.<agent>.<field>=<value>.

Each result is saved in OUT/done/ as soon as it finishes; running the same command again
(same agents, rules, envs, seeds, steps and config) into the same OUT reuses those results,
so a killed run resumes where it stopped and extra envs, agents or rules can be added
later. --noresume trains everything again.
"""

from __future__ import annotations

from absl import app, flags, logging

import lpg  # noqa: F401  Registers the LPG rules (lpg_init, pretrained:NAME, paths).
from environments import atari, grid_world, host, offline_data, registry
from environments.errors import UnknownEnvironmentError
from harness import checkpoint, cli, evaluation, offline, reporting, result_store, runner
from harness import config as meta_test_config
from inner_agents import agent as agent_lib
from inner_agents import registry as agent_registry
from inner_agents.rules import registry as rule_registry
from inner_agents.rules.base import OUTPUTS

_AGENT = flags.DEFINE_list(
  "agent", ["actor_critic"], "Inner agents to train (see --list); each takes every --rule."
)
_RULE = flags.DEFINE_list(
  "rule",
  ["a2c"],
  f"Update rules to test: native (each agent's own), {', '.join(rule_registry.names())}: the "
  "hand-designed rules, lpg_init (untrained LPG), pretrained:NAME (a rule shipped with the "
  "package, see --list), or a rule file / meta-training checkpoint (.npz) or workdir.",
)
_ENV = flags.DEFINE_list(
  "env",
  ["tabular_dense"],
  "Environments (see --list), grid-world spec files *.json, Atari games atari/<Game> (e.g. "
  "atari/Breakout) or Gymnasium envs with discrete actions gym/<id> (e.g. gym/CartPole-v1).",
)
_SEEDS = flags.DEFINE_integer("seeds", 3, "Independent agents (seeds) per env x agent x rule.")
_ENV_STEPS = flags.DEFINE_integer("env_steps", 1_000_000, "Environment steps per agent.")
_OUT = flags.DEFINE_string("out", "runs/meta_test", "Output directory.")
_LIST = flags.DEFINE_bool("list", False, "List the registered agents, environments and rules, then exit.")
_RESUME = flags.DEFINE_bool(
  "resume", True, "Reuse the results a run with the same settings left in OUT/done/."
)
_ALLOW_OFF_POLICY = flags.DEFINE_bool(
  "allow_off_policy", False, "Run on-policy rules (e.g. a2c, LPG) on agents that learn from other data."
)
_DATASET = flags.DEFINE_list(
  "dataset",
  [],
  "Offline agents' datasets: Minari dataset ids in --dataset_root (e.g. lpg/tabular_dense/mixed-v0) "
  "or dataset directories; each is evaluated in the env it records (or the one --env names).",
)
_DATASET_ROOT = flags.DEFINE_string(
  "dataset_root", None, "Minari dataset root (default: $MINARI_DATASETS_PATH or ~/.minari/datasets)."
)
_PROGRESS = flags.DEFINE_bool("progress", True, "Show a progress bar.")
_CONFIG = cli.define_config_flag("meta_test.py", meta_test_config.get_config())


def _list() -> None:
  envs = registry.describe_all()
  rules = [
    line for e in rule_registry.entries() for line in (e.listing() if e.listing else [(e.name, e.summary)])
  ]
  agents = [(e.spec.name, e.spec) for e in agent_registry.entries()]
  width = max(len(n) for n, _ in [*envs, *rules, *agents])
  print("agents:")
  for name, spec in agents:
    provides = ",".join(o for o in OUTPUTS if o in spec.provides)
    print(
      f"  {name.ljust(width)}  {spec.summary}; provides {provides}, {spec.data_regime} data, "
      f"native rule {spec.native_rule}, a swapped rule drives its {' and '.join(spec.rule_roles)}"
    )
  print("environments:")
  for name, desc in envs:
    print(f"  {name.ljust(width)}  {desc}")
  print("  <path>.json" + " " * max(1, width - 10) + "a grid world described by a JSON spec")
  games = atari.atari_game_names()
  print(
    f"  {'atari/<Game>'.ljust(width)}  any of the {len(games)} Atari games ale-py bundles: {', '.join(games)}"
  )
  print(f"  {'gym/<id>'.ljust(width)}  a Gymnasium env with discrete actions, e.g. gym/CartPole-v1")
  local = offline_data.list_local(_DATASET_ROOT.value)
  print(f"datasets (in {offline_data.root(_DATASET_ROOT.value)}, for --agent=crr):")
  for name in local or ["(none; make some with `python -m harness.datasets`)"]:
    print(f"  {name}")
  print("rules:")
  print(f"  {runner.NATIVE.ljust(width)}  each agent's own rule (its baseline)")
  for name, summary in rules:
    print(f"  {name.ljust(width)}  {summary}")


def run(argv: list[str]) -> None:
  if len(argv) > 1:
    raise runner.UsageError(f"unexpected arguments {argv[1:]}")
  if _LIST.value:
    _list()
    return
  config = _CONFIG.value
  # Every input is checked before anything runs or is written.
  evaluation.validate_config(config)
  pairs = runner.resolve_pairs(_AGENT.value, _RULE.value, config, _ALLOW_OFF_POLICY.value)
  explicit_envs = _ENV.value if flags.FLAGS["env"].present else []
  datasets = []
  for spec in _DATASET.value:
    dataset = offline_data.load(spec, _DATASET_ROOT.value)
    env_name = offline.dataset_env(dataset, explicit_envs)
    offline.check_dataset(dataset, env_name)
    datasets.append((dataset, env_name))
  if any(not runner.is_offline(p.agent) for p in pairs):
    runner.validate_envs(_ENV.value)
  runner.jobs(pairs, _ENV.value, datasets)  # A missing data source fails before anything runs.
  results, paths, reused = runner.run(
    pairs,
    _ENV.value,
    _SEEDS.value,
    _ENV_STEPS.value,
    _OUT.value,
    config,
    _RESUME.value,
    _PROGRESS.value,
    datasets,
  )
  print(reporting.summary_table(results))
  if reused:
    print(f"reused {reused} of {len(results)} results from {_OUT.value}/{result_store.DIRNAME}")
  print("wrote " + ", ".join(paths))


def main(argv: list[str]) -> None:
  logging.set_verbosity(logging.WARNING)  # JAX's backend probing is not news to users.
  try:
    run(argv)
  except (
    runner.UsageError,
    UnknownEnvironmentError,
    grid_world.SpecError,
    agent_registry.UnknownAgentError,
    rule_registry.RuleError,
    agent_lib.ConfigError,
    agent_lib.IncompatibleRuleError,
    checkpoint.CheckpointError,
    host.UnsupportedEnvironmentError,
    offline_data.DatasetError,
    OSError,  # An unwritable --out.
  ) as e:
    cli.fail("meta_test.py", str(e))


if __name__ == "__main__":
  app.run(main, flags_parser=cli.flags_parser("meta_test.py"))
