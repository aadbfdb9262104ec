"""A `dm_env.Environment` view of any functional JAX environment, for outside users.

  env = make_dm_env("tabular_dense", seed=0)
  timestep = env.reset()
  while not timestep.last():
    timestep = env.step(policy(timestep.observation))

The adapter holds the env state and a PRNG key on the device and steps with the env's
`step_env` (no JAX-style auto-reset): a LAST step carries its own episode's last
observation, and the `step()` after it starts a new episode and returns FIRST, as dm_env
specifies (so does a `step()` before any `reset()`; its action is ignored). TimeSteps hold
numpy values matching the specs: reward and discount float32 scalars, discount 0 on
termination and 1 on a time-limit truncation; FIRST steps have reward and discount None.
"""

from __future__ import annotations

import functools
from typing import Any

import chex
import dm_env
import jax
import numpy as np
from dm_env import specs

from environments import registry, types


# Module level with the env as a static argument, so that adapters of the same env
# instance share the compiled functions (envs hash by identity).
@functools.partial(jax.jit, static_argnums=0)
def _reset(env: types.Environment, key: chex.PRNGKey, params: Any):
  key, reset_key = jax.random.split(key)
  state, ts = env.reset(reset_key, params)
  return key, state, ts


@functools.partial(jax.jit, static_argnums=0)
def _step(env: types.Environment, state: Any, action: chex.Array, params: Any):
  return env.step_env(state, action, params)


class DmEnvAdapter(dm_env.Environment):
  """Wraps a `types.Environment` as a stateful `dm_env.Environment` (one episode at a time)."""

  def __init__(self, env: types.Environment, seed: int, params: Any = None):
    """No episode runs until the first `reset()` (or `step()`).

    Args:
      env: the functional environment.
      seed: seeds the per-lifetime params (when not given) and all episode randomness.
      params: the env's per-lifetime params; default `env.sample_params` of a key from `seed`.
    """
    self._env = env
    self._key, params_key = jax.random.split(jax.random.PRNGKey(seed))
    self._params = env.sample_params(params_key) if params is None else params
    self._reset_fn = functools.partial(_reset, env)
    self._step_fn = functools.partial(_step, env)
    self._action_spec = env.action_spec()
    self._state = None
    self._needs_reset = True

  @property
  def env(self) -> types.Environment:
    return self._env

  @property
  def params(self) -> Any:
    return self._params

  def reset(self) -> dm_env.TimeStep:
    self._key, self._state, ts = self._reset_fn(self._key, self._params)
    self._needs_reset = False
    return dm_env.restart(np.asarray(ts.observation))

  def step(self, action: Any) -> dm_env.TimeStep:
    if self._needs_reset:
      return self.reset()
    action = self._action_spec.validate(np.asarray(action, self._action_spec.dtype))
    self._state, ts = self._step_fn(self._state, action, self._params)
    ts = jax.device_get(ts)  # One transfer for all fields.
    reward, discount = np.asarray(ts.reward), np.asarray(ts.discount)
    observation = np.asarray(ts.observation)
    if int(ts.step_type) == types.LAST:
      self._needs_reset = True
      return dm_env.TimeStep(dm_env.StepType.LAST, reward, discount, observation)
    return dm_env.transition(reward, observation, discount)

  def observation_spec(self) -> specs.Array:
    return self._env.observation_spec()

  def action_spec(self) -> specs.DiscreteArray:
    return self._action_spec

  def reward_spec(self) -> specs.Array:
    return self._env.reward_spec()

  def discount_spec(self) -> specs.BoundedArray:
    return self._env.discount_spec()


def make_dm_env(name: str, seed: int = 0) -> DmEnvAdapter:
  """The registered environment `name` (or grid-world JSON spec path) as a dm_env."""
  return DmEnvAdapter(registry.make(name), seed)
