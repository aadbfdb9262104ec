"""Delayed chain MDPs of the LPG paper (Oh et al. 2020, Appendix A), JAX-native.

Each episode picks a correct action c in {0, 1} uniformly. The agent takes exactly L
actions (L, the chain length, is drawn once per lifetime uniformly from
[min_length, max_length]). Only the first action matters: it decides whether the agent
walks the correct chain, which ends with +1, or the wrong one, which ends with -1, on the
L-th step; the episode then terminates. In the noisy variants every intermediate step
(all but the last) gives a reward of +1 or -1 with probability 1/2 each, independent of
the actions (the paper's "rewards of ±1 that do not depend on the action"; distribution
as in bsuite's umbrella_chain, which the paper cites as the inspiration).

Observations:
  * tabular: an integer index over distinct states (no aliasing, so the start state
    reveals c): 0 or 1 at the start (= c); after k >= 1 steps on branch b (1 = the agent
    chose correctly), 2 + 2 (k - 1) + b. There are 2 + 2 * max_length states.
  * distractor: float32 {0,1}^(2 + num_noise_bits): bit 0 is "a0 is the correct
    action", bit 1 is "the agent has chosen correctly" (0 before the choice), and the
    remaining bits are i.i.d. Bernoulli(1/2) noise, redrawn at every step.
"""

from __future__ import annotations

import dataclasses

import chex
import jax
import jax.numpy as jnp
from dm_env import specs

from environments import types

OBSERVATION_KINDS = ("tabular", "distractor")


@dataclasses.dataclass(frozen=True)
class ChainSpec:
  """A delayed chain MDP family as data.

  Attributes:
    min_length, max_length: the lifetime's chain length is uniform in this closed range.
    noisy: whether intermediate steps give random ±1 rewards.
    observation: 'tabular' (state index) or 'distractor' (2 relevant + noise bits).
    num_noise_bits: number of i.i.d. noise bits in the distractor observation.
    description: one line for listings.
  """

  min_length: int
  max_length: int
  noisy: bool = False
  observation: str = "tabular"
  num_noise_bits: int = 20
  description: str = ""

  def __post_init__(self):
    if not (isinstance(self.min_length, int) and isinstance(self.max_length, int)):
      raise ValueError("chain lengths must be integers")
    if not 1 <= self.min_length <= self.max_length:
      raise ValueError(
        f"chain lengths need 1 <= min_length <= max_length, got {self.min_length}, {self.max_length}"
      )
    if self.observation not in OBSERVATION_KINDS:
      raise ValueError(f"chain observation must be one of {list(OBSERVATION_KINDS)}")
    if self.num_noise_bits < 0:
      raise ValueError("num_noise_bits must be >= 0")


@chex.dataclass(frozen=True)
class ChainParams:
  """length: int32 [], the number of actions per episode in this lifetime."""

  length: chex.Array


@chex.dataclass(frozen=True)
class ChainState:
  """key; correct: int32 [] (the correct first action); chose_correctly: bool [];
  k: int32 [], actions taken in this episode."""

  key: chex.PRNGKey
  correct: chex.Array
  chose_correctly: chex.Array
  k: chex.Array


