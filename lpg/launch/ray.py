"""The Ray launcher: the program's nodes as actors on a Ray cluster.

  * N population-worker actors, each owning shard i of N of the lifetimes
    (`MetaGradient.shard`: contiguous near-equal slices across the training envs, vmapped
    inside one jitted step). A worker's lifetimes never leave it except for checkpoints.
  * A meta-learner actor: owns eta, its Adam state and the per-env bandits; sends eta (one
    flat float32 array) and the bandits to the workers, receives each shard's summed
    meta-gradient (one flat array), bandit reports and metric sums.
  * An evaluator actor: trains fresh agents with a frozen eta on the held-out envs, in the
    background of meta-training.
The driver (meta_train.py) runs `lpg.launch.driver.drive`: metrics, progress, checkpoints and
resume are the local launcher's, files are written on the driver's machine, and a
checkpoint has the local layout (a run can move between launchers).

Modes (config.ray_mode):
  * sync (default): every meta-step averages all shards' meta-gradients, exactly the local
    computation split across processes; with the same seed and config it gives the local
    launcher's eta up to float summation order (tests/test_ray_launcher.py).
  * async: the learner applies each shard's mean meta-gradient as soon as it arrives, then
    sends that worker the new eta; a gradient computed with an eta more than
    config.max_staleness updates old is dropped (its bandit reports are kept). A meta-step is
    one shard's update, and a checkpoint drops in-flight gradients (at most one per worker).

Fault tolerance: a worker actor that dies is restarted by Ray (up to
config.ray_max_restarts times) and reloads its shard from the last checkpoint (or
re-initialises it, before the first), and the step is retried. A worker that raises, a wait
longer than config.ray_timeout_s, or a dead meta-learner ends the run with one error line;
the last checkpoint is intact, and re-running the command resumes from it.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
import warnings
from typing import Any

import jax
import ml_collections
import numpy as np
from jax.flatten_util import ravel_pytree

from harness import evaluation
from lpg import meta_learner
from lpg import program as program_lib
from lpg.launch import driver

# Env vars of every actor process: JAX must not grab a GPU's memory per process.
ACTOR_ENV = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}


class RayLaunchError(RuntimeError):
  """The cluster cannot be reached or lacks resources, or an actor failed or timed out."""


def _ray():
  try:
    import ray
  except ImportError as e:  # pragma: no cover - ray is in the [ray] and [dev] extras
    raise RayLaunchError("--launcher=ray needs ray: pip install -e '.[ray]'") from e
  return ray


def _to_numpy(tree: Any) -> Any:
  return jax.tree.map(np.asarray, jax.device_get(tree))


def _program(config_json: str) -> program_lib.Program:
  """The program, rebuilt in an actor's process from the driver's config."""
  return program_lib.build(ml_collections.ConfigDict(json.loads(config_json)))


def _flat_eta(prog: program_lib.Program):
  """(ravel, unravel) between eta and one flat float32 array."""
  template = jax.eval_shape(prog.learner.rule.init_meta_params, jax.random.PRNGKey(0))
  zeros = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), template)
  _, unravel = ravel_pytree(zeros)
  return (lambda tree: np.asarray(ravel_pytree(tree)[0])), unravel


class PopulationWorkerActor:
  """A population-worker node: shard `index` of `count` of the lifetimes."""

  def __init__(self, config_json: str, index: int, count: int):
    prog = _program(config_json)
    self._worker = prog.worker.shard(index, count)
    self._worker_key = prog.keys(jax.random.PRNGKey(prog.config.seed))[1]
    self._ravel, self._unravel = _flat_eta(prog)
    self._step = jax.jit(self._worker.step)
    self._lifetimes = None

  def init(self) -> None:
    """This shard's initial lifetimes, as a whole-population init draws them."""
    self._lifetimes = jax.jit(self._worker.init)(self._worker_key)

  def load(self, lifetimes: Any) -> None:
    self._lifetimes = jax.device_put(lifetimes)

  def lifetimes(self) -> Any:
    return _to_numpy(self._lifetimes)

  def step(self, eta_flat: np.ndarray, bandits: Any) -> tuple[np.ndarray, Any, dict[str, np.ndarray]]:
    """(summed meta-gradient as a flat array, bandit reports, metric sums)."""
    output, self._lifetimes = self._step(self._unravel(eta_flat), bandits, self._lifetimes)
    return self._ravel(output.grads), _to_numpy(output.reports), _to_numpy(output.sums)

  def pid(self) -> int:
    return os.getpid()


