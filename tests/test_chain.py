"""Delayed chain MDPs: delayed ±1 reward decided by the first action, chain lengths, noisy
rewards, tabular indices and the distractor observation. Expected values worked out by hand."""

import jax.numpy as jnp
import numpy as np
import pytest
from env_testing import (
  B,
  assert_equal,
  batched,
  keys,
  lifetime_params,
  pad,
  random_actions,
  rollout,
  to_numpy,
  within,
)
from env_testing import make as make_env

from environments import types
from environments.chain import ChainParams, ChainSpec, ChainState


def chain_states(correct, seed: int = 0) -> ChainState:
  """B fresh-episode states (k = 0) with the given correct actions (padded)."""
  return ChainState(
    key=keys(seed),
    correct=jnp.asarray(pad(correct), jnp.int32),
    chose_correctly=jnp.zeros(B, bool),
    k=jnp.zeros(B, jnp.int32),
  )


def length(n: int) -> ChainParams:
  return ChainParams(length=jnp.asarray(n, jnp.int32))


def run(env, state, actions_tb, params, auto_reset=False):
  """Steps B chains through actions [T, B]; returns numpy states and TimeSteps stacked [T, B]."""
  return rollout(batched(env).step if auto_reset else batched(env).step_env, state, actions_tb, params)


# Row i: correct action i % 2, first action (i // 2) % 2, later actions random.
CORRECT = np.arange(B) % 2
FIRST_ACTION = (np.arange(B) // 2) % 2
RIGHT = FIRST_ACTION == CORRECT  # [B]


def first_then_random(num_steps: int, seed: int = 0) -> np.ndarray:
  later = random_actions(seed, 2, (num_steps - 1, B))
  return np.concatenate([FIRST_ACTION[None].astype(np.int32), later])


def test_reward_only_at_the_end_and_only_from_the_first_action():
  env = make_env("chain_short")
  states, ts = run(env, chain_states(CORRECT), first_then_random(5), length(5))
  assert_equal(ts.reward[:4], 0.0)
  assert_equal(ts.reward[4], np.where(RIGHT, 1.0, -1.0))
  assert_equal(ts.step_type, [[types.MID]] * 4 + [[types.LAST]])
  assert_equal(ts.discount, [[1.0]] * 4 + [[0.0]])
  # Tabular index after k steps on branch b (1 = chose correctly): 2 + 2 (k - 1) + b.
  k = np.arange(1, 6)[:, None]
  assert_equal(ts.observation, 2 + 2 * (k - 1) + RIGHT[None])
  assert_equal(states.k[:, 0], [1, 2, 3, 4, 5])


def test_later_actions_do_not_matter():
  env = make_env("chain_short")
  _, ts_a = run(env, chain_states(CORRECT), first_then_random(7, seed=1), length(7))
  _, ts_b = run(env, chain_states(CORRECT), first_then_random(7, seed=2), length(7))
  for field in ("reward", "step_type", "discount", "observation"):
    assert_equal(getattr(ts_a, field), getattr(ts_b, field))


@pytest.mark.parametrize("n", [1, 2, 30])
def test_termination_exactly_at_the_chain_length(n):
  env = make_env("chain_short")
  _, ts = run(env, chain_states(CORRECT), first_then_random(n), length(n))
  assert_equal(ts.step_type[:-1], types.MID)
  assert_equal(ts.step_type[-1], types.LAST)
  assert_equal(ts.reward[-1], np.where(RIGHT, 1.0, -1.0))
  # The last state of the longest chain has the highest index.
  assert_equal(ts.observation[-1], 2 + 2 * (n - 1) + RIGHT)
  if n == 30:
    assert ts.observation.max() == env.num_states - 1 == 61


def test_reset_draws_the_correct_action_uniformly():
  env = make_env("chain_short")
  correct = []
  for seed in range(20):
    state, ts = to_numpy(batched(env).reset(keys(seed), length(5)))
    assert_equal(ts.observation, state.correct)  # Start index = c.
    assert_equal(ts.step_type, types.FIRST)
    assert not state.chose_correctly.any() and not state.k.any()
    correct.append(state.correct)
  correct = np.array(correct)
  assert set(np.unique(correct)) == {0, 1}
  assert within(correct.mean(), 0.5, correct.size), correct.mean()


def test_auto_reset_and_episode_returns():
  """Always taking action 0, each episode returns +1 iff its start observation (= its
  correct action) is 0. With auto-reset, a LAST step shows the next episode's start."""
  env = make_env("chain_short")
  n = 6
  state, ts = batched(env).reset(keys(3), length(n))
  start_obs = np.asarray(ts.observation)
  states, ts = run(env, state, np.zeros((3 * n, B), np.int32), length(n), auto_reset=True)
  for t in range(3 * n):
    if (t + 1) % n:
      assert_equal(ts.step_type[t], types.MID)
      assert_equal(ts.reward[t], 0.0)
      continue
    assert_equal(ts.step_type[t], types.LAST)
    assert_equal(ts.discount[t], 0.0)
    assert_equal(ts.reward[t], np.where(start_obs == 0, 1.0, -1.0))
    start_obs = ts.observation[t]  # The next episode's first observation ...
    assert_equal(start_obs, states.correct[t])  # ... is its correct action.
    assert_equal(states.k[t], 0)
  assert 0 < start_obs.mean() < 1


@pytest.mark.parametrize(("name", "low", "high"), [("chain_short", 5, 30), ("chain_long", 5, 50)])
def test_lengths_drawn_per_lifetime(name, low, high):
  env = make_env(name)
  lengths = np.concatenate([np.asarray(batched(env).sample_params(keys(s)).length) for s in range(50)])
  assert lengths.dtype == np.int32
  values, counts = np.unique(lengths, return_counts=True)
  assert_equal(values, np.arange(low, high + 1))  # Closed range, all hit.
  expected = len(lengths) / (high - low + 1)
  assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected)), counts
  assert env.num_states == 2 + 2 * high


