"""meta_test.py end to end: listing, bad input, and a tiny run that writes every output."""

import csv
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args, cwd=None):
  return subprocess.run(
    [sys.executable, os.path.join(ROOT, "meta_test.py"), *args],
    capture_output=True,
    text=True,
    timeout=600,
    cwd=cwd,
  )


def test_list_names_every_agent_environment_and_rule():
  proc = _run("--list")
  assert proc.returncode == 0, proc.stderr
  assert "provides pi,y,v, on_policy data, native rule a2c" in proc.stdout
  for name in [
    "actor_critic",
    "native",
    "lpg_init",
    "pretrained:default_cpu",
    "tabular_dense",
    "random_small_sparse",
    "chain_distractor",
    "a2c",
    "random",
    "Breakout",
    "gym/<id>",
  ]:
    assert name in proc.stdout


@pytest.mark.parametrize(
  "args,expected",
  [
    (["--env=nope"], "unknown environment 'nope'; valid: tabular_dense"),
    (["--rule=nope"], "unknown rule 'nope'; valid: a2c, random"),
    (["--env_steps=-5"], "--env_steps must be a positive integer"),
    (["--config.nope=1"], "unknown config field(s) nope"),
    (["--config.num_envs=x"], "flag --config.num_envs=x"),
    (["--env=missing_spec.json"], "cannot read grid-world spec"),
    (["--env=atari/Breakot"], "unknown Atari game 'Breakot'; did you mean Breakout?"),
    (["--env=gym/Pendulum-v1"], "gym/Pendulum-v1 has continuous actions"),
    (["--env=gym/NoSuchEnv-v0"], "NoSuchEnv"),
    (["--config.actor_critic.pi_hat_baseline=3"], "actor_critic.pi_hat_baseline must be -1"),
    (["--config.actor_critic.nope=1"], "unknown config field(s) actor_critic.nope; valid fields:"),
    (["--agent=nope"], "unknown agent 'nope'; valid: actor_critic"),
    (
      ["--rule=pretrained:default_cpu", "--config.actor_critic.y_size=8"],
      "rule default_cpu predicts y over 30 bins but agent actor_critic has y_size=8",
    ),
  ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, expected):
  out = tmp_path / "out"
  proc = _run(*args, f"--out={out}")
  assert proc.returncode != 0
  lines = [line for line in proc.stderr.splitlines() if line.strip()]
  assert len(lines) == 1, proc.stderr
  assert lines[0].startswith("meta_test.py: error: ") and expected in lines[0], lines[0]
  assert "Traceback" not in proc.stderr
  assert not out.exists()


def test_malformed_grid_spec_file(tmp_path):
  spec = tmp_path / "bad.json"
  spec.write_text(
    '{"layout": ["..", ".."], "objects": [[1, 2.0, 0]], "max_steps": 5, "observation": "tabular"}'
  )
  proc = _run(f"--env={spec}", f"--out={tmp_path / 'out'}")
  assert proc.returncode != 0
  assert (
    proc.stderr.strip() == "meta_test.py: error: object probabilities must lie in [0, 1], got (1.0, 2.0, 0.0)"
  )


def test_tiny_run_writes_results(tmp_path):
  spec = tmp_path / "my_grid.json"
  spec.write_text(
    '{"size": [3, 4], "objects": [[2, [1, 0, 0.5]]], "max_steps": 20, "observation": "tabular"}'
  )
  out = tmp_path / "out"
  args = (
    f"--env=chain_short,{spec}",
    "--rule=a2c,random",
    "--seeds=2",
    "--env_steps=960",
    "--config.num_envs=8",
    "--config.num_curve_points=3",
    f"--out={out}",
  )
  proc = _run(*args)
  assert proc.returncode == 0, proc.stderr
  assert sorted(os.listdir(out)) == ["curves.png", "done", "final.csv", "results.csv", "summary.txt"]
  assert len(os.listdir(out / "done")) == 2 * 2
  with open(out / "results.csv") as f:
    rows = list(csv.DictReader(f))
  assert list(rows[0]) == ["env", "agent", "rule", "seed", "env_steps", "episode_return"]
  assert {r["env"] for r in rows} == {"chain_short", "my_grid"}
  assert {r["rule"] for r in rows} == {"a2c", "random"}
  assert {r["seed"] for r in rows} == {"0", "1"}
  with open(out / "final.csv") as f:
    finals = list(csv.DictReader(f))
  assert len(finals) == 2 * 2 * 2
  assert all(int(r["env_steps"]) == 960 for r in finals)
  summary = (out / "summary.txt").read_text()
  assert "my_grid" in summary and "±" in summary and summary in proc.stdout
  assert os.path.getsize(out / "curves.png") > 10_000

  # The same command again reuses every finished env x rule and writes the same results;
  # a changed setting (here the seed offset) trains afresh.
  first = (out / "final.csv").read_text()
  (out / "final.csv").unlink()
  again = _run(*args)
  assert again.returncode == 0, again.stderr
  assert "reused 4 of 4 results" in again.stdout
  assert (out / "final.csv").read_text() == first
  changed = _run(*args, "--config.seed_offset=1")
  assert changed.returncode == 0, changed.stderr
  assert "reused" not in changed.stdout and len(os.listdir(out / "done")) == 2 * 2 * 2


def test_tiny_atari_run_writes_scores_and_agents(tmp_path):
  """Breakout through ale-py with the Table 4 agent: full-game scores, the human-normalised
  table and the trained agents' parameters, which load back."""
  from harness import checkpoint

  out = tmp_path / "out"
  proc = _run(
    "--env=atari/Breakout",
    "--rule=a2c,lpg_init",
    "--seeds=1",
    "--env_steps=400",
    "--config.num_envs=2",
    "--config.unroll_length=10",
    "--config.num_curve_points=2",
    f"--out={out}",
  )
  assert proc.returncode == 0, proc.stderr
  summary = (out / "summary.txt").read_text()
  assert "atari/Breakout" in summary and "human-normalised final return" in summary
  agents = sorted(os.listdir(out / "agents"))
  assert agents == [
    "atari-Breakout__actor_critic__a2c__seed0.npz",
    "atari-Breakout__actor_critic__lpg_init__seed0.npz",
  ]
  params, meta = checkpoint.load(out / "agents" / agents[0])
  assert meta["env"] == "atari/Breakout" and meta["rule"] == "a2c" and meta["agent"] == "actor_critic"
  assert meta["agent_description"] == "actor_critic(C32-C64-C64-D512)"
  assert params["torso_net/conv2_d"]["w"].shape == (8, 8, 4, 32)


def _run_with_probe_agent(*args):
  """meta_test.py with a test-only agent registered (`probe_agents`), as a subprocess."""
  code = (
    "import sys; sys.path.insert(0, sys.argv[1]); import probe_agents; "
    "sys.argv = ['meta_test.py', *sys.argv[2:]]; "
    "from absl import app; from harness import cli; import meta_test; "
    "app.run(meta_test.main, flags_parser=cli.flags_parser('meta_test.py'))"
  )
  return subprocess.run(
    [sys.executable, "-c", code, os.path.dirname(os.path.abspath(__file__)), *args],
    capture_output=True,
    text=True,
    timeout=600,
    cwd=ROOT,
  )


@pytest.mark.parametrize(
  "rule,expected",
  [
    ("lpg_init", "rule lpg_init consumes y, which agent offline_probe does not provide (it provides pi, v)"),
    (
      "a2c",
      "rule a2c assumes on-policy data but agent offline_probe learns from offline data; pass --allow_off_policy",
    ),
  ],
)
def test_a_pair_that_cannot_work_is_refused_in_one_line(tmp_path, rule, expected):
  out = tmp_path / "out"
  proc = _run_with_probe_agent("--agent=actor_critic,offline_probe", f"--rule={rule}", f"--out={out}")
  assert proc.returncode != 0
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith(f"meta_test.py: error: {expected}"), proc.stderr
  assert not out.exists()
  listed = _run_with_probe_agent("--list")
  assert "offline_probe" in listed.stdout and "offline data, native rule random" in listed.stdout


def test_allow_off_policy_lets_the_pair_through(tmp_path):
  proc = _run_with_probe_agent(
    "--agent=offline_probe", "--rule=a2c", "--allow_off_policy", f"--out={tmp_path}"
  )
  assert "assumes on-policy data" not in proc.stderr
  # It got past the rule x agent check, as far as asking for the offline agent's data.
  assert "offline_probe learns from an offline dataset: pass --dataset" in proc.stderr
