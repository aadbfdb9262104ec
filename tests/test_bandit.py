"""Tests for the per-environment hyperparameter bandit (Eq. 6)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lpg import bandit


def _state(returns_per_arm, window=10):
  """A bandit whose arm i has seen the returns in returns_per_arm[i], in order."""
  state = bandit.init(len(returns_per_arm), window)
  for arm, rets in enumerate(returns_per_arm):
    for r in rets:
      state = bandit.update(state, arm, r)
  return state


def test_init_shapes_and_dtypes():
  s = bandit.init(9)
  assert s.returns.shape == (9, 10) and s.returns.dtype == jnp.float32
  assert s.count.shape == (9,) and s.count.dtype == jnp.int32
  assert s.next_slot.shape == (9,) and s.next_slot.dtype == jnp.int32


def test_scores_hand_worked_unnormalized():
  # R = [2, 1, 3], N = [1, 4, 2].
  s = _state([[2.0], [0.0, 1.0, 2.0, 1.0], [2.0, 4.0]])
  np.testing.assert_allclose(bandit.mean_returns(s), [2.0, 1.0, 3.0], rtol=1e-6)
  got = bandit.scores(s, tau=0.1, rho=0.2, normalize=False)
  want = (np.array([2.0, 1.0, 3.0]) + 0.2 / np.sqrt([1.0, 4.0, 2.0])) / 0.1
  np.testing.assert_allclose(got, want, rtol=1e-5)


def test_scores_hand_worked_normalized():
  # R = [2, 1, 3] -> min-max [0.5, 0, 1].
  s = _state([[2.0], [0.0, 1.0, 2.0, 1.0], [2.0, 4.0]])
  got = bandit.scores(s, tau=0.5, rho=1.0)
  want = (np.array([0.5, 0.0, 1.0]) + 1.0 / np.sqrt([1.0, 4.0, 2.0])) / 0.5
  np.testing.assert_allclose(got, want, rtol=1e-5)
  np.testing.assert_allclose(bandit.probs(s, 0.5, 1.0), jax.nn.softmax(want), rtol=1e-5)


def test_normalized_scores_are_scale_invariant_and_equal_returns_give_zero():
  a = _state([[1.0], [2.0], [4.0]])
  b = _state([[100.0], [200.0], [400.0]])
  np.testing.assert_allclose(bandit.scores(a), bandit.scores(b), rtol=1e-5)
  flat = _state([[7.0], [7.0, 7.0], [7.0]])
  np.testing.assert_allclose(bandit.scores(flat, 0.1, 0.2), 0.2 / np.sqrt([1.0, 2.0, 1.0]) / 0.1, rtol=1e-5)


def test_ring_buffer_keeps_last_window():
  s = _state([list(range(25)), [5.0]], window=10)
  assert int(s.count[0]) == 25 and int(s.next_slot[0]) == 5
  assert sorted(np.asarray(s.returns[0]).tolist()) == list(range(15, 25))
  np.testing.assert_allclose(bandit.mean_returns(s), [19.5, 5.0])


def test_partial_buffer_mean_uses_only_filled_slots():
  s = _state([[3.0, 5.0], [1.0]])
  np.testing.assert_allclose(bandit.mean_returns(s), [4.0, 1.0])


def test_untried_arms_sampled_first():
  s = _state([[100.0], [], [0.0], [], []])
  logits = bandit.scores(s)
  assert np.all(np.isneginf(np.asarray(logits)[[0, 2]]))
  np.testing.assert_allclose(bandit.probs(s)[np.array([1, 3, 4])], 1 / 3, rtol=1e-6)
  arms = jax.jit(jax.vmap(lambda k: bandit.sample(s, k)))(jax.random.split(jax.random.PRNGKey(0), 300))
  assert set(np.asarray(arms).tolist()) == {1, 3, 4}


def test_first_num_arms_draws_cover_every_arm():
  sample, update = jax.jit(bandit.sample), jax.jit(bandit.update)
  state, seen = bandit.init(9), []
  for key in jax.random.split(jax.random.PRNGKey(1), 9):
    arm = sample(state, key)
    seen.append(int(arm))
    state = update(state, arm, 0.0)
  assert sorted(seen) == list(range(9))


def _run_synthetic(key, num_arms=9, best=2, steps=300):
  """Bandit loop: arm `best` returns ~1, the others ~0, plus Gaussian noise."""

  def step(state, key):
    k_arm, k_noise = jax.random.split(key)
    arm = bandit.sample(state, k_arm)
    ret = jnp.where(arm == best, 1.0, 0.0) + 0.1 * jax.random.normal(k_noise)
    return bandit.update(state, arm, ret), None

  state, _ = jax.lax.scan(step, bandit.init(num_arms), jax.random.split(key, steps))
  return state


def test_bandit_prefers_the_better_arm_on_a_synthetic_reward():
  state = jax.jit(_run_synthetic)(jax.random.PRNGKey(0))
  count = np.asarray(state.count)
  assert count.sum() == 300 and np.all(count >= 1)
  assert np.argmax(count) == 2 and count[2] > 3 * np.delete(count, 2).max()
  assert float(bandit.probs(state)[2]) > 0.8


def test_jitted_python_loop_prefers_the_better_arm():
  best = 2

  @jax.jit
  def step(state, key):
    k_arm, k_noise = jax.random.split(key)
    arm = bandit.sample(state, k_arm)
    ret = jnp.where(arm == best, 1.0, 0.0) + 0.1 * jax.random.normal(k_noise)
    return bandit.update(state, arm, ret)

  state = bandit.init(9)
  for key in jax.random.split(jax.random.PRNGKey(3), 300):
    state = step(state, key)
  assert np.argmax(np.asarray(state.count)) == best
  assert float(bandit.probs(state)[best]) > 0.8


def test_update_many_skips_non_ended_and_matches_sequential():
  rng = np.random.default_rng(0)
  arms = rng.integers(0, 4, size=40)
  rets = rng.normal(size=40).astype(np.float32)
  ended = rng.random(40) < 0.6
  got = jax.jit(bandit.update_many)(bandit.init(4, 3), arms, rets, ended)
  want = bandit.init(4, 3)
  for a, r, e in zip(arms, rets, ended):
    if e:
      want = bandit.update(want, int(a), float(r))
  jax.tree.map(np.testing.assert_array_equal, got, want)
  assert int(got.count.sum()) == int(ended.sum())


def test_update_many_nothing_ended_is_identity():
  s = _state([[1.0], [2.0]])
  got = bandit.update_many(s, jnp.array([0, 1, 1]), jnp.array([9.0, 9.0, 9.0]), jnp.zeros(3, bool))
  jax.tree.map(np.testing.assert_array_equal, got, s)


def test_vmap_over_independent_bandits():
  best = jnp.array([0, 3, 5, 8])

  def run(key, best):
    def step(state, key):
      k_arm, k_noise = jax.random.split(key)
      arm = bandit.sample(state, k_arm)
      ret = 100.0 * (arm == best) + 5.0 * jax.random.normal(k_noise)  # unnormalised scale
      return bandit.update(state, arm, ret), None

    state, _ = jax.lax.scan(step, bandit.init(9), jax.random.split(key, 200))
    return state

  keys = jax.random.split(jax.random.PRNGKey(7), 4)
  states = jax.jit(jax.vmap(run))(keys, best)
  assert states.returns.shape == (4, 9, 10)
  np.testing.assert_array_equal(np.argmax(np.asarray(states.count), axis=-1), best)
  p = jax.vmap(bandit.probs)(states)
  np.testing.assert_array_less(0.8, np.asarray(p)[np.arange(4), np.asarray(best)])
  # Batched update_many and sample under jit + vmap.
  arms = jax.jit(jax.vmap(bandit.sample))(states, keys)
  assert arms.shape == (4,) and arms.dtype == jnp.int32
  states2 = jax.jit(jax.vmap(bandit.update_many))(
    states, arms[:, None], jnp.ones((4, 1)), jnp.array([[True], [False], [True], [False]])
  )
  np.testing.assert_array_equal(states2.count.sum(-1) - states.count.sum(-1), [1, 0, 1, 0])


def test_arm_grid_and_hparams():
  grid = bandit.arm_grid([5e-4, 1e-3, 2e-3, 5e-3], [0.1, 0.5, 1.0])
  assert grid.shape == (12, 2) and grid.dtype == np.float32
  lr, y = bandit.arm_hparams(grid, 5)  # i_lr = 1, i_y = 2
  assert float(lr) == pytest.approx(1e-3) and float(y) == pytest.approx(1.0)
  lrs, ys = jax.jit(bandit.arm_hparams)(grid, jnp.array([0, 11]))
  np.testing.assert_allclose(lrs, [5e-4, 5e-3], rtol=1e-6)
  np.testing.assert_allclose(ys, [0.1, 1.0], rtol=1e-6)
  assert bandit.arm_grid([20, 40, 80], [0.1, 0.5, 1]).shape == (9, 2)