class EvaluatorActor:
  """The evaluator node: fresh agents trained with a frozen eta on the held-out envs."""

  def __init__(self, config_json: str):
    self._evaluator = _program(config_json).evaluator

  def evaluate(self, eta: Any) -> list[evaluation.EvalResult]:
    return self._evaluator.evaluate(eta)


class MetaLearnerActor:
  """The meta-learner node: eta, its optimiser and the bandits; drives the workers."""

  def __init__(self, config_json: str, workers: list[Any]):
    self._ray = _ray()
    prog = _program(config_json)
    self._config = prog.config
    self._node = prog.learner
    self._workers = workers
    self._shards = [prog.worker.shard(i, len(workers)) for i in range(len(workers))]
    self._ravel, self._unravel = _flat_eta(prog)
    self._learner_key = prog.keys(jax.random.PRNGKey(prog.config.seed))[0]
    self._restarts = [0] * len(workers)
    self._restore: list[Any] = [None] * len(workers)  # object refs of each shard's last checkpoint
    self._timeout = float(prog.config.ray_timeout_s)
    self._apply: dict[tuple[int, ...], Any] = {}
    self._state = self._bandits = None
    self._version = 0
    self._inflight: dict[Any, tuple[int, int]] = {}  # async: ref -> (worker, eta version)
    self._ready: list[tuple[int, int, Any]] = []  # async: outputs drained by a snapshot
    self._traffic = {"to_workers": 0, "from_workers": 0}

  # -- state
  def start(self, state: dict[str, Any] | None) -> None:
    if state is None:
      self._state = self._node.init(self._learner_key)
      self._bandits = _to_numpy(self._shards[0].meta_gradient.init_bandits())
      self._wait_all(lambda i: self._workers[i].init.remote(), "initialise its shard")
    else:
      self._state, self._bandits = jax.device_put(state["learner"]), state["bandits"]
      self._restore = [
        self._ray.put(meta_learner.slice_lifetimes(state["lifetimes"], s.parts)) for s in self._shards
      ]
      self._wait_all(lambda i: self._workers[i].load.remote(self._restore[i]), "load its shard")

  def snapshot(self) -> dict[str, Any]:
    """The whole state in the local layout; the shards are also kept to restore a worker."""
    while self._inflight:  # async: let the workers finish, keep their outputs for later
      i, version, output = self._next_output()
      self._ready.append((i, version, output))
    refs = [None] * len(self._workers)

    def fetch(i):
      refs[i] = self._workers[i].lifetimes.remote()
      return refs[i]

    shards = self._wait_all(fetch, "send its shard")
    self._restore = refs  # owned here: they outlive a worker that dies later
    lifetimes = meta_learner.merge_lifetimes(shards, [s.parts for s in self._shards], self._node.num_envs)
    return {"learner": _to_numpy(self._state), "bandits": self._bandits, "lifetimes": lifetimes}

  def eta(self) -> Any:
    return _to_numpy(self._state.eta)

  # -- steps
  def step(self) -> driver.StepInfo:
    if self._config.ray_mode == "sync":
      return self._sync_step()
    return self._async_step()

  def _sync_step(self) -> driver.StepInfo:
    eta_flat = self._ravel(self._state.eta)
    eta, bandits = self._ray.put(eta_flat), self._ray.put(self._bandits)
    refs = [w.step.remote(eta, bandits) for w in self._workers]
    outputs = []
    for i, ref in enumerate(refs):
      while True:
        try:
          outputs.append(self._get(ref, i, "finish its meta-step"))
          break
        except self._ray.exceptions.RayActorError:
          self._recover(i)
          ref = self._workers[i].step.remote(eta, bandits)
    self._traffic = {
      "to_workers": len(self._workers) * (eta_flat.nbytes + _nbytes(self._bandits)),
      "from_workers": _nbytes(outputs),
    }
    workers = tuple(range(len(self._workers)))
    self._state, self._bandits, metrics, norm = self._learn(workers, self._state, outputs)
    env_steps = sum(s.steps_per_meta_step() for s in self._shards)
    return driver.StepInfo(_to_numpy(metrics._asdict()), float(norm), env_steps, int(self._state.skipped))

  def _async_step(self) -> driver.StepInfo:
    busy = {i for i, _ in self._inflight.values()} | {i for i, _, _ in self._ready}
    for i in range(len(self._workers)):
      if i not in busy:
        self._submit(i)
    i, version, output = self._ready.pop(0) if self._ready else self._next_output()
    state, self._bandits, metrics, norm = self._learn((i,), self._state, [output])
    stale = self._version - version > self._config.max_staleness
    if not stale:
      self._state = state
      self._version += 1
    self._submit(i)
    metrics = {**_to_numpy(metrics._asdict()), "stale_dropped": float(stale)}
    return driver.StepInfo(
      metrics, float(norm), self._shards[i].steps_per_meta_step(), int(self._state.skipped)
    )

  def _submit(self, i: int) -> None:
    eta = self._ravel(self._state.eta)
    self._inflight[self._workers[i].step.remote(eta, self._bandits)] = (i, self._version)

  def _next_output(self) -> tuple[int, int, Any]:
    """Async: the first (worker, eta version, output) to arrive; restarts dead workers."""
    while True:
      ready, _ = self._ray.wait(list(self._inflight), num_returns=1, timeout=self._timeout)
      if not ready:
        raise RayLaunchError(
          f"no worker finished a meta-step within config.ray_timeout_s={self._timeout:g} s"
        )
      i, version = self._inflight.pop(ready[0])
      try:
        return i, version, self._get(ready[0], i, "finish its meta-step")
      except self._ray.exceptions.RayActorError:
        self._recover(i)
        self._submit(i)

  def _learn(self, workers: tuple[int, ...], state: Any, outputs: list[Any]):
    """Jitted combine + Adam step + bandit updates for outputs from `workers` (one compile each)."""
    if workers not in self._apply:
      parts = [self._shards[i].parts for i in workers]
      self._apply[workers] = jax.jit(lambda st, b, outs: self._node.apply(st, b, outs, parts))
    outs = [meta_learner.WorkerOutput(self._unravel(g), r, s) for g, r, s in outputs]
    return self._apply[workers](state, self._bandits, outs)

  # -- waiting and failures
  def _get(self, ref: Any, i: int, what: str) -> Any:
    ray = self._ray
    try:
      return ray.get(ref, timeout=self._timeout)
    except ray.exceptions.GetTimeoutError:
      raise RayLaunchError(
        f"worker {i} did not {what} within config.ray_timeout_s={self._timeout:g} s"
      ) from None
    except ray.exceptions.RayTaskError as e:
      raise RayLaunchError(f"worker {i} raised {_cause(e)}") from None

  def _wait_all(self, call: Any, what: str) -> list[Any]:
    """[ray.get(call(i))] for every worker i; a worker that died is called again once restarted."""
    refs = [call(i) for i in range(len(self._workers))]
    out = []
    for i, ref in enumerate(refs):
      while True:
        try:
          out.append(self._get(ref, i, what))
          break
        except self._ray.exceptions.RayActorError:
          self._recover(i, reload=False)
          ref = call(i)
    return out

  def _recover(self, i: int, reload: bool = True) -> None:
    """Worker i died and Ray restarts it: wait for it, give it back its shard (the last
    checkpoint's, or its initial one before the first checkpoint)."""
    ray = self._ray
    self._restarts[i] += 1
    if self._restarts[i] > self._config.ray_max_restarts:
      raise RayLaunchError(
        f"worker {i} died {self._restarts[i]} times (config.ray_max_restarts={self._config.ray_max_restarts})"
      )
    worker, deadline = self._workers[i], time.time() + self._timeout
    while True:  # calls fail with ActorUnavailableError until the restarted actor is up
      try:
        ray.get(worker.pid.remote(), timeout=max(deadline - time.time(), 0.1))
        break
      except ray.exceptions.ActorUnavailableError:
        if time.time() > deadline:
          raise RayLaunchError(f"worker {i} did not come back within {self._timeout:g} s") from None
        time.sleep(0.2)
      except (ray.exceptions.ActorDiedError, ray.exceptions.GetTimeoutError):
        raise RayLaunchError(f"worker {i} died and could not be restarted") from None
    if reload:
      ref = worker.init.remote() if self._restore[i] is None else worker.load.remote(self._restore[i])
      self._get(ref, i, "restore its shard after a restart")

  def restarts(self) -> list[int]:
    return list(self._restarts)

  def traffic(self) -> dict[str, int]:
    """Bytes of arrays sent to and received from the workers in the last sync meta-step."""
    return dict(self._traffic)


