"""The Ray launcher on a local cluster (num_cpus=2, started and shut down here).

* sync mode with 2 workers gives the local launcher's eta (float tolerance below) and the
  same lifetimes, bandits and metrics;
* a worker killed mid-run is restarted, reloads its shard and the run completes;
* async mode applies shards' gradients one at a time and drops stale ones;
* a run moves between launchers through its checkpoint;
* a worker that raises ends the run with one error, the last checkpoint intact;
* meta_train.py --launcher=ray end to end, and its bad input (an unreachable address, more
  workers than lifetimes) as one error line.
"""

import os
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
import ray
from test_meta_train_cli import TINY
from test_meta_train_resume import _leaves, tiny_config

from harness import checkpoint
from lpg import metrics, program
from lpg.launch import driver, local
from lpg.launch import ray as ray_launch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")
N = 4
# eta after N Adam steps: only the order of float sums differs between the launchers (per
# shard, then across shards), which moves eta by ~1e-7 per step.
ATOL, RTOL = 1e-5, 1e-5


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
  cache = tmp_path_factory.getbasetemp() / "lpg_jax_cache"
  cache.mkdir(exist_ok=True)
  lockstep = tmp_path_factory.mktemp("lockstep")
  os.environ.setdefault("RAY_AUTH_MODE", "disabled")
  env_vars = {
    **ray_launch.ACTOR_ENV,
    "PYTHONPATH": os.pathsep.join([ROOT, TESTS]),  # actors import tests/ray_faults.py
    "JAX_PLATFORMS": "cpu",
    "JAX_COMPILATION_CACHE_DIR": str(cache),  # a restarted worker reuses its compiled step
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "1",
    "LPG_TEST_LOCKSTEP_DIR": str(lockstep),  # ray_faults.LockstepWorker's signal files
  }
  ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env_vars})
  yield
  ray.shutdown()


def _assert_close(a, b):
  """Floats to the stated tolerance; ints, bools and keys exactly (same lifetimes, arms, ends)."""
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(_leaves(a), _leaves(b)):
    if np.issubdtype(x.dtype, np.floating):
      np.testing.assert_allclose(x, y, rtol=RTOL, atol=ATOL)
    else:
      np.testing.assert_array_equal(x, y)


def _ray_run(workdir, worker_class=ray_launch.PopulationWorkerActor, on_step=None, **overrides):
  prog = program.build(tiny_config(**overrides))
  backend = ray_launch.RayBackend(prog, worker_class=worker_class)
  try:
    state = driver.drive(prog, backend, str(workdir), progress=False, on_step=on_step)
    return state, backend.restarts()
  finally:
    backend.close()


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("local")
  return workdir, local.run(program.build(tiny_config()), str(workdir), progress=False)


def test_sync_mode_gives_the_local_eta(cluster, local_run, tmp_path):
  local_dir, want = local_run
  got, restarts = _ray_run(tmp_path, num_workers=2)
  assert restarts == [0, 0]
  _assert_close(want["learner"].eta, got["learner"].eta)
  _assert_close(want, got)  # optimiser, bandits, every lifetime
  assert int(got["learner"].step) == N
  rows_l = metrics.read_jsonl(os.path.join(local_dir, "metrics.jsonl"))
  rows_r = metrics.read_jsonl(os.path.join(tmp_path, "metrics.jsonl"))
  assert [r["meta_step"] for r in rows_r] == list(range(1, N + 1))
  assert sum(r["lifetimes_ended"] for r in rows_r) > 0  # restarts went through the bandit
  for rl, rr in zip(rows_l, rows_r):
    assert rl["env_steps"] == rr["env_steps"]
    np.testing.assert_allclose(rl["meta_loss"], rr["meta_loss"], rtol=1e-4, atol=1e-6)


def test_a_killed_worker_restarts_and_the_run_completes(cluster, tmp_path):
  backend = {}

  def kill_worker_0(step):
    if step == 2:
      ray.kill(backend["b"].workers[0], no_restart=False)  # the process dies; Ray restarts it

  prog = program.build(tiny_config(num_workers=2, checkpoint_every_s=0.0))
  backend["b"] = ray_launch.RayBackend(prog)
  try:
    state = driver.drive(prog, backend["b"], str(tmp_path), progress=False, on_step=kill_worker_0)
    restarts = backend["b"].restarts()
  finally:
    backend["b"].close()
  assert restarts == [1, 0]
  assert int(state["learner"].step) == N and int(state["learner"].skipped) == 0
  assert checkpoint.steps(driver.checkpoint_dir(str(tmp_path)))[-1] == N
  rows = metrics.read_jsonl(os.path.join(tmp_path, "metrics.jsonl"))
  assert [r["meta_step"] for r in rows] == list(range(1, N + 1))
  assert all(np.isfinite(r["meta_loss"]) for r in rows)


