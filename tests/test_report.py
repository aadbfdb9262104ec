"""The evaluation report from meta_test CSVs: training / held-out / unseen marks from the
rule's metadata, ratios to A2C, the targets' verdicts and the Atari table (known answers),
and the curve points plotted."""

import csv

import numpy as np

from harness import reporting
from lpg import report


def _write_final(path, rows):
  path.parent.mkdir(parents=True, exist_ok=True)
  with open(path, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["env", "agent", "rule", "seed", "env_steps", "final_return"])
    for env, rule, values in rows:
      for seed, v in enumerate(values):
        w.writerow([env, "agent", rule, seed, 1000, v])


def test_report_marks_sets_and_checks_the_targets(tmp_path):
  # default_cpu was meta-trained on tabular_dense (and three other tabular grids).
  _write_final(
    tmp_path / "envs" / "final.csv",
    [
      ("tabular_dense", "default_cpu", [10.0, 12.0]),
      ("tabular_dense", "a2c", [20.0, 20.0]),
      ("tabular_dense", "lpg_init", [0.0, 0.0]),
      ("tabular_dense", "random", [-1.0, -1.0]),
      ("tabular_sparse", "default_cpu", [0.9, 0.9]),
      ("tabular_sparse", "a2c", [1.0, 1.0]),
      ("tabular_sparse", "lpg_init", [1.0, 1.0]),  # not beaten
      ("tabular_sparse", "random", [0.0, 0.0]),
      ("chain_short", "default_cpu", [0.5, 0.5]),  # unseen, A2C <= 0: no ratio
      ("chain_short", "a2c", [-0.5, 0.5]),
      ("chain_short", "lpg_init", [0.0, 0.0]),
      ("chain_short", "random", [0.0, 0.0]),
      ("chain_long", "default_cpu", [0.3, 0.3]),  # unseen
      ("chain_long", "a2c", [1.0, 1.0]),
      ("chain_long", "lpg_init", [0.0, 0.0]),
      ("chain_long", "random", [0.0, 0.0]),
    ],
  )
  _write_final(
    tmp_path / "atari" / "final.csv",
    [("atari/Breakout", "default_cpu", [5.0]), ("atari/Breakout", "a2c", [1.0])],
  )
  with open(report.write_report(str(tmp_path), "pretrained:default_cpu")) as f:
    text = f.read()
  assert (
    "| tabular_dense | training | 11.00 ± 1.00 | 20.00 ± 0.00 | 0.00 ± 0.00 | -1.00 ± 0.00 | 0.55 |" in text
  )
  assert "| tabular_sparse | held-out | 0.90 ± 0.00 | 1.00 ± 0.00 |" in text
  assert "| chain_short | unseen | 0.50 ± 0.00 | 0.00 ± 0.50 | 0.00 ± 0.00 | 0.00 ± 0.00 | n/a |" in text
  assert "- held-out envs: mean return relative to A2C 0.90 over 1 envs (target >= 0.8): met" in text
  # Not meta-trained on: tabular_sparse 0.9 and chain_long 0.3 -> 0.6.
  assert (
    "- all envs not meta-trained on (held-out and unseen): mean return relative to A2C 0.60 over "
    "2 envs (target >= 0.8; no ratio where A2C's mean return is <= 0: chain_short): not met" in text
  )
  assert "above lpg_init and random (mean final return) on 3 of 4 envs (target: all): not met" in text
  # Breakout: random play 1.7, human 30.5 -> (5 - 1.7) / 28.8 = 11.5%.
  assert "| atari/Breakout | 5.00 ± 0.00 (11.5%) | 1.00 ± 0.00 (-2.4%) | 1.7 | yes |" in text
  assert "Meta-trained for 1000 meta-steps" in text


def test_bad_rule_is_one_line(capsys):
  assert report.main(["--rule=pretrained:nope", "--report_only"]) == 2
  assert capsys.readouterr().err.strip().count("\n") == 0


def test_curve_points_skip_points_where_no_episode_finished():
  steps = np.array([10, 20, 30, 40])
  curve = np.array([[np.nan, 1.0, np.nan, 3.0], [np.nan, 3.0, np.nan, np.nan]])
  x, mean, std = reporting.curve_points(steps, curve)
  np.testing.assert_array_equal(x, [20, 40])
  np.testing.assert_allclose(mean, [2.0, 3.0])
  np.testing.assert_allclose(std, [1.0, 0.0])
