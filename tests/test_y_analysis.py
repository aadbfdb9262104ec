"""The y analysis: Monte-Carlo returns, the linear read-out and the tabular ceiling on known
answers, and a tiny end-to-end run that writes its report."""

import json
import math

import numpy as np
import pytest

from lpg import y_analysis


def test_discounted_returns_known_answer():
  # One env: rewards 1, 2, 3, 4 with the episode ending after step 1 (d_1 = 1).
  rewards = np.array([[1.0], [2.0], [3.0], [4.0]])
  dones = np.array([[0.0], [1.0], [0.0], [0.0]])
  g, exact = y_analysis.discounted_returns(rewards, dones, 0.5)
  np.testing.assert_allclose(g[:, 0], [1 + 0.5 * 2, 2, 3 + 0.5 * 4, 4])
  # Steps 0 and 1 end their episode within the recording; 2 and 3 are cut off.
  np.testing.assert_array_equal(exact[:, 0], [True, True, False, False])
  # A cut-off return counts as exact when the unrecorded tail weighs gamma^(T - t) < 1e-3.
  _, exact = y_analysis.discounted_returns(np.zeros((12, 1)), np.zeros((12, 1)), 0.5)
  np.testing.assert_array_equal(exact[:, 0], [True] * 3 + [False] * 9)  # 0.5 ** (12 - t) < 1e-3


def test_linear_readout_recovers_a_linear_target_and_not_noise():
  rng = np.random.default_rng(0)
  x = rng.dirichlet(np.ones(5), size=400)  # probabilities: collinear with the bias
  target = x @ np.array([3.0, -1.0, 0.0, 2.0, 5.0]) + 0.5
  r = y_analysis.linear_readout(x[:200], target[:200], x[200:], target[200:])
  assert r.r2 == pytest.approx(1.0, abs=1e-9) and r.pearson_r == pytest.approx(1.0, abs=1e-9)
  noise = rng.normal(size=400)
  r = y_analysis.linear_readout(x[:200], noise[:200], x[200:], noise[200:])
  assert r.r2 < 0.05


def test_tabular_ceiling_is_the_per_state_mean():
  s_train, g_train = np.array([0, 0, 1, 1]), np.array([1.0, 3.0, 10.0, 10.0])
  s_test, g_test = np.array([0, 1, 2]), np.array([2.0, 10.0, 5.0])  # state 2 never seen in training
  r2, coverage = y_analysis.tabular_ceiling(s_train, g_train, s_test, g_test)
  assert r2 == pytest.approx(1.0) and coverage == pytest.approx(2 / 3)


def test_cli_writes_the_report(tmp_path):
  out = tmp_path / "y"
  code = y_analysis.main(
    [
      "--rule=pretrained:default_cpu,lpg_init",
      "--env=chain_short",
      "--env_steps=2000",
      "--rollout_steps=200",
      f"--out={out}",
    ]
  )
  assert code == 0
  report = json.loads((out / "y_analysis.json").read_text())
  assert set(report["rules"]) == {"pretrained:default_cpu", "lpg_init"}
  for rule in report["rules"].values():
    for cell in rule["readout"].values():
      assert cell["n_test"] > 0 and (math.isnan(cell["r2"]) or cell["r2"] <= 1)
  assert (out / "y_analysis.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_bad_rule_is_one_line(tmp_path, capsys):
  assert y_analysis.main(["--rule=pretrained:nope", f"--out={tmp_path}"]) == 2
  assert capsys.readouterr().err.strip().count("\n") == 0


def test_summary_line_says_when_there_is_nothing_to_explain():
  nan = float("nan")
  cell = {"pearson_r": 0.9, "r2": 0.81, "tabular_ceiling_r2": 0.85}
  line = y_analysis.summary_line("rule", {"final_return": 2.0, "readout": {"0.5": cell}})
  assert line == "rule                     final return 2.00; gamma 0.5: r 0.90 R² 0.81 (ceiling 0.85)"
  flat = {"pearson_r": nan, "r2": nan, "tabular_ceiling_r2": nan}
  line = y_analysis.summary_line("rule", {"final_return": 0.0, "readout": {"0.5": flat, "0.9": flat}})
  assert line.endswith("final return 0.00; every recorded return is the same: nothing to explain")
