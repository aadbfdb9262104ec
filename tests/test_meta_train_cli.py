"""meta_train.py end to end (a tiny run writes every output; bad input is one error line and
writes nothing), and meta_test.py on the learned rule it wrote."""

import concurrent.futures
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from harness import checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 3
# The tiny program of tests/test_meta_train_resume.py (same traced meta-step, so when both
# modules run in one session the subprocess reuses its compiled executable).
TINY = [
  "--config.train_envs=chain_short",
  "--config.eval_envs=",
  "--config.lifetimes_per_env=2",
  "--config.num_envs=2",
  "--config.unroll_length=3",
  "--config.num_inner_updates=2",
  "--config.lifetime_steps=30",
  "--config.lpg.hidden_size=6",
  "--config.lpg.phi_size=4",
  "--config.lpg.y_size=3",
  "--config.log_every=1",
  "--config.keep_checkpoints=2",
]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
  cache = tmp_path_factory.getbasetemp() / "lpg_jax_cache"
  cache.mkdir(exist_ok=True)
  return dict(
    os.environ,
    JAX_PLATFORMS="cpu",
    JAX_COMPILATION_CACHE_DIR=str(cache),
    JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="1",
  )


def _run(script, env, *args):
  return subprocess.run(
    [sys.executable, os.path.join(ROOT, script), *args],
    capture_output=True,
    text=True,
    timeout=600,
    env=env,
    cwd=ROOT,
  )


def _snapshot(path):
  out = {}
  for dirpath, _, files in os.walk(path):
    for name in files:
      full = os.path.join(dirpath, name)
      with open(full, "rb") as f:
        out[os.path.relpath(full, path)] = f.read()
  return out


def _assert_one_error_line(proc, prog, expected):
  assert proc.returncode != 0
  assert "Traceback" not in proc.stderr
  lines = [line for line in proc.stderr.splitlines() if line.strip()]
  assert len(lines) == 1, proc.stderr
  assert lines[0].startswith(f"{prog}: error: ") and expected in lines[0], lines[0]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, env):
  """A workdir after a tiny 3-step meta-training run."""
  path = tmp_path_factory.mktemp("cli") / "tiny_rule"
  proc = _run(
    "meta_train.py", env, f"--workdir={path}", "--noprogress", f"--config.num_meta_steps={STEPS}", *TINY
  )
  assert proc.returncode == 0, proc.stderr
  assert proc.stdout.strip().endswith(f"done: {path}")
  assert "Traceback" not in proc.stderr
  return path


