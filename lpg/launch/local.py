"""The local launcher: every node of a program in this process.

A worker step and a learner step are fused into one jitted call over the whole population
(lifetimes vmapped, one population per env). State is checkpointed atomically every
`checkpoint_every_s` seconds and at the end; re-running with the same workdir resumes from
the latest checkpoint, and a crash loses at most the work since it.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import jax
import ml_collections
import numpy as np

from lpg import checkpoint, metrics, reporting
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
)


class ResumeError(ValueError):
  """A workdir whose checkpoint cannot be resumed with this config."""


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


def run(program: Program, workdir: str, progress: bool = True) -> dict[str, Any]:
  """Runs (or resumes) meta-training to config.num_meta_steps; returns the final state."""
  config = program.config
  os.makedirs(workdir, exist_ok=True)
  restored = restore(program, workdir)
  writer = metrics.MetricsWriter(workdir)
  if restored is None:
    state = program.init(jax.random.PRNGKey(config.seed))
    done, wall = 0, 0.0
    if os.path.exists(writer.path):
      os.remove(writer.path)
  else:
    state, meta = restored
    done, wall = int(meta["meta_step"]), float(meta["wall_time_s"])
    metrics.truncate_after(writer.path, done)
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(config.to_json(indent=2))

  @jax.jit
  def meta_step(state):
    grads, pops, m = program.worker.step(state["learner"].eta, state["populations"])
    learner, grad_norm = program.learner.apply(state["learner"], grads)
    return {"learner": learner, "populations": pops}, m, grad_norm

  def save(step: int, wall_time: float) -> None:
    meta = {
      "meta_step": step,
      "wall_time_s": wall_time,
      "env_steps": step * program.steps_per_meta_step(),
      "config": json.loads(config.to_json()),
      "config_fingerprint": config_fingerprint(config),
      "kind": "lpg_meta_train",
    }
    checkpoint.save_step(checkpoint_dir(workdir), step, state, meta, keep=config.keep_checkpoints)

  bar = None
  if progress:
    from tqdm import tqdm

    bar = tqdm(total=config.num_meta_steps, initial=done, unit="meta-step", dynamic_ncols=True)
  last_save = time.time()
  window = []
  t0 = time.time() - wall
  try:
    while done < config.num_meta_steps:
      state, m, grad_norm = meta_step(state)
      done += 1
      window.append((m, grad_norm))
      if done % config.log_every == 0 or done == config.num_meta_steps:
        scalars = _summarise(window)
        scalars.update(
          skipped_meta_grads=int(state["learner"].skipped),
          env_steps=done * program.steps_per_meta_step(),
          wall_time_s=time.time() - t0,
        )
        writer.write(done, scalars)
        window = []
        if bar is not None:
          bar.set_postfix(ret=f"{scalars['episode_return']:.2f}", meta_loss=f"{scalars['meta_loss']:.3f}")
      if bar is not None:
        bar.update(1)
      if config.eval_every and done % config.eval_every == 0 and program.evaluator.envs:
        _evaluate(program, state, workdir, done)
      if time.time() - last_save >= config.checkpoint_every_s:
        save(done, time.time() - t0)
        metrics.plot(writer.path, os.path.join(workdir, "meta_train.png"))
        last_save = time.time()
  finally:
    if bar is not None:
      bar.close()
  save(done, time.time() - t0)
  metrics.plot(writer.path, os.path.join(workdir, "meta_train.png"))
  if program.evaluator.envs:
    _evaluate(program, state, workdir, done)
  writer.close()
  return state


def _summarise(window: list) -> dict[str, float]:
  ms = [m for m, _ in window]
  out = {}
  for field in ms[0]._fields:
    values = np.array([float(getattr(m, field)) for m in ms])
    if field in ("episodes", "lifetimes_ended"):
      out[field] = float(values.sum())
    elif field == "final_return":
      out[field] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
    else:
      out[field] = float(values.mean())
  out["meta_grad_norm"] = float(np.mean([float(g) for _, g in window]))
  return out


def _evaluate(program: Program, state: dict[str, Any], workdir: str, step: int) -> None:
  results = program.evaluator.evaluate(state["learner"].eta)
  out = os.path.join(workdir, "eval", f"step_{step:07d}")
  reporting.write_all(out, results)
  with open(os.path.join(workdir, "eval.jsonl"), "a") as f:
    for r in results:
      f.write(
        json.dumps({"meta_step": step, "env": r.env, "final_return": [float(x) for x in r.final_return]})
        + "\n"
      )
