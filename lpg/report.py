"""The evaluation report of a learned rule: all 15 grid worlds and chains, and Atari.

  python -m lpg.report --rule=pretrained:default_cpu --seeds=5 --env_steps=1000000 \
      --atari=Breakout,Boxing,Pong,Seaquest,SpaceInvaders --atari_steps=200000 --out=docs/report

Trains fresh agents with the rule, A2C, the untrained LPG network (`lpg_init`) and `random`
on every registered grid world and chain (the meta-test run, `harness.runner`, into
OUT/envs), and with the rule and A2C on the Atari games (OUT/atari, Table 4's agent), then
writes OUT/report.md: final
returns (mean ± std over seeds) with each env marked as one the rule was meta-trained on
or not (`held-out`: the meta-training config's eval envs; `unseen`: neither), from the rule
file's metadata, the rule's return relative to A2C's, and the paper's targets checked: on
held-out envs (and on all envs not trained on) at least 0.8x A2C on average and above
lpg_init and random everywhere; on Atari above random. An interrupted report resumes from
meta_test's OUT/*/done/ results; `--report_only` rewrites the report from existing CSVs.
"""

from __future__ import annotations

import argparse
import collections
import csv
import os
import sys
from typing import Any

import numpy as np

from environments import atari_scores, grid_world, host, registry
from environments.errors import UnknownEnvironmentError
from harness import checkpoint, reporting, runner
from harness import config as meta_test_config
from inner_agents.agent import ConfigError
from inner_agents.rules import registry as rule_registry
from lpg import rule_io
from lpg.configs import meta_train as meta_train_config
from lpg.program import AGENT

CONTROLS = ("a2c", "lpg_init", "random")
TARGET_RATIO = 0.8


def _meta_test(rules: list[str], envs: list[str], seeds: int, env_steps: int, out: str) -> None:
  """The meta-test run (as `meta_test.py` would do it) of the LPG agent, in this process."""
  print(
    f"meta-test: --rule={','.join(rules)} --env={','.join(envs)} --seeds={seeds} --env_steps={env_steps} --out={out}"
  )
  config = meta_test_config.get_config()
  pairs = runner.resolve_pairs([AGENT], rules, config)
  runner.validate_envs(envs)
  results, _, _ = runner.run(pairs, envs, seeds, env_steps, out, config)
  print(reporting.summary_table(results), flush=True)


def rule_metadata(spec: str) -> dict[str, Any]:
  """The learned rule's name and `rule_io.provenance` (training envs, budget, code)."""
  rule_registry.resolve(spec)  # one-line errors for unknown names and missing files
  if spec.startswith(rule_io.PRETRAINED_PREFIX) or os.path.exists(spec):
    rule, _, meta = rule_io.load_learned(rule_io.learned_path(spec))
    return {"name": rule.name, **rule_io.provenance(meta)}
  raise rule_io.RuleLoadError(f"--rule={spec}: the report is for a learned rule (pretrained:NAME or a path)")


def read_finals(path: str) -> dict[tuple[str, str], np.ndarray]:
  """{(env, rule): final returns [seeds]} from a meta_test final.csv."""
  out = collections.defaultdict(list)
  with open(path) as f:
    for row in csv.DictReader(f):
      out[(row["env"], row["rule"])].append(float(row["final_return"]))
  return {k: np.asarray(v) for k, v in out.items()}


def _cell(values: np.ndarray | None) -> str:
  if values is None or not np.isfinite(values).any():
    return "n/a"
  return "{:.2f} ± {:.2f}".format(*reporting.mean_std(values))