def _nbytes(tree: Any) -> int:
  return sum(np.asarray(x).nbytes for x in jax.tree.leaves(tree))


def _cause(e: Exception) -> str:
  cause = getattr(e, "cause", None) or e
  text = f"{type(cause).__name__}: {cause}".strip().splitlines()
  return text[0] if text else type(cause).__name__


def _check_address(address: str) -> None:
  """Fails fast (one line) when host:port of a ray:// or GCS address does not answer."""
  if address == "auto":
    return
  hostport = address.removeprefix("ray://")
  host, _, port = hostport.rpartition(":")
  if not host or not port.isdigit():
    raise RayLaunchError(f"--ray_address={address}: expected auto, HOST:PORT or ray://HOST:PORT")
  try:
    socket.create_connection((host, int(port)), timeout=5).close()
  except OSError as e:
    raise RayLaunchError(f"cannot reach the Ray cluster at --ray_address={address}: {e}") from None


class RayBackend:
  """The driver's side: connects to (or starts) a cluster and places the nodes on it."""

  def __init__(
    self,
    program: program_lib.Program,
    address: str | None = None,
    worker_class: type[PopulationWorkerActor] = PopulationWorkerActor,
  ):
    """worker_class: the population-worker node (tests pass one that fails on purpose)."""
    config = program.config
    total = sum(p.num_lifetimes for p in program.worker.meta_gradient.populations)
    if config.num_workers > total:
      raise program_lib.ConfigError(
        f"config.num_workers={config.num_workers} is more than the {total} lifetimes to share "
        f"(config.lifetimes_per_env x training envs)"
      )
    self._ray = ray = _ray()
    self._program = program
    self._timeout = float(config.ray_timeout_s)
    need = config.num_workers * config.ray_cpus_per_worker
    self._owns_cluster = False
    if not ray.is_initialized():
      # ray.init forks and execs its daemons: JAX's warning about fork is moot here.
      warnings.filterwarnings("ignore", message="os.fork", category=RuntimeWarning)
      runtime_env = {"env_vars": {**ACTOR_ENV, "PYTHONPATH": _pythonpath()}}
      if address is None:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        ray.init(
          num_cpus=max(os.cpu_count() or 1, math.ceil(need)),
          include_dashboard=False,
          log_to_driver=False,
          logging_level="warning",
          runtime_env=runtime_env,
        )
        self._owns_cluster = True
      else:
        _check_address(address)
        try:
          ray.init(address=address, log_to_driver=False, logging_level="warning", runtime_env=runtime_env)
        except (ConnectionError, RuntimeError, ValueError) as e:
          raise RayLaunchError(f"cannot join the Ray cluster at --ray_address={address}: {e}") from None
    have = ray.cluster_resources().get("CPU", 0)
    if have < need:
      self.close()
      raise RayLaunchError(
        f"the Ray cluster has {have:g} CPUs; {config.num_workers} workers x "
        f"config.ray_cpus_per_worker={config.ray_cpus_per_worker:g} need {need:g}"
      )
    config_json = config.to_json()
    worker_cls = ray.remote(max_restarts=config.ray_max_restarts, max_task_retries=0)(worker_class)
    self.workers = [
      worker_cls.options(num_cpus=config.ray_cpus_per_worker).remote(config_json, i, config.num_workers)
      for i in range(config.num_workers)
    ]
    learner_cls = ray.remote(max_restarts=0)(MetaLearnerActor)
    self.learner = learner_cls.options(num_cpus=0).remote(config_json, self.workers)
    self.evaluator = None
    if program.evaluator.envs:
      self.evaluator = ray.remote(EvaluatorActor).options(num_cpus=0).remote(config_json)
    self._evals: list[tuple[int, Any]] = []

  def _call(self, ref: Any, what: str) -> Any:
    """ray.get on the learner or evaluator, with every failure as one RayLaunchError."""
    ray = self._ray
    # The learner waits on workers with its own timeouts (and may restart one): allow for both.
    try:
      return ray.get(ref, timeout=3 * self._timeout)
    except ray.exceptions.GetTimeoutError:
      raise RayLaunchError(f"the {what} did not answer within {3 * self._timeout:g} s") from None
    except ray.exceptions.RayTaskError as e:  # it raised (first: such errors may also be actor errors)
      cause = getattr(e, "cause", None)
      if isinstance(cause, RayLaunchError | program_lib.ConfigError):
        raise RayLaunchError(str(cause)) from None
      raise RayLaunchError(f"the {what} raised {_cause(e)}") from None
    except ray.exceptions.RayActorError as e:
      raise RayLaunchError(
        f"the {what} actor died ({_cause(e)}); re-run the same command to resume from the last checkpoint"
      ) from None

  def start(self, state: dict[str, Any] | None) -> None:
    self._call(self.learner.start.remote(None if state is None else _to_numpy(state)), "meta-learner")

  def step(self) -> driver.StepInfo:
    return self._call(self.learner.step.remote(), "meta-learner")

  def snapshot(self) -> dict[str, Any]:
    return self._call(self.learner.snapshot.remote(), "meta-learner")

  def evaluate(self, step: int) -> None:
    self._evals.append((step, self.evaluator.evaluate.remote(self.learner.eta.remote())))

  def finished_evaluations(self, wait: bool) -> list[tuple[int, list[evaluation.EvalResult]]]:
    done, pending = [], []
    for step, ref in self._evals:
      if wait or self._ray.wait([ref], timeout=0)[0]:
        done.append((step, self._call(ref, "evaluator")))
      else:
        pending.append((step, ref))
    self._evals = pending
    return done

  def restarts(self) -> list[int]:
    return self._call(self.learner.restarts.remote(), "meta-learner")

  def traffic(self) -> dict[str, int]:
    return self._call(self.learner.traffic.remote(), "meta-learner")

  def close(self) -> None:
    ray = self._ray
    for actor in [
      getattr(self, "learner", None),
      getattr(self, "evaluator", None),
      *getattr(self, "workers", []),
    ]:
      if actor is not None:
        ray.kill(actor, no_restart=True)
    if self._owns_cluster:
      ray.shutdown()


def _pythonpath() -> str:
  """This checkout first, so actors import the same code as the driver."""
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  return os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)


def run(program: program_lib.Program, workdir: str, progress: bool = True, address: str | None = None):
  """Runs (or resumes) meta-training on a Ray cluster; returns the final state.

  address: None starts a local cluster (and stops it at the end); 'auto', 'HOST:PORT' or
  'ray://HOST:PORT' joins a running one.
  """
  backend = RayBackend(program, address)
  try:
    return driver.drive(program, backend, workdir, progress)
  finally:
    backend.close()
