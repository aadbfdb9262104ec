r"""Meta-test: train fresh agents with a given update rule and compare rules.

  python meta_test.py --rule=a2c,random --env=tabular_dense,chain_short \
      --seeds=3 --env_steps=500000 --out=runs/meta_test
  python meta_test.py --list

  python meta_test.py --env=atari/Breakout,atari/Boxing --rule=PATH,a2c \
      --env_steps=200000 --seeds=2 --out=runs/atari

Writes OUT/results.csv (learning curves: env, agent, rule, seed, env_steps,
episode_return), OUT/final.csv (final return per seed), OUT/summary.txt (mean ± std of the
final return per env x rule, also printed; for Atari also human-normalised scores) and
OUT/curves.png; for host envs (Atari, Gymnasium) also each trained agent's parameters,
OUT/agents/<env>__<rule>__seed<k>.npz. Agent settings come from `lpg/configs/meta_test.py`
and the env's preset (Atari: the paper's Table 4); override them with
--config.<field>=<value>.

Each env x rule is saved in OUT/done/ as soon as it finishes; running the same command
again (same rules, envs, seeds, steps and config) into the same OUT reuses those results,
so a killed run resumes where it stopped and extra envs or rules can be added later.
--noresume trains everything again.
"""

from __future__ import annotations

import dataclasses
import os

from absl import app, flags, logging

from environments import atari, grid_world, host, registry
from lpg import checkpoint, cli, evaluation, reporting, result_store, rule_io
from lpg import rules as rules_lib
from lpg.configs import meta_test as meta_test_config

_RULE = flags.DEFINE_list(
  "rule",
  ["a2c"],
  f"Update rules to test: {', '.join(rules_lib.names())}, lpg_init (untrained LPG), "
  "pretrained:NAME (a rule shipped with the package, see --list), or a rule file / "
  "meta-training checkpoint (.npz) or workdir (its latest checkpoint).",
)
_ENV = flags.DEFINE_list(
  "env",
  ["tabular_dense"],
  "Environments (see --list), grid-world spec files *.json, Atari games atari/<Game> (e.g. "
  "atari/Breakout) or Gymnasium envs with discrete actions gym/<id> (e.g. gym/CartPole-v1).",
)
_SEEDS = flags.DEFINE_integer("seeds", 3, "Independent agents (seeds) per env x rule.")
_ENV_STEPS = flags.DEFINE_integer("env_steps", 1_000_000, "Environment steps per agent.")
_OUT = flags.DEFINE_string("out", "runs/meta_test", "Output directory.")
_LIST = flags.DEFINE_bool("list", False, "List the registered environments and rules, then exit.")
_RESUME = flags.DEFINE_bool(
  "resume", True, "Reuse the env x rule results a run with the same settings left in OUT/done/."
)
_CONFIG = cli.define_config_flag("meta_test.py", meta_test_config.get_config())


class UsageError(ValueError):
  """Bad command-line input: reported as one line, exit status 2."""


def _list() -> None:
  entries = registry.describe_all()
  width = max(len(n) for n, _ in entries)
  print("environments:")
  for name, desc in entries:
    print(f"  {name.ljust(width)}  {desc}")
  print("  <path>.json" + " " * max(1, width - 10) + "a grid world described by a JSON spec")
  games = atari.atari_game_names()
  print(
    f"  {'atari/<Game>'.ljust(width)}  any of the {len(games)} Atari games ale-py bundles: {', '.join(games)}"
  )
  print(f"  {'gym/<id>'.ljust(width)}  a Gymnasium env with discrete actions, e.g. gym/CartPole-v1")
  print("rules:")
  for name in rules_lib.names():
    print(f"  {name.ljust(width)}  {(rules_lib.make_rule(name).__doc__ or '').strip().splitlines()[0]}")
  print(f"  {'lpg_init'.ljust(width)}  the LPG network at initialisation (an untrained control)")
  for name in rule_io.pretrained_names():
    meta = checkpoint.read_metadata(rule_io.pretrained_path(name))
    print(
      f"  {('pretrained:' + name).ljust(width)}  meta-trained {meta['meta_steps']} meta-steps "
      f"({meta['wall_time_s'] / 60:.0f} min) on {', '.join(meta['train_envs'])}"
    )


