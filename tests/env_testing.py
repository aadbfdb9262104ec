"""Shared helpers for the environment tests: cached envs and batched jitted functions.

XLA compilation dominates these tests' time, so each environment is built once per
session and each of its batched functions is compiled once, at one batch size `B`, and
reused by every test file (envs hash by identity, so a fresh `registry.make` would
recompile).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import chex
import jax
import numpy as np

from environments import registry, types

B = 64  # The one batch size of every compiled env function in the tests.


@functools.cache
def make(name: str) -> types.Environment:
  """`registry.make(name)`, built once per test session."""
  return registry.make(name)


class Batched(NamedTuple):
  """jit(vmap(...)) of an env's functions over B envs sharing one params."""

  sample_params: Any  # keys [B] -> params [B] (B lifetimes)
  reset: Any  # (keys [B], params) -> (state [B], TimeStep [B])
  step: Any  # (state [B], action [B], params) -> (state [B], TimeStep [B]), auto-reset
  step_env: Any  # as `step`, without auto-reset


# XLA:CPU's backend optimisations (LLVM) take about half of each compile here and buy
# nothing for tests of this size; they do not change results.
_FAST_COMPILE = {"xla_backend_optimization_level": 0}


@functools.cache
def batched(env: types.Environment) -> Batched:
  def jit(f):
    return jax.jit(f, compiler_options=_FAST_COMPILE)

  return Batched(
    sample_params=jit(jax.vmap(env.sample_params)),
    reset=jit(jax.vmap(env.reset, (0, None))),
    step=jit(jax.vmap(env.step, (0, 0, None))),
    step_env=jit(jax.vmap(env.step_env, (0, 0, None))),
  )


def keys(seed: int, n: int = B) -> chex.PRNGKey:
  """n PRNG keys [n, 2] from an integer seed."""
  return jax.random.split(jax.random.PRNGKey(seed), n)


def pad(values: Any, n: int = B) -> np.ndarray:
  """Stacks a list of k <= n cases along axis 0 and pads to n rows by repeating row 0."""
  values = np.asarray(values)
  assert len(values) <= n, len(values)
  filler = np.repeat(values[:1], n - len(values), axis=0)
  return np.concatenate([values, filler], axis=0)


def random_actions(seed: int, num_actions: int, shape: tuple[int, ...]) -> np.ndarray:
  """Uniformly random int32 actions of the given shape (numpy: no eager compile per shape)."""
  return np.random.default_rng(seed).integers(num_actions, size=shape).astype(np.int32)


def to_numpy(tree: Any) -> Any:
  return jax.tree.map(np.asarray, jax.device_get(tree))


def rollout(step_fn: Any, state: Any, actions_tb: Any, params: Any) -> tuple[Any, types.TimeStep]:
  """Steps a batched `step_fn` through actions [T, B] in a Python loop (no new compile).

  Returns the numpy states and TimeSteps after each step, stacked [T, B, ...].
  """
  states, timesteps = [], []
  for action in actions_tb:
    state, ts = step_fn(state, action, params)
    states.append(to_numpy(state))
    timesteps.append(to_numpy(ts))
  return stack(states), stack(timesteps)


def stack(trees: list[Any]) -> Any:
  """Stacks a list of numpy pytrees along a new leading (time) axis."""
  return jax.tree.map(lambda *xs: np.stack(xs), *trees)


def within(estimate: float, p: float, n: int, num_se: float = 4.0) -> bool:
  """Whether a Bernoulli frequency from n trials is within num_se standard errors of p."""
  return abs(estimate - p) <= num_se * np.sqrt(p * (1 - p) / n)


def assert_equal(actual: Any, expected: Any) -> None:
  """Exact equality, with `expected` broadcast to the shape of `actual`."""
  actual = np.asarray(actual)
  np.testing.assert_array_equal(actual, np.broadcast_to(expected, actual.shape))


def lifetime_params(env: types.Environment, seed: int, i: int = 0) -> Any:
  """The params of lifetime i of B drawn from `seed`, as numpy (one compile per env)."""
  return jax.tree.map(lambda x: x[i], to_numpy(batched(env).sample_params(keys(seed))))