def env_rows(finals: dict, rule: str, meta: dict) -> list[dict[str, Any]]:
  """One row per env: its set, the means, the ratio to A2C and whether controls are beaten."""
  rows = []
  for env in dict.fromkeys(env for env, _ in finals):  # meta_test's order
    if (env, rule) not in finals:
      continue
    mean = {r: float(np.nanmean(finals[(env, r)])) for r in (rule, *CONTROLS) if (env, r) in finals}
    a2c = mean.get("a2c")
    rows.append(
      {
        "env": env,
        "set": _set_of(env, meta),
        "cells": {r: _cell(finals.get((env, r))) for r in (rule, *CONTROLS)},
        "ratio": mean[rule] / a2c if a2c is not None and a2c > 0 else None,
        "beats_controls": all(mean[rule] > mean[c] for c in ("lpg_init", "random") if c in mean),
      }
    )
  return rows


def _set_of(env: str, meta: dict) -> str:
  """training (meta-trained on), held-out (the meta-training config's eval_envs), unseen
  (neither, e.g. left out of a run for compute) or - (no provenance)."""
  if not meta["train_envs"]:
    return "-"
  if env in meta["train_envs"]:
    return "training"
  return "held-out" if env in meta["eval_envs"] else "unseen"


def write_report(out: str, spec: str) -> str:
  """Writes OUT/report.md from OUT/envs/final.csv and OUT/atari/final.csv (if present)."""
  meta = rule_metadata(spec)
  rule = meta["name"]
  lines = [f"# Evaluation of `{spec}`", ""]
  if meta.get("meta_steps"):
    lines += [
      f"Meta-trained for {meta['meta_steps']} meta-steps ({meta['env_steps']:,} agent steps, "
      f"{meta['wall_time_s'] / 3600:.2f} h) by code version {meta.get('code_version', 'unknown')} on: "
      f"{', '.join(meta['train_envs'])}. Held out: {', '.join(meta['eval_envs']) or 'none'}.",
      "",
    ]
  envs_csv = os.path.join(out, "envs", "final.csv")
  if os.path.exists(envs_csv):
    finals = read_finals(envs_csv)
    rows = env_rows(finals, rule, meta)
    steps = _env_steps(envs_csv)
    seeds = len(next(iter(finals.values())))
    lines += [
      f"## Grid worlds and chains ({seeds} seeds, {steps:,} env steps per agent)",
      "",
      "Final return, mean ± std over seeds ([curves](envs/curves.png)). Set: `training`, "
      "meta-trained on; `held-out`, held out by the meta-training config (its eval envs); "
      "`unseen`, neither.",
      "",
      f"| env | set | {rule} | " + " | ".join(CONTROLS) + f" | {rule} / a2c |",
      "|---|---|" + "---|" * (len(CONTROLS) + 2),
    ]
    for r in rows:
      ratio = "n/a" if r["ratio"] is None else f"{r['ratio']:.2f}"
      cells = " | ".join(r["cells"][c] for c in (rule, *CONTROLS))
      lines.append(f"| {r['env']} | {r['set']} | {cells} | {ratio} |")
    lines += ["", *_targets(rows)]
  atari_csv = os.path.join(out, "atari", "final.csv")
  if os.path.exists(atari_csv):
    finals = read_finals(atari_csv)
    games = sorted({env for env, _ in finals})
    lines += [
      "",
      f"## Atari ({_env_steps(atari_csv):,} agent steps per agent, Table 4's agent)",
      "",
      "Full-game score, mean ± std over seeds (human-normalised mean); random play from the "
      "literature's table ([curves](atari/curves.png)).",
      "",
      f"| game | {rule} | a2c | random play | {rule} above random |",
      "|---|---|---|---|---|",
    ]
    for game in games:
      ref = atari_scores.random_score(game.removeprefix("atari/"))
      cells = [_atari_cell(game, finals.get((game, r))) for r in (rule, "a2c")]
      above = "n/a" if ref is None else ("yes" if np.nanmean(finals[(game, rule)]) > ref else "no")
      lines.append(f"| {game} | {cells[0]} | {cells[1]} | {'n/a' if ref is None else ref} | {above} |")
  os.makedirs(out, exist_ok=True)
  path = os.path.join(out, "report.md")
  with open(path, "w") as f:
    f.write("\n".join(lines) + "\n")
  return path