def _resolve(rule_names: list[str], env_names: list[str]) -> tuple[list, list[str]]:
  """Checks every input before anything runs or is written; returns [(rule, meta_params)]."""
  if not rule_names:
    raise UsageError("--rule is empty; valid: " + ", ".join(rules_lib.names()))
  if not env_names:
    raise UsageError("--env is empty; see --list")
  if _SEEDS.value < 1:
    raise UsageError(f"--seeds must be a positive integer, got {_SEEDS.value}")
  if _ENV_STEPS.value < 1:
    raise UsageError(f"--env_steps must be a positive integer, got {_ENV_STEPS.value}")
  if os.path.exists(_OUT.value) and not os.path.isdir(_OUT.value):
    raise UsageError(f"--out={_OUT.value} exists and is not a directory")
  for name in env_names:
    registry.validate(name)  # Raises UnknownEnvironmentError / SpecError / UnsupportedEnvironmentError.
  evaluation.validate_config(_CONFIG.value)
  resolved = rule_io.resolve_all(rule_names)
  y_size = _CONFIG.value.y_size
  for rule, _ in resolved:
    if isinstance(rule, rules_lib.LPGRule) and rule.config.y_size != y_size:
      raise UsageError(
        f"rule {rule.name} predicts y over {rule.config.y_size} bins but agents have --config.y_size={y_size}"
      )
  names = [r.name for r, _ in resolved]
  if len(set(names)) != len(names):
    raise UsageError(f"rules must have distinct names, got {names}")
  return resolved, env_names


def run(argv: list[str]) -> None:
  if len(argv) > 1:
    raise UsageError(f"unexpected arguments {argv[1:]}")
  if _LIST.value:
    _list()
    return
  rules, env_names = _resolve(_RULE.value, _ENV.value)
  config = _CONFIG.value

  from tqdm import tqdm  # Imported late: --list and errors stay fast.

  def steps_per_update(env_name: str) -> int:
    return evaluation.num_envs(env_name, config) * config.unroll_length

  def pair_steps(env_name: str) -> int:  # env steps of one env x rule, all seeds
    chunk, points = evaluation.schedule(_ENV_STEPS.value, steps_per_update(env_name), config.num_curve_points)
    return chunk * points * steps_per_update(env_name) * _SEEDS.value

  os.makedirs(os.path.join(_OUT.value, result_store.DIRNAME), exist_ok=True)  # Fails now if unwritable.
  results, agents, reused = [], [], 0
  with tqdm(
    total=sum(map(pair_steps, env_names)) * len(rules), unit="step", unit_scale=True, dynamic_ncols=True
  ) as bar:
    for env_name in env_names:
      # JAX envs run their seeds together, host envs (Atari) one after another.
      seeds_per_call = 1 if registry.is_host(env_name) else _SEEDS.value

      def on_chunk(updates: int, ret: float, env_name=env_name, seeds_per_call=seeds_per_call) -> None:
        bar.update(updates * steps_per_update(env_name) * seeds_per_call)
        bar.set_postfix(ret=f"{ret:.2f}")

      for rule, meta_params in rules:
        bar.set_description(f"{env_name} / {rule.name}")
        key = result_store.result_key(env_name, rule, meta_params, _SEEDS.value, _ENV_STEPS.value, config)
        done = result_store.path(_OUT.value, env_name, rule.name, key)
        result = result_store.load(done) if _RESUME.value else None
        if result is not None:
          reused += 1
          bar.update(pair_steps(env_name))
        else:
          result = evaluation.evaluate(
            env_name, rule, meta_params, config, _SEEDS.value, _ENV_STEPS.value, on_chunk
          )
          result_store.save(done, result)
          agents += reporting.write_agents(_OUT.value, [result])
          result = dataclasses.replace(result, params=None)  # Saved; free the memory.
        results.append(result)
  paths = reporting.write_all(_OUT.value, results)
  print(reporting.summary_table(results))
  if reused:
    print(f"reused {reused} of {len(results)} env x rule results from {_OUT.value}/{result_store.DIRNAME}")
  print("wrote " + ", ".join(paths) + (f" and {len(agents)} agents in {_OUT.value}/agents" if agents else ""))


def main(argv: list[str]) -> None:
  logging.set_verbosity(logging.WARNING)  # JAX's backend probing is not news to users.
  try:
    run(argv)
  except (
    UsageError,
    registry.UnknownEnvironmentError,
    grid_world.SpecError,
    rules_lib.UnknownRuleError,
    evaluation.ConfigError,
    rule_io.RuleLoadError,
    checkpoint.CheckpointError,
    host.UnsupportedEnvironmentError,
    OSError,  # An unwritable --out.
  ) as e:
    cli.fail("meta_test.py", str(e))


if __name__ == "__main__":
  app.run(main, flags_parser=cli.flags_parser("meta_test.py"))