def test_length_fixed_within_a_lifetime():
  env = make_env("chain_short")
  params = lifetime_params(env, seed=7)
  n = int(params.length)
  state, _ = batched(env).reset(keys(4), params)
  _, ts = run(env, state, random_actions(0, 2, (3 * n, B)), params, auto_reset=True)
  ends = np.flatnonzero(ts.step_type[:, 0] == types.LAST) + 1
  assert_equal(ends, [n, 2 * n, 3 * n])
  assert_equal(ts.step_type == types.LAST, ts.step_type[:, :1] == types.LAST)


def test_noisy_intermediate_rewards():
  """chain_short_noisy: ±1 w.p. 1/2 on every step but the last, identical whatever the
  actions; the final reward is still ±1 from the first action."""
  env = make_env("chain_short_noisy")
  n = 30
  correct = np.arange(B) % 2
  _, ts0 = run(env, chain_states(correct), np.zeros((n, B), np.int32), length(n))
  _, ts1 = run(env, chain_states(correct), np.ones((n, B), np.int32), length(n))
  assert_equal(ts0.reward[:-1], ts1.reward[:-1])  # Independent of actions.
  noise = ts0.reward[:-1]
  assert set(np.unique(noise)) == {-1.0, 1.0}
  assert within((noise == 1.0).mean(), 0.5, noise.size), noise.mean()
  assert_equal(ts0.reward[-1], np.where(correct == 0, 1.0, -1.0))
  assert_equal(ts1.reward[-1], np.where(correct == 1, 1.0, -1.0))
  assert_equal(ts0.step_type[:-1], types.MID)  # Noise does not end episodes.
  # The noise is independent across steps: consecutive rewards agree half the time.
  agree = noise[1:] == noise[:-1]
  assert within(agree.mean(), 0.5, agree.size), agree.mean()


def test_distractor_observation():
  env = make_env("chain_distractor")
  spec = env.observation_spec()
  assert spec.shape == (22,) and spec.dtype == np.float32
  n = 30
  correct = np.arange(B) % 2
  state, ts0 = batched(env).reset(keys(5), length(n))
  state = state.replace(correct=jnp.asarray(correct, jnp.int32))  # Known correct actions.
  acts = random_actions(3, 2, (n, B))
  _, ts = run(env, state, acts, length(n))
  first = np.asarray(acts[0])
  obs = np.concatenate([np.asarray(ts0.observation)[None], ts.observation])  # [T + 1, B, 22]
  assert set(np.unique(obs)) == {0.0, 1.0}
  # Bit 0: "a0 is the correct action"; bit 1: "has chosen correctly" (0 before choosing).
  # (The reset observation was drawn before overwriting `correct`, so it is skipped.)
  assert_equal(obs[1:, :, 0], correct == 0)
  assert_equal(obs[0, :, 1], 0.0)
  assert_equal(obs[1:, :, 1], first == correct)
  assert_equal(ts.reward[-1], np.where(first == correct, 1.0, -1.0))
  # The 20 noise bits are i.i.d. Bernoulli(1/2): mean 1/2, flipping half the time between
  # steps, uncorrelated with the relevant bits and with each other.
  noise = obs[..., 2:]  # [T + 1, B, 20]
  assert within(noise.mean(), 0.5, noise.size), noise.mean()
  changed = noise[1:] != noise[:-1]
  assert within(changed.mean(), 0.5, changed.size), changed.mean()
  samples = noise[1:].reshape(-1, 20)  # [T * B, 20]
  relevant = obs[1:, :, :2].reshape(-1, 2)
  corr = np.corrcoef(np.concatenate([relevant, samples], axis=1), rowvar=False)  # [22, 22]
  bound = 5 / np.sqrt(len(samples))
  assert np.abs(corr[:2, 2:]).max() < bound, corr[:2, 2:]
  off_diagonal = corr[2:, 2:][~np.eye(20, dtype=bool)]
  assert np.abs(off_diagonal).max() < bound, off_diagonal
  # Noise bits differ between envs and along the bit axis (not one shared draw).
  assert len({tuple(row) for row in noise[0]}) > B // 2


def test_chain_spec_validation():
  with pytest.raises(ValueError, match="min_length <= max_length"):
    ChainSpec(6, 5)
  with pytest.raises(ValueError, match="min_length <= max_length"):
    ChainSpec(0, 5)
  with pytest.raises(ValueError, match="must be integers"):
    ChainSpec(5.0, 30)
  with pytest.raises(ValueError, match="observation must be one of"):
    ChainSpec(5, 30, observation="pixels")
  with pytest.raises(ValueError, match="num_noise_bits"):
    ChainSpec(5, 30, observation="distractor", num_noise_bits=-1)


def test_describe():
  assert make_env("chain_short").describe() == "delayed chain, length 5-30, obs state index, 2 actions"
  assert make_env("chain_long_noisy").describe() == (
    "delayed chain, length 5-50, noisy ±1 intermediate rewards, obs state index, 2 actions"
  )
  assert make_env("chain_distractor").describe() == (
    "delayed chain, length 5-30, obs 22 bits (2 relevant + 20 noise), 2 actions"
  )
