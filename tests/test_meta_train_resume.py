"""Meta-training through the local launcher: bit-identical runs for a seed, checkpoint and
resume, metrics without duplicates, and refusing to resume with another config.

Runs (tiny program, chain_short, N = 4 meta-steps, lifetimes that end and restart):
  A: 4 steps.   B: 2 steps, a crash's stale metrics row, then resumed to 4.   C: 4 steps.
Every run builds its own program and jits its own meta-step (as `meta_train.py` does);
the module shares XLA executables between them through a persistent compilation cache
(a cache hit needs the traced computation to be identical), so only run A compiles.
"""

import json
import os

import jax
import numpy as np
import pytest

from harness import checkpoint
from lpg import metrics, program
from lpg.configs import meta_train as meta_train_config
from lpg.launch import local

N = 4


def tiny_config(**overrides):
  c = meta_train_config.get_config()
  c.unlock()
  c.update(
    dict(
      train_envs="chain_short",
      eval_envs="",
      lifetimes_per_env=2,
      num_envs=2,
      unroll_length=3,
      num_inner_updates=2,
      lifetime_steps=30,  # 18 env steps per meta-step: lifetimes end and restart
      num_meta_steps=N,
      log_every=1,
      checkpoint_every_s=1e9,  # only the final checkpoint: deterministic files
      keep_checkpoints=2,
    )
  )
  c.lpg.hidden_size = 6
  c.lpg.phi_size = 4
  c.lpg.y_size = 3
  c.update(overrides)
  return c


@pytest.fixture(scope="module", autouse=True)
def shared_compilation_cache(tmp_path_factory):
  """A persistent compilation cache while this module runs (the config is restored after)."""
  from jax.experimental.compilation_cache import compilation_cache as cc

  names = (
    "jax_compilation_cache_dir",
    "jax_persistent_cache_min_compile_time_secs",
    "jax_persistent_cache_min_entry_size_bytes",
  )
  saved = {name: getattr(jax.config, name) for name in names}
  cc.reset_cache()
  cache = tmp_path_factory.getbasetemp() / "lpg_jax_cache"  # shared with test_meta_train_cli
  cache.mkdir(exist_ok=True)
  jax.config.update("jax_compilation_cache_dir", str(cache))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)  # the meta-step only
  yield
  for name, value in saved.items():
    jax.config.update(name, value)
  cc.reset_cache()


def _run(workdir, **overrides):
  return local.run(program.build(tiny_config(**overrides)), str(workdir), progress=False)


def _leaves(tree):
  return [
    np.asarray(jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x)
    for x in jax.tree.leaves(tree)
  ]


def _assert_bit_identical(a, b):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(_leaves(a), _leaves(b)):
    assert x.dtype == y.dtype and x.shape == y.shape
    np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  root = tmp_path_factory.mktemp("meta_train")
  a = _run(root / "a")
  _run(root / "b", num_meta_steps=N // 2)
  # A crash after logging step 3 but before its checkpoint leaves a stale row behind.
  with open(root / "b" / "metrics.jsonl", "a") as f:
    f.write(json.dumps({"meta_step": 3, "meta_loss": 123.0}) + "\n")
  b = _run(root / "b")
  c = _run(root / "c")
  return {"root": root, "a": a, "b": b, "c": c}


def _rows(workdir):
  return metrics.read_jsonl(os.path.join(workdir, "metrics.jsonl"))


def test_fixed_seed_gives_bit_identical_runs(runs):
  _assert_bit_identical(runs["a"]["learner"].eta, runs["c"]["learner"].eta)
  _assert_bit_identical(runs["a"], runs["c"])
  learner = runs["a"]["learner"]
  assert int(learner.step) == N and int(learner.skipped) == 0
  initial = program.build(tiny_config()).init(jax.random.PRNGKey(0))["learner"].eta
  assert any(not np.array_equal(x, y) for x, y in zip(_leaves(initial), _leaves(learner.eta)))


def test_resumed_run_is_bit_identical_to_an_uninterrupted_one(runs):
  _assert_bit_identical(runs["a"]["learner"].eta, runs["b"]["learner"].eta)
  _assert_bit_identical(runs["a"], runs["b"])  # optimiser, lifetimes, bandits, keys
  # Lifetimes did end and restart within the run (the bandit and restarts are resumed too).
  assert sum(r["lifetimes_ended"] for r in _rows(runs["root"] / "a")) > 0
  assert int(np.asarray(runs["a"]["bandits"][0].count).sum()) > 0


def test_metrics_have_one_row_per_step_after_resume(runs):
  rows_a, rows_b = _rows(runs["root"] / "a"), _rows(runs["root"] / "b")
  assert [r["meta_step"] for r in rows_a] == list(range(1, N + 1))
  assert [r["meta_step"] for r in rows_b] == list(range(1, N + 1))
  for ra, rb in zip(rows_a, rows_b):
    ra.pop("wall_time_s"), rb.pop("wall_time_s")
    assert ra == rb
  assert rows_b[2]["meta_loss"] != 123.0  # the stale row was replaced


def test_checkpoint_round_trip_is_exact(runs, tmp_path):
  prog = program.build(tiny_config())
  path = checkpoint.latest(local.checkpoint_dir(str(runs["root"] / "a")))
  assert os.path.basename(path) == f"ckpt_{N:06d}.npz"
  template = jax.eval_shape(prog.init, jax.random.PRNGKey(0))
  state, meta = checkpoint.load(path, template)
  _assert_bit_identical(state, runs["a"])
  assert meta["meta_step"] == N and meta["kind"] == "lpg_meta_train"
  assert meta["env_steps"] == N * prog.steps_per_meta_step()
  # save -> load of the final state, directly.
  checkpoint.save(tmp_path / "s.npz", runs["a"], {"x": 1})
  again, meta = checkpoint.load(tmp_path / "s.npz", template)
  _assert_bit_identical(again, runs["a"])
  assert meta == {"x": 1}


def _snapshot(workdir):
  out = {}
  for dirpath, _, files in os.walk(workdir):
    for name in files:
      path = os.path.join(dirpath, name)
      with open(path, "rb") as f:
        out[os.path.relpath(path, workdir)] = f.read()
  return out


@pytest.mark.parametrize(
  "override,field", [(dict(lpg_hidden_size=8), "lpg"), (dict(num_inner_updates=3), "num_inner_updates")]
)
def test_resume_with_another_config_raises_and_writes_nothing(runs, override, field):
  workdir = runs["root"] / "a"
  before = _snapshot(workdir)
  config = tiny_config()
  if "lpg_hidden_size" in override:
    config.lpg.hidden_size = override["lpg_hidden_size"]
  else:
    config.update(override)
  with pytest.raises(local.ResumeError, match=f"fields differ: .*{field}"):
    local.run(program.build(config), str(workdir), progress=False)
  assert _snapshot(workdir) == before


def test_rerunning_a_finished_run_changes_nothing(runs):
  workdir = runs["root"] / "c"
  rows = _rows(workdir)
  state = _run(workdir, log_every=2, eval_seeds=5)  # fields that may differ on resume
  _assert_bit_identical(state, runs["c"])
  assert _rows(workdir) == rows
