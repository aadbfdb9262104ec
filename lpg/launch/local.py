"""The local launcher: every node of a program in this process.

A worker step and a learner step are fused into one jitted call over the whole population
(lifetimes vmapped, one population per env); evaluations run inline. The run loop,
checkpoints and resume are `lpg.launch.driver`'s.
"""

from __future__ import annotations

from typing import Any

import jax

from harness import evaluation
from lpg.launch import driver
from lpg.program import Program

# Re-exported: meta_train.py and the tests name them through the local launcher.
ResumeError = driver.ResumeError
checkpoint_dir = driver.checkpoint_dir


def fused_meta_step(program: Program):
  """state -> (state, MetaStepMetrics, meta-gradient norm): a worker step over the whole
  population and a learner step, as one function (jit it)."""
  worker, learner = program.worker, program.learner

  def meta_step(state):
    output, lifetimes = worker.step(state["learner"].eta, state["bandits"], state["lifetimes"])
    learner_state, bandits, metrics, grad_norm = learner.apply(
      state["learner"], state["bandits"], [output], [worker.parts]
    )
    return {"learner": learner_state, "bandits": bandits, "lifetimes": lifetimes}, metrics, grad_norm

  return meta_step


class LocalBackend:
  """The whole state in this process; one jitted call per meta-step."""

  def __init__(self, program: Program):
    self._program = program
    self._state: dict[str, Any] | None = None
    self._evals: list[tuple[int, list[evaluation.EvalResult]]] = []
    self._meta_step = jax.jit(fused_meta_step(program))

  def start(self, state: dict[str, Any] | None) -> None:
    if state is None:
      state = self._program.init(jax.random.PRNGKey(self._program.config.seed))
    self._state = state

  def step(self) -> driver.StepInfo:
    self._state, metrics, grad_norm = self._meta_step(self._state)
    return driver.StepInfo(
      metrics._asdict(), grad_norm, self._program.steps_per_meta_step(), self._state["learner"].skipped
    )

  def snapshot(self) -> dict[str, Any]:
    return self._state

  def evaluate(self, step: int) -> None:
    self._evals.append((step, self._program.evaluator.evaluate(self._state["learner"].eta)))

  def finished_evaluations(self, wait: bool) -> list[tuple[int, list[evaluation.EvalResult]]]:
    evals, self._evals = self._evals, []
    return evals

  def close(self) -> None:
    pass


def run(program: Program, workdir: str, progress: bool = True) -> dict[str, Any]:
  """Runs (or resumes) meta-training in this process; returns the final state."""
  backend = LocalBackend(program)
  try:
    return driver.drive(program, backend, workdir, progress)
  finally:
    backend.close()