@pytest.mark.slow
def test_meta_train_writes_every_output(workdir):
  assert sorted(os.listdir(workdir)) == [
    "checkpoints",
    "config.json",
    "meta_train.png",
    "metrics.jsonl",
    "tb",
  ]
  with open(workdir / "metrics.jsonl") as f:
    rows = [json.loads(line) for line in f]
  assert [r["meta_step"] for r in rows] == list(range(1, STEPS + 1))
  assert all(np.isfinite(r["meta_loss"]) and r["env_steps"] > 0 for r in rows)
  assert [name.startswith("events.out.tfevents") for name in os.listdir(workdir / "tb")] == [True]
  assert os.path.getsize(workdir / "tb" / os.listdir(workdir / "tb")[0]) > 0
  with open(workdir / "meta_train.png", "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  assert os.listdir(workdir / "checkpoints") == [f"ckpt_{STEPS:06d}.npz"]
  meta = checkpoint.read_metadata(workdir / "checkpoints" / f"ckpt_{STEPS:06d}.npz")
  assert meta["meta_step"] == STEPS and meta["kind"] == "lpg_meta_train"
  with open(workdir / "config.json") as f:
    config = json.load(f)
  assert config["train_envs"] == "chain_short" and config["lpg"]["hidden_size"] == 6
  assert config["num_meta_steps"] == STEPS


# Bad input: case -> (arguments, expected message), each case in a fresh directory. They run
# concurrently in one fixture (each is a Python start-up, ~2 s, and compiles nothing).
BAD_META_TRAIN = {
  "unknown_field": (["--config.nope=1"], "unknown config field(s) nope; valid fields: "),
  "zero_num_envs": (["--config.num_envs=0"], "config.num_envs must be a positive integer, got 0"),
  "zero_hidden": (["--config.lpg.hidden_size=0"], "config.lpg.hidden_size must be a positive integer, got 0"),
  "unparsable": (["--config.num_envs=x"], "flag --config.num_envs=x"),
  "unknown_env": (["--config.train_envs=chain_short,nope"], "unknown environment 'nope'; valid: "),
  "unknown_eval_env": (["--config.eval_envs=nope"], "unknown environment 'nope'; valid: "),
  "no_env": (["--config.train_envs="], "config.train_envs is empty"),
  "extra_argument": (["extra"], "unexpected arguments ['extra']"),
  "corrupt_checkpoint": (TINY, "ckpt_000005.npz: not a valid checkpoint file"),
}
BAD_RULES = {
  "not_npz": (b"garbage", "not a valid checkpoint file (not an .npz archive)"),
  "not_lpg": (None, "is neither an LPG rule file nor a meta-training checkpoint"),
}


@pytest.fixture(scope="module")
def bad_input(tmp_path_factory, env):
  """{case: (process, directory it must leave as it was, snapshot before)}."""
  jobs = {}
  for case, (args, _) in BAD_META_TRAIN.items():
    tmp = tmp_path_factory.mktemp(case)
    workdir = tmp / "run"
    if case == "corrupt_checkpoint":
      (workdir / "checkpoints").mkdir(parents=True)
      (workdir / "checkpoints" / "ckpt_000005.npz").write_bytes(b"not a checkpoint at all")
    jobs[case] = ("meta_train.py", [f"--workdir={workdir}", "--noprogress", *args], workdir)
  for case, (content, _) in BAD_RULES.items():
    tmp = tmp_path_factory.mktemp(case)
    rule = tmp / "rule.npz"
    if content is None:
      checkpoint.save(rule, {"w": np.zeros(3)}, {"kind": "something_else"})
    else:
      rule.write_bytes(content)
    args = [f"--rule={rule},random", "--env=chain_short", f"--out={tmp / 'eval'}"]
    jobs[case] = ("meta_test.py", args, tmp / "eval")
  tmp = tmp_path_factory.mktemp("workdir_is_a_file")
  (tmp / "a_file").write_text("mine")
  args = [f"--workdir={tmp / 'a_file'}", "--noprogress", "--config.num_meta_steps=1", *TINY]
  jobs["workdir_is_a_file"] = ("meta_train.py", args, tmp)
  before = {case: _snapshot(path) if path.exists() else None for case, (_, _, path) in jobs.items()}
  with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
    procs = {case: pool.submit(_run, script, env, *args) for case, (script, args, _) in jobs.items()}
    return {case: (procs[case].result(), jobs[case][2], before[case]) for case in jobs}


@pytest.mark.parametrize("case", list(BAD_META_TRAIN))
def test_meta_train_bad_input_is_one_line_and_writes_nothing(bad_input, case):
  proc, path, before = bad_input[case]
  _assert_one_error_line(proc, "meta_train.py", BAD_META_TRAIN[case][1])
  if before is None:
    assert not path.exists()
  else:  # the corrupt checkpoint is kept, and nothing is added
    assert _snapshot(path) == before


@pytest.mark.parametrize("case", list(BAD_RULES))
def test_meta_test_bad_rule_checkpoint_is_one_line(bad_input, case):
  proc, out, _ = bad_input[case]
  _assert_one_error_line(proc, "meta_test.py", BAD_RULES[case][1])
  assert not out.exists()


def test_workdir_that_is_a_file_is_one_line(bad_input):
  proc, path, before = bad_input["workdir_is_a_file"]
  _assert_one_error_line(proc, "meta_train.py", "a_file")
  assert _snapshot(path) == before


@pytest.mark.slow
@pytest.mark.parametrize(
  "args,expected",
  [
    (["--config.lpg.hidden_size=8"], "was written with another config (fields differ: lpg)"),
    (["--noresume"], "holds checkpoints and --noresume was given"),
  ],
)
def test_refusing_to_resume_is_one_line_and_overwrites_nothing(workdir, env, args, expected):
  before = _snapshot(workdir)
  overridden = args[0].split("=")[0] + "="
  tiny = [a for a in TINY if not a.startswith(overridden)]
  proc = _run("meta_train.py", env, f"--workdir={workdir}", "--noprogress", *tiny, *args)
  _assert_one_error_line(proc, "meta_train.py", expected)
  assert _snapshot(workdir) == before


@pytest.mark.slow
def test_meta_test_compares_the_learned_rule_with_controls(workdir, env, tmp_path):
  out = tmp_path / "eval"
  proc = _run(
    "meta_test.py",
    env,
    f"--rule={workdir},lpg_init,random",
    "--env=chain_short",
    "--seeds=1",
    "--env_steps=120",
    "--config.num_envs=2",
    "--config.unroll_length=3",
    "--config.actor_critic.y_size=3",
    "--config.num_curve_points=2",
    f"--out={out}",
  )
  assert proc.returncode == 0, proc.stderr
  header = next(line for line in proc.stdout.splitlines() if line.startswith("env "))
  assert header.split() == ["env", "tiny_rule", "lpg_init", "random"]
  row = next(line for line in proc.stdout.splitlines() if line.startswith("chain_short "))
  assert len(row.split("±")) == 4  # one "mean ± std" cell per rule
  with open(out / "summary.txt") as f:
    assert header in f.read()


def test_exported_rule_loads_as_pretrained_with_its_provenance(workdir, tmp_path, monkeypatch):
  from inner_agents.rules import registry
  from lpg import export_rule, rule_io

  out = tmp_path / "pretrained"
  assert export_rule.main([str(workdir), "--name=tiny", f"--dir={out}"]) == 0
  assert sorted(os.listdir(out / "tiny")) == ["config.json", "meta_train.png", "metrics.jsonl"]
  meta = checkpoint.read_metadata(out / "tiny.npz")
  assert meta["kind"] == "lpg_rule" and meta["name"] == "tiny"
  assert meta["network"] == {"hidden_size": 6, "phi_size": 4, "y_size": 3}
  assert meta["meta_steps"] == STEPS and meta["env_steps"] > 0 and meta["wall_time_s"] > 0
  assert meta["train_envs"] == ["chain_short"] and meta["meta_train_config"]["num_envs"] == 2
  assert meta["code_version"] and "(at export)" not in meta["code_version"]  # from the run
  monkeypatch.setattr(rule_io, "PRETRAINED_DIR", str(out))
  rule, eta = registry.resolve("pretrained:tiny")
  _, want = registry.resolve(str(workdir))
  assert rule.name == "tiny" and rule.config.hidden_size == 6
  for x, y in zip(jax.tree.leaves(eta), jax.tree.leaves(want)):
    np.testing.assert_array_equal(x, y)
  with pytest.raises(rule_io.RuleLoadError, match=r"no pretrained rule 'nope'; shipped: pretrained:tiny"):
    registry.resolve("pretrained:nope")
  # The report reads the same provenance from the rule file and from the workdir.
  from lpg import report

  for spec in ("pretrained:tiny", str(workdir)):
    assert report.rule_metadata(spec)["train_envs"] == ["chain_short"]
    assert report.rule_metadata(spec)["meta_steps"] == STEPS


def test_every_shipped_rule_loads():
  from inner_agents.rules import registry
  from lpg import rule_io

  names = rule_io.pretrained_names()
  assert names, "the package ships at least one rule"
  for name in names:
    rule, eta = registry.resolve(f"pretrained:{name}")
    meta = checkpoint.read_metadata(rule_io.pretrained_path(name))
    assert rule.name == name and meta["meta_steps"] > 0 and meta["code_version"]
    assert jax.tree.leaves(eta)