def _atari_cell(game: str, values: np.ndarray | None) -> str:
  cell = _cell(values)
  game = game.removeprefix("atari/")
  if values is None or not atari_scores.has_reference(game):
    return cell
  return f"{cell} ({atari_scores.human_normalized(game, float(np.nanmean(values))):.1f}%)"


def _env_steps(path: str) -> int:
  with open(path) as f:
    return max(int(row["env_steps"]) for row in csv.DictReader(f))


def _ratio_line(rows: list[dict[str, Any]], label: str) -> str:
  ratios = [r["ratio"] for r in rows if r["ratio"] is not None]
  mean = float(np.mean(ratios))
  verdict = "met" if mean >= TARGET_RATIO else "not met"
  undefined = [r["env"] for r in rows if r["ratio"] is None]
  note = f"; no ratio where A2C's mean return is <= 0: {', '.join(undefined)}" if undefined else ""
  return (
    f"- {label}: mean return relative to A2C {mean:.2f} over {len(ratios)} envs "
    f"(target >= {TARGET_RATIO}{note}): {verdict}"
  )


def _targets(rows: list[dict[str, Any]]) -> list[str]:
  held = [r for r in rows if r["set"] == "held-out"]
  not_trained = [r for r in rows if r["set"] in ("held-out", "unseen")]
  beaten = sum(r["beats_controls"] for r in rows)
  lines = ["Targets (the paper's finding):", ""]
  if any(r["ratio"] is not None for r in held):
    lines.append(_ratio_line(held, "held-out envs"))
  if len(not_trained) > len(held) and any(r["ratio"] is not None for r in not_trained):
    lines.append(_ratio_line(not_trained, "all envs not meta-trained on (held-out and unseen)"))
  lines.append(
    f"- above lpg_init and random (mean final return) on {beaten} of {len(rows)} envs"
    f" (target: all): {'met' if beaten == len(rows) else 'not met'}"
  )
  return lines


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m lpg.report", description=__doc__.splitlines()[0])
  parser.add_argument(
    "--rule", required=True, help="the learned rule: pretrained:NAME, a rule file or workdir"
  )
  parser.add_argument("--seeds", type=int, default=5)
  parser.add_argument("--env_steps", type=int, default=1_000_000)
  parser.add_argument("--envs", default=",".join(meta_train_config.ALL_TRAIN), help="grid worlds and chains")
  parser.add_argument(
    "--atari", default="", help="comma-separated games, e.g. Breakout,Boxing (default none)"
  )
  parser.add_argument("--atari_steps", type=int, default=200_000)
  parser.add_argument("--atari_seeds", type=int, default=1)
  parser.add_argument("--out", default="runs/report")
  parser.add_argument("--report_only", action="store_true", help="rewrite report.md from existing CSVs")
  args = parser.parse_args(argv)
  try:
    for env in filter(None, args.envs.split(",")):  # --envs= runs Atari only
      registry.entry(env)
    rule_metadata(args.rule)  # the rule loads
    if not args.report_only:
      envs = [e for e in args.envs.split(",") if e]
      if envs:
        _meta_test([args.rule, *CONTROLS], envs, args.seeds, args.env_steps, os.path.join(args.out, "envs"))
      games = [f"atari/{g}" for g in args.atari.split(",") if g]
      if games:
        _meta_test(
          [args.rule, "a2c"], games, args.atari_seeds, args.atari_steps, os.path.join(args.out, "atari")
        )
  except (
    rule_registry.RuleError,
    UnknownEnvironmentError,
    grid_world.SpecError,
    host.UnsupportedEnvironmentError,
    ConfigError,
    checkpoint.CheckpointError,
    runner.UsageError,
    OSError,
  ) as e:
    print(f"report: error: {e}", file=sys.stderr)
    return 2
  path = write_report(args.out, args.rule)
  with open(path) as f:
    print(f.read())
  print(f"wrote {path}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