@dataclasses.dataclass(frozen=True, eq=False)
class DelayedChain(types.Environment):
  """A delayed chain MDP built from a ChainSpec (see module docstring)."""

  spec: ChainSpec
  name: str = "chain"

  @property
  def num_actions(self) -> int:
    return 2

  @property
  def num_states(self) -> int:
    """Number of tabular states (tabular observation only)."""
    return 2 + 2 * self.spec.max_length

  def describe(self) -> str:
    s = self.spec
    obs = (
      "state index"
      if s.observation == "tabular"
      else f"{2 + s.num_noise_bits} bits (2 relevant + {s.num_noise_bits} noise)"
    )
    noise = ", noisy ±1 intermediate rewards" if s.noisy else ""
    text = f"delayed chain, length {s.min_length}-{s.max_length}{noise}, obs {obs}, 2 actions"
    return f"{text}; {s.description}" if s.description else text

  def observation_spec(self) -> specs.Array:
    if self.spec.observation == "tabular":
      return specs.BoundedArray((), jnp.int32, 0, self.num_states - 1, name="observation")
    shape = (2 + self.spec.num_noise_bits,)
    return specs.BoundedArray(shape, jnp.float32, 0.0, 1.0, name="observation")

  def sample_params(self, key: chex.PRNGKey) -> ChainParams:
    length = jax.random.randint(key, (), self.spec.min_length, self.spec.max_length + 1)
    return ChainParams(length=length.astype(jnp.int32))

  # Randomness: every call draws what it needs as uint32 words from one PRNG call (each
  # call is a separate rolled loop on CPU, the main cost of a batched step). A fair
  # coin is a word's top bit; the distractor's noise bits are the bits of its words.

  @property
  def _num_noise_words(self) -> int:
    return -(-self.spec.num_noise_bits // 32) if self.spec.observation == "distractor" else 0

  def reset(self, key: chex.PRNGKey, params: ChainParams) -> tuple[ChainState, types.TimeStep]:
    del params
    state_key, words = types.random_words(key, 1 + self._num_noise_words)
    state = self._initial_state(state_key, words[0])
    return state, types.first_timestep(self._observe(state, words[1:]))

  def _initial_state(self, key: chex.PRNGKey, correct_word: chex.Array) -> ChainState:
    return ChainState(
      key=key,
      correct=_coin(correct_word).astype(jnp.int32),
      chose_correctly=jnp.bool_(False),
      k=jnp.zeros((), jnp.int32),
    )

  def _transition(self, state: ChainState, action: chex.Array, params: ChainParams):
    """The next state (before any reset), reward, terminated, and the step's random words:
    [reward noise, a reset's correct action, observation noise]."""
    key, words = types.random_words(state.key, 2 + self._num_noise_words)
    action = jnp.asarray(action, jnp.int32)
    chose_correctly = jnp.where(state.k == 0, action == state.correct, state.chose_correctly)
    k = state.k + 1
    terminated = k >= params.length
    final_reward = jnp.where(chose_correctly, 1.0, -1.0)
    if self.spec.noisy:
      noise = jnp.where(_coin(words[0]), 1.0, -1.0)
    else:
      noise = jnp.zeros((), jnp.float32)
    reward = jnp.where(terminated, final_reward, noise)
    next_state = ChainState(key=key, correct=state.correct, chose_correctly=chose_correctly, k=k)
    return next_state, reward, terminated, words

  def step_env(
    self, state: ChainState, action: chex.Array, params: ChainParams
  ) -> tuple[ChainState, types.TimeStep]:
    next_state, reward, terminated, words = self._transition(state, action, params)
    observation = self._observe(next_state, words[2:])
    return next_state, types.transition_timestep(observation, reward, terminated, jnp.bool_(False))

  def step_autoreset(
    self, state: ChainState, action: chex.Array, params: ChainParams
  ) -> tuple[ChainState, types.TimeStep, chex.Array]:
    """`Environment.step_autoreset`, specialised to draw randomness once: the next
    episode's state takes the next key, and its observation the noise words of this
    step's (only one of each pair is ever used). Without a reset the transition is
    exactly `step_env`'s. `step` observes once: the final observation is dead code there."""
    reached, reward, terminated, words = self._transition(state, action, params)
    reset_state = self._initial_state(reached.key, words[1])
    next_state = jax.tree.map(lambda r, n: jnp.where(terminated, r, n), reset_state, reached)
    observation = self._observe(next_state, words[2:])
    ts = types.transition_timestep(observation, reward, terminated, jnp.bool_(False))
    return next_state, ts, self._observe(reached, words[2:])

  def _observe(self, state: ChainState, noise_words: chex.Array) -> chex.Array:
    if self.spec.observation == "tabular":
      in_chain = 2 + 2 * (state.k - 1) + state.chose_correctly.astype(jnp.int32)
      return jnp.where(state.k == 0, state.correct, in_chain).astype(jnp.int32)
    relevant = jnp.stack(
      [(state.correct == 0).astype(jnp.float32), state.chose_correctly.astype(jnp.float32)]
    )
    bits = (noise_words[:, None] >> jnp.arange(32, dtype=jnp.uint32)) & 1  # [words, 32]
    noise = bits.reshape(-1)[: self.spec.num_noise_bits].astype(jnp.float32)
    return jnp.concatenate([relevant, noise])


def _coin(word: chex.Array) -> chex.Array:
  """A fair coin (bool) from a random uint32 word: its top bit."""
  return (word >> 31) == 1