def test_async_mode_drops_stale_gradients(cluster, tmp_path):
  from ray_faults import LockstepWorker

  # Both shards start each round on the same eta and the round's outputs all arrive before the
  # next round's: with max_staleness=0 the first is applied and the second is dropped.
  state, _ = _ray_run(tmp_path, worker_class=LockstepWorker, num_workers=2, ray_mode="async", max_staleness=0)
  rows = metrics.read_jsonl(os.path.join(tmp_path, "metrics.jsonl"))
  assert [r["meta_step"] for r in rows] == list(range(1, N + 1))
  assert [r["stale_dropped"] for r in rows] == [0.0, 1.0] * (N // 2)
  assert int(state["learner"].step) == N // 2
  # A meta-step is one shard's update: one lifetime's env steps here.
  assert rows[-1]["env_steps"] == N * program.build(tiny_config()).steps_per_meta_step() // 2


def test_a_run_moves_between_launchers(cluster, local_run, tmp_path):
  _, want = local_run
  local.run(program.build(tiny_config(num_meta_steps=N // 2)), str(tmp_path), progress=False)
  got, _ = _ray_run(tmp_path, num_workers=2)  # resumes at N / 2 on Ray
  _assert_close(want, got)


def test_a_worker_that_raises_is_one_error_and_the_checkpoint_survives(cluster, tmp_path):
  from ray_faults import RaisingWorker

  with pytest.raises(ray_launch.RayLaunchError, match=r"^worker 0 raised ValueError: injected failure$"):
    _ray_run(tmp_path, worker_class=RaisingWorker, num_workers=2, checkpoint_every_s=0.0)
  ckpt = checkpoint.latest(driver.checkpoint_dir(str(tmp_path)))
  assert checkpoint.read_metadata(ckpt)["meta_step"] == 2
  prog = program.build(tiny_config())
  state, _ = driver.restore(prog, str(tmp_path))
  assert int(state["learner"].step) == 2


def test_a_dead_meta_learner_ends_the_run_and_rerunning_resumes(cluster, local_run, tmp_path):
  _, want = local_run
  backend = {}

  def kill_learner(step):
    if step == N // 2:  # after its checkpoint (checkpoint_every_s=0: one per meta-step)
      ray.kill(backend["b"].learner, no_restart=True)

  prog = program.build(tiny_config(num_workers=2, checkpoint_every_s=0.0))
  backend["b"] = ray_launch.RayBackend(prog)
  try:
    with pytest.raises(ray_launch.RayLaunchError, match=r"the meta-learner actor died .* resume"):
      driver.drive(prog, backend["b"], str(tmp_path), progress=False, on_step=kill_learner)
  finally:
    backend["b"].close()
  got, _ = _ray_run(tmp_path, num_workers=2, checkpoint_every_s=0.0)  # the same command again
  _assert_close(want, got)


def test_a_hung_worker_times_out(cluster, tmp_path):
  from ray_faults import HangingWorker

  t = time.time()
  with pytest.raises(
    ray_launch.RayLaunchError,
    match=r"^worker 0 did not finish its meta-step within config.ray_timeout_s=15 s$",
  ):
    _ray_run(tmp_path, worker_class=HangingWorker, num_workers=2, ray_timeout_s=15.0)
  assert time.time() - t < 60


def _cli(tmp_path, *args):
  env = dict(os.environ, JAX_PLATFORMS="cpu", RAY_AUTH_MODE="disabled")
  t = time.time()
  proc = subprocess.run(
    [sys.executable, os.path.join(ROOT, "meta_train.py"), "--launcher=ray", "--noprogress",
     f"--workdir={tmp_path / 'run'}", *TINY, f"--config.num_meta_steps={N}", *args],
    capture_output=True, text=True, timeout=600, env=env, cwd=ROOT,
  )  # fmt: skip
  return proc, time.time() - t


@pytest.mark.slow
def test_meta_train_cli_on_its_own_ray_cluster(tmp_path):
  proc, _ = _cli(tmp_path, "--config.num_workers=2")
  assert proc.returncode == 0, proc.stderr[-2000:]
  rows = metrics.read_jsonl(str(tmp_path / "run" / "metrics.jsonl"))
  assert [r["meta_step"] for r in rows][-1] == N
  assert checkpoint.latest(str(tmp_path / "run" / "checkpoints")) is not None


@pytest.mark.parametrize(
  "args, message",
  [
    (["--ray_address=127.0.0.1:1"], "cannot reach the Ray cluster at --ray_address=127.0.0.1:1"),
    (["--config.num_workers=3"], "config.num_workers=3 is more than the 2 lifetimes"),
  ],
)
def test_cli_bad_input_is_one_line(tmp_path, args, message):
  proc, seconds = _cli(tmp_path, *args)
  assert proc.returncode != 0
  lines = [line for line in proc.stderr.splitlines() if line.strip()]
  assert len(lines) == 1 and message in lines[0], proc.stderr[-2000:]
  assert seconds < 60  # no hang
  assert not os.path.exists(tmp_path / "run" / "checkpoints")
