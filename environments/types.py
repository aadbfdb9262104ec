"""The functional environment interface shared by every JAX-native environment.

An environment is a frozen object holding only static configuration (sizes, object
specs). Everything that varies is an array pytree passed in and out:

  params = env.sample_params(key)          # per-lifetime draw (object layout, chain length)
  state, ts = env.reset(key, params)       # first TimeStep of an episode
  state, ts = env.step(state, action, params)   # auto-resets after the last step

so a population of lifetimes x envs is one `jax.vmap` and a rollout is one `lax.scan`.
`TimeStep` follows dm_env's fields. On the step that ends an episode, `step` returns
step_type LAST with that step's reward and discount (0 on termination, 1 on a time-limit
truncation, as dm_env does) and the *first observation of the next episode*, which was
reset in the same call (the usual auto-reset of batched JAX RL). A LAST step ends the
episode (the LPG paper's d_t); its discount tells a termination (0: nothing to bootstrap
from) from a time-limit truncation (1: the return goes on, bootstrap from the state
reached). `step_autoreset` also returns that state's observation (before the reset), so
that a learner can bootstrap at a truncation. `step_env` is the same transition without
the auto-reset, for the dm_env adapter.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
from dm_env import specs

# dm_env.StepType values, as plain ints so they live in arrays.
FIRST, MID, LAST = 0, 1, 2


class TimeStep(NamedTuple):
  """A dm_env-shaped time step of arrays (batched by vmap when envs are).

  step_type: int8 [], FIRST / MID / LAST.
  reward: float32 [], reward for the transition into this step (0 on FIRST).
  discount: float32 [], 0 on termination, 1 otherwise (also on truncation).
  observation: the env's observation array (see `observation_spec`).
  """

  step_type: chex.Array
  reward: chex.Array
  discount: chex.Array
  observation: chex.Array

  def first(self) -> chex.Array:
    return self.step_type == FIRST

  def mid(self) -> chex.Array:
    return self.step_type == MID

  def last(self) -> chex.Array:
    return self.step_type == LAST


def first_timestep(observation: chex.Array) -> TimeStep:
  return TimeStep(
    step_type=jnp.asarray(FIRST, jnp.int8),
    reward=jnp.zeros((), jnp.float32),
    discount=jnp.ones((), jnp.float32),
    observation=observation,
  )


def transition_timestep(
  observation: chex.Array,
  reward: chex.Array,
  terminated: chex.Array,
  truncated: chex.Array,
) -> TimeStep:
  """TimeStep after a step: LAST if terminated or truncated, else MID."""
  last = jnp.logical_or(terminated, truncated)
  return TimeStep(
    step_type=jnp.where(last, LAST, MID).astype(jnp.int8),
    reward=jnp.asarray(reward, jnp.float32),
    discount=jnp.where(terminated, 0.0, 1.0).astype(jnp.float32),
    observation=observation,
  )


def random_words(key: chex.PRNGKey, num_words: int) -> tuple[chex.PRNGKey, chex.Array]:
  """The next key and `num_words` random uint32 words, from one PRNG call.

  The words are the data of further keys split off with the next one (for the default
  threefry keys, exactly the hash outputs `jax.random.bits` gives): one split instead of
  a split and a draw, as each is a separate rolled loop on CPU.
  """
  words_per_key = jax.random.key_data(key).size
  keys = jax.random.split(key, 1 + -(-num_words // words_per_key))
  words = jax.random.key_data(keys[1:]).reshape(-1)[:num_words]
  return keys[0], words


@dataclasses.dataclass(frozen=True, eq=False)
class Environment(abc.ABC):
  """Base class: static configuration in fields, dynamics as pure functions.

  Subclasses implement `sample_params`, `reset` and `step_env`, and the specs. Every
  env state carries its own PRNG key (`state.key`) so that `step` needs no key
  argument and the signature matches DESIGN.md. Environments compare and hash by
  identity (eq=False here and in subclasses), so one can be a static jit argument or a
  cache key; with eq=True here, all instances of a subclass would compare equal.
  """

  @abc.abstractmethod
  def sample_params(self, key: chex.PRNGKey) -> Any:
    """Draws the per-lifetime parameters (fixed layout, chain length, ...)."""

  @abc.abstractmethod
  def reset(self, key: chex.PRNGKey, params: Any) -> tuple[Any, TimeStep]:
    """Starts an episode: returns (state, FIRST TimeStep)."""

  @abc.abstractmethod
  def step_env(self, state: Any, action: chex.Array, params: Any) -> tuple[Any, TimeStep]:
    """One transition without auto-reset; the TimeStep may be LAST."""

  @abc.abstractmethod
  def observation_spec(self) -> specs.Array:
    """Spec of one (unbatched) observation."""

  @property
  @abc.abstractmethod
  def num_actions(self) -> int:
    """Size of the discrete action set."""

  @property
  def max_episode_steps(self) -> int | None:
    """The time limit that truncates episodes (LAST with discount 1), or None if episodes
    end only by termination. Learners that bootstrap at truncations use it to know whether
    they need the state a truncated episode reached, and how often one can occur."""
    return None

  def action_spec(self) -> specs.DiscreteArray:
    return specs.DiscreteArray(self.num_actions, dtype=jnp.int32, name="action")

  def reward_spec(self) -> specs.Array:
    return specs.Array((), jnp.float32, name="reward")

  def discount_spec(self) -> specs.BoundedArray:
    return specs.BoundedArray((), jnp.float32, 0.0, 1.0, name="discount")

  def step(self, state: Any, action: chex.Array, params: Any) -> tuple[Any, TimeStep]:
    """One transition with auto-reset.

    When the transition ends the episode, the returned state is a fresh episode's
    and the TimeStep is LAST with this transition's reward and discount but the new
    episode's first observation.
    """
    state, ts, _ = self.step_autoreset(state, action, params)
    return state, ts

  def step_autoreset(self, state: Any, action: chex.Array, params: Any) -> tuple[Any, TimeStep, chex.Array]:
    """`step`, also returning the observation of the state the transition reached,
    before any reset: the final observation of an episode that ends here (what a
    learner bootstraps from at a truncation), else the same as the TimeStep's."""
    next_state, ts = self.step_env(state, action, params)
    key, reset_key = jax.random.split(next_state.key)
    next_state = next_state.replace(key=key)
    reset_state, reset_ts = self.reset(reset_key, params)
    last = ts.last()
    state = jax.tree.map(lambda r, n: jnp.where(last, r, n), reset_state, next_state)
    observation = jnp.where(last, reset_ts.observation, ts.observation)
    return state, ts._replace(observation=observation), ts.observation

  def describe(self) -> str:
    """One line describing the environment (for `meta_test.py --list`)."""
    return type(self).__name__
