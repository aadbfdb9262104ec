"""Writing meta-test results: CSV files, a summary table and learning-curve plots."""

from __future__ import annotations

import csv
import dataclasses
import os
import warnings
from collections.abc import Sequence

import numpy as np

from harness import checkpoint
from harness.evaluation import EvalResult

CURVE_COLUMNS = ("env", "agent", "rule", "seed", "env_steps", "episode_return")
FINAL_COLUMNS = ("env", "agent", "rule", "seed", "env_steps", "final_return")


def write_results_csv(path: str, results: Sequence[EvalResult]) -> None:
  """One row per (env, rule, seed, curve point); points with no finished episode are skipped."""
  with open(path, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(CURVE_COLUMNS)
    for r in results:
      for i, seed in enumerate(r.seeds):
        for steps, ret in zip(r.env_steps, r.curve[i]):
          if np.isfinite(ret):
            writer.writerow((r.env, r.agent, r.rule, seed, int(steps), f"{ret:.6g}"))


def write_final_csv(path: str, results: Sequence[EvalResult]) -> None:
  """One row per (env, rule, seed): the final return after all env steps."""
  with open(path, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(FINAL_COLUMNS)
    for r in results:
      for seed, ret in zip(r.seeds, r.final_return):
        writer.writerow((r.env, r.agent, r.rule, seed, int(r.env_steps[-1]), f"{ret:.6g}"))


def mean_std(values: np.ndarray) -> tuple[float, float]:
  """Mean and (population) std over finite values; NaN if none are finite."""
  finite = values[np.isfinite(values)]
  if finite.size == 0:
    return float("nan"), float("nan")
  return float(finite.mean()), float(finite.std())


def summary_table(results: Sequence[EvalResult]) -> str:
  """A text table: rows are envs, columns rules (agent/rule with several agents), cells
  "mean ± std" of the final return; for Atari games also the human-normalised table; a
  last line names the off-policy pairs (on-policy rules run on other data by opt-in)."""
  normalized = normalized_table(results)
  table = _table(results, "{:.2f}") + ("\n\n" + normalized if normalized else "")
  off = list(dict.fromkeys(f"{r.agent}/{r.rule}" for r in results if r.off_policy))
  if off:
    table += (
      f"\noff-policy (--allow_off_policy): {', '.join(off)}: rules that assume on-policy data, "
      "trained on data their agent did not collect with its current policy"
    )
  return table


def labeller(results: Sequence[EvalResult]):
  """result -> its column or legend label: the rule's name, or 'agent/rule' when the
  results hold several agents."""
  several = len({r.agent for r in results}) > 1
  return lambda r: f"{r.agent}/{r.rule}" if several else r.rule


def _table(results: Sequence[EvalResult], fmt: str) -> str:
  label = labeller(results)
  envs = list(dict.fromkeys(r.env for r in results))
  columns = list(dict.fromkeys(label(r) for r in results))
  by_key = {(r.env, label(r)): r for r in results}
  header = ["env", *columns]
  rows = []
  for env in envs:
    row = [env]
    for column in columns:
      r = by_key.get((env, column))
      if r is None:
        row.append("-")
        continue
      m, s = mean_std(r.final_return)
      row.append(f"{fmt.format(m)} ± {fmt.format(s)}")
    rows.append(row)
  widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
  lines = ["  ".join(str(x).ljust(w) for x, w in zip(line, widths)) for line in [header, *rows]]
  lines.insert(1, "  ".join("-" * w for w in widths))
  n = {len(r.seeds) for r in results}
  steps = {int(r.env_steps[-1]) for r in results}
  note = f"final return, mean ± std over {'/'.join(map(str, sorted(n)))} seeds after {'/'.join(map(str, sorted(steps)))} env steps"
  return "\n".join([note, *lines])


def normalized_table(results: Sequence[EvalResult]) -> str:
  """Human-normalised final scores of the Atari results (empty if none): rows games,
  columns rules, cells 'mean ± std' over seeds of 100 (score - random) / (human - random)."""
  from environments import atari_scores

  games = [r for r in results if r.env.startswith("atari/") and atari_scores.has_reference(r.env[6:])]
  if not games:
    return ""
  normalized = [
    dataclasses.replace(r, final_return=np.asarray(atari_scores.human_normalized(r.env[6:], r.final_return)))
    for r in games
  ]
  return "human-normalised " + _table(normalized, "{:.1f}%")


def curve_points(env_steps: np.ndarray, curve: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(env_steps, mean, std) over seeds of a curve [S, P], at the points where some seed
  finished an episode: points with none (episodes longer than a curve point) are left out
  rather than drawn as gaps, so envs with long episodes still show a line."""
  with warnings.catch_warnings():  # all-NaN points
    warnings.simplefilter("ignore", RuntimeWarning)
    mean, std = np.nanmean(curve, axis=0), np.nanstd(curve, axis=0)
  seen = np.isfinite(mean)
  return np.asarray(env_steps)[seen], mean[seen], std[seen]


def plot_curves(path: str, results: Sequence[EvalResult]) -> None:
  """One panel per env, one line per rule (or agent/rule) (mean over seeds, shaded ± std)."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  label = labeller(results)
  envs = list(dict.fromkeys(r.env for r in results))
  cols = min(3, len(envs))
  rows = int(np.ceil(len(envs) / cols))
  fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
  for ax, env in zip(axes.flat, envs):
    for r in (r for r in results if r.env == env):
      x, mean, std = curve_points(r.env_steps, r.curve)
      (line,) = ax.plot(x, mean, marker="." if len(x) < 10 else None, label=label(r))
      ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    ax.set_title(env)
    ax.set_xlabel("env steps")
    ax.set_ylabel("episode return")
    ax.grid(alpha=0.3)
    ax.legend()
  for ax in list(axes.flat)[len(envs) :]:
    ax.set_visible(False)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def file_stem(*parts: str) -> str:
  """A file name for an (env, agent, rule, ...) result: the parts joined by '__', path
  separators in them (atari/Breakout, spec files) replaced by '-'."""
  return "__".join(p.replace(os.sep, "-").replace("/", "-") for p in parts)


def write_agents(out_dir: str, results: Sequence[EvalResult]) -> list[str]:
  """Saves each trained agent's parameters (where kept: host envs) as
  OUT/agents/<env>__<agent>__<rule>__seed<k>.npz, with env, agent, rule and seed as metadata."""
  paths = []
  for r in results:
    for seed, params in zip(r.seeds, r.params or ()):
      path = os.path.join(out_dir, "agents", file_stem(r.env, r.agent, r.rule, f"seed{seed}") + ".npz")
      os.makedirs(os.path.dirname(path), exist_ok=True)
      meta = {"env": r.env, "agent": r.agent, "agent_description": r.agent_description, "rule": r.rule}
      checkpoint.save(path, params, {**meta, "seed": seed})
      paths.append(path)
  return paths


def write_all(out_dir: str, results: Sequence[EvalResult]) -> list[str]:
  """Writes results.csv, final.csv, summary.txt, curves.png and the agents kept;
  returns the paths."""
  os.makedirs(out_dir, exist_ok=True)
  paths = [os.path.join(out_dir, n) for n in ("results.csv", "final.csv", "summary.txt", "curves.png")]
  write_results_csv(paths[0], results)
  write_final_csv(paths[1], results)
  with open(paths[2], "w") as f:
    f.write(summary_table(results) + "\n")
  plot_curves(paths[3], results)
  return paths + write_agents(out_dir, results)
