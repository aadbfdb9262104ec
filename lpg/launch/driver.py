"""The launcher-independent run loop: metrics, progress, checkpoints, resume, evaluation.

A launcher supplies a `Backend` (where the program's nodes run and how a meta-step is
taken); `drive` does the rest identically for all of them. State is checkpointed atomically
every `checkpoint_every_s` seconds and at the end, in one layout for every launcher (a run
started locally can be resumed on Ray and vice versa); re-running with the same workdir
resumes from the latest checkpoint, and a crash loses at most the work since it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import ml_collections
import numpy as np

from harness import checkpoint, evaluation, reporting
from lpg import metrics, rule_io
from lpg.program import Program

# Fields that may differ between a run and its resumption (they do not change the maths).
RESUMABLE_FIELDS = (
  "num_meta_steps",
  "log_every",
  "checkpoint_every_s",
  "keep_checkpoints",
  "eval_every",
  "eval_env_steps",
  "eval_seeds",
  "eval_envs",
  "num_workers",
  "ray_mode",
  "max_staleness",
  "ray_timeout_s",
  "ray_cpus_per_worker",
  "ray_max_restarts",
)


class ResumeError(ValueError):
  """A workdir whose checkpoint cannot be resumed with this config."""


class StepInfo(NamedTuple):
  """What one backend step reports: metric scalars, the meta-gradient norm, the env steps
  it took and the learner's count of skipped (non-finite) meta-gradients."""

  metrics: dict[str, Any]
  grad_norm: Any
  env_steps: int
  skipped: Any


class Backend(Protocol):
  """Where a program's nodes run. `drive` calls start once, then step/snapshot/evaluate."""

  def start(self, state: dict[str, Any] | None) -> None:
    """Fresh nodes (state None: initialised from config.seed) or a restored whole state."""

  def step(self) -> StepInfo:
    """One meta-learner update."""

  def snapshot(self) -> dict[str, Any]:
    """The whole state, in `Program.init`'s layout (for checkpoints)."""

  def evaluate(self, step: int) -> None:
    """Starts an evaluation of the current eta (may run in the background)."""

  def finished_evaluations(self, wait: bool) -> list[tuple[int, list[evaluation.EvalResult]]]:
    """Evaluations done since the last call, as (meta-step, results); `wait` for all."""

  def close(self) -> None: ...


def config_fingerprint(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The config fields that must match for a checkpoint to be resumed."""
  d = json.loads(config.to_json())
  for field in RESUMABLE_FIELDS:
    d.pop(field, None)
  return d


def checkpoint_dir(workdir: str) -> str:
  return os.path.join(workdir, "checkpoints")


def restore(program: Program, workdir: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
  """The latest checkpoint's (state, metadata), or None if there is none."""
  path = checkpoint.latest(checkpoint_dir(workdir))
  if path is None:
    return None
  meta = checkpoint.read_metadata(path)
  saved = meta.get("config_fingerprint")
  if saved != config_fingerprint(program.config):
    diff = sorted(
      k
      for k in set(saved or {}) | set(config_fingerprint(program.config))
      if (saved or {}).get(k) != config_fingerprint(program.config).get(k)
    )
    raise ResumeError(
      f"{path} was written with another config (fields differ: {', '.join(diff) or 'all'}); "
      "use another --workdir or the same config"
    )
  template = jax.eval_shape(program.init, jax.random.PRNGKey(0))
  state, meta = checkpoint.load(path, template)
  return state, meta


def drive(
  program: Program,
  backend: Backend,
  workdir: str,
  progress: bool = True,
  on_step: Callable[[int], None] | None = None,
) -> dict[str, Any]:
  """Runs (or resumes) meta-training to config.num_meta_steps; returns the final state.

  on_step(meta_step) is called after every step (tests use it to inject failures).
  """
  config = program.config
  os.makedirs(workdir, exist_ok=True)
  restored = restore(program, workdir)
  writer = metrics.MetricsWriter(workdir)
  if restored is None:
    backend.start(None)
    done, wall, env_steps = 0, 0.0, 0
    if os.path.exists(writer.path):
      os.remove(writer.path)
  else:
    state, meta = restored
    backend.start(state)
    done, wall = int(meta["meta_step"]), float(meta["wall_time_s"])
    env_steps = int(meta.get("env_steps", done * program.steps_per_meta_step()))
    metrics.truncate_after(writer.path, done)
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(config.to_json(indent=2))

  version = rule_io.code_version()

  def save(step: int, wall_time: float) -> dict[str, Any]:
    state = backend.snapshot()
    meta = {
      "code_version": version,
      "meta_step": step,
      "wall_time_s": wall_time,
      "env_steps": env_steps,
      "config": json.loads(config.to_json()),
      "config_fingerprint": config_fingerprint(config),
      "kind": "lpg_meta_train",
    }
    checkpoint.save_step(checkpoint_dir(workdir), step, state, meta, keep=config.keep_checkpoints)
    metrics.plot(writer.path, os.path.join(workdir, "meta_train.png"))
    return state

  def write_evaluations(wait: bool) -> None:
    for step, results in backend.finished_evaluations(wait):
      _write_evaluation(results, workdir, step)

  bar = None
  if progress:
    from tqdm import tqdm

    bar = tqdm(total=config.num_meta_steps, initial=done, unit="meta-step", dynamic_ncols=True)
  last_save, evaluated = time.time(), -1
  window: list[StepInfo] = []
  t0 = time.time() - wall
  try:
    while done < config.num_meta_steps:
      info = backend.step()
      done += 1
      env_steps += int(info.env_steps)
      window.append(info)
      if done % config.log_every == 0 or done == config.num_meta_steps:
        scalars = _summarise(window)
        scalars.update(
          skipped_meta_grads=int(info.skipped), env_steps=env_steps, wall_time_s=time.time() - t0
        )
        writer.write(done, scalars)
        window = []
        if bar is not None:
          bar.set_postfix(ret=f"{scalars['episode_return']:.2f}", meta_loss=f"{scalars['meta_loss']:.3f}")
      if bar is not None:
        bar.update(1)
      if config.eval_every and done % config.eval_every == 0 and program.evaluator.envs:
        backend.evaluate(done)
        evaluated = done
      write_evaluations(wait=False)
      if time.time() - last_save >= config.checkpoint_every_s:
        save(done, time.time() - t0)
        last_save = time.time()
      if on_step is not None:
        on_step(done)
  finally:
    if bar is not None:
      bar.close()
  state = save(done, time.time() - t0)
  if program.evaluator.envs and evaluated != done:
    backend.evaluate(done)
  write_evaluations(wait=True)
  writer.close()
  return state


def _summarise(window: list[StepInfo]) -> dict[str, float]:
  """Means over the window (sums for counts; NaN-aware for final returns)."""
  out = {}
  for field in window[0].metrics:
    values = np.array([float(info.metrics[field]) for info in window])
    if field in ("episodes", "lifetimes_ended", "stale_dropped"):
      out[field] = float(values.sum())
    elif field == "final_return":
      out[field] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
    else:
      out[field] = float(values.mean())
  out["meta_grad_norm"] = float(np.mean([float(info.grad_norm) for info in window]))
  return out


def _write_evaluation(results: list[evaluation.EvalResult], workdir: str, step: int) -> None:
  out = os.path.join(workdir, "eval", f"step_{step:07d}")
  reporting.write_all(out, results)
  with open(os.path.join(workdir, "eval.jsonl"), "a") as f:
    for r in results:
      f.write(
        json.dumps({"meta_step": step, "env": r.env, "final_return": [float(x) for x in r.final_return]})
        + "\n"
      )
