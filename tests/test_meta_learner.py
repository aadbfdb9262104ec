"""MetaLearner: non-finite meta-gradients are skipped without a trace, clipping comes before
Adam. (Bit-identical runs for a seed: tests/test_meta_train_resume.py.)"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lpg.meta_learner import MetaLearner

LR, MAX_NORM = 1e-2, 1.0
LEARNER = MetaLearner(learning_rate=LR, max_grad_norm=MAX_NORM)
apply = jax.jit(LEARNER.apply)


def _eta():
  return {"lin": {"w": jnp.array([[0.5, -1.0], [2.0, 0.0]]), "b": jnp.array([0.1, -0.2])}}


def _grads(scale=1.0, **replace):
  g = {"lin": {"w": jnp.array([[0.3, -0.4], [0.0, 1.2]]), "b": jnp.array([0.0, 0.5])}}
  g = jax.tree.map(lambda x: scale * x, g)
  for name, value in replace.items():
    g["lin"][name] = value
  return g


def _assert_trees_equal(a, b):
  la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(la) == len(lb)
  for x, y in zip(la, lb):
    np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_gradient_is_skipped(bad):
  state = LEARNER.init(_eta())
  state, _ = apply(state, _grads())  # one real step first: Adam's moments are non-zero
  grads = _grads(b=jnp.array([bad, 0.5]))
  new, norm = apply(state, grads)
  assert not np.isfinite(float(norm))
  _assert_trees_equal(new.eta, state.eta)
  _assert_trees_equal(new.opt_state, state.opt_state)
  assert int(new.step) == int(state.step) == 1
  assert int(new.skipped) == int(state.skipped) + 1 == 1


def test_skipped_gradient_leaves_no_trace():
  # [g1, NaN, g2] ends exactly where [g1, g2] does: the NaN step advanced nothing (not
  # even Adam's step count, which would change the bias correction).
  g1, g2 = _grads(), _grads(scale=-0.5)
  a = LEARNER.init(_eta())
  for g in (g1, _grads(w=jnp.full((2, 2), jnp.nan)), g2):
    a, _ = apply(a, g)
  b = LEARNER.init(_eta())
  for g in (g1, g2):
    b, _ = apply(b, g)
  _assert_trees_equal(a.eta, b.eta)
  _assert_trees_equal(a.opt_state, b.opt_state)
  assert (int(a.step), int(a.skipped)) == (2, 1) and (int(b.step), int(b.skipped)) == (2, 0)


def test_clipping_rescales_large_gradients_before_adam():
  big = _grads(scale=1e4)
  norm_big = float(optax.tree.norm(big))
  state, norm = apply(LEARNER.init(_eta()), big)
  np.testing.assert_allclose(float(norm), norm_big, rtol=1e-6)  # reported before clipping
  # Adam's first moment after one step is (1 - b1) * g_clipped, g_clipped = g * MAX / |g|.
  mu = state.opt_state[1][0].mu
  expected = jax.tree.map(lambda g: 0.1 * g * MAX_NORM / norm_big, big)
  for x, y in zip(jax.tree.leaves(mu), jax.tree.leaves(expected)):
    np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-12)
  np.testing.assert_allclose(float(optax.tree.norm(mu)), 0.1 * MAX_NORM, rtol=1e-5)


def test_small_gradients_are_not_clipped():
  small = _grads(scale=0.1)  # norm ~0.14 < MAX_NORM
  state, _ = apply(LEARNER.init(_eta()), small)
  for x, y in zip(jax.tree.leaves(state.opt_state[1][0].mu), jax.tree.leaves(small)):
    np.testing.assert_allclose(x, 0.1 * y, rtol=1e-6)


def test_clipping_limits_a_gradient_spikes_effect_on_later_updates():
  # Adam normalises each step, so a spike's harm is in its moments: unclipped, a 1e6
  # spike dominates the first moment for ~100 steps and eta keeps moving along it whatever
  # the later gradients say. Clipped to MAX_NORM, it weighs no more than an ordinary
  # gradient and, within a few steps, eta follows the later (opposite) gradients again.
  g0 = _grads()

  def last_step_along_g0(learner):
    state = learner.init(_eta())
    for g in [jax.tree.map(lambda x: 0.5 * x, g0)] * 5 + [jax.tree.map(lambda x: 1e6 * x, g0)]:
      state, _ = learner.apply(state, g)
    for _ in range(10):
      before = state.eta
      state, _ = learner.apply(state, jax.tree.map(lambda x: -0.5 * x, g0))
    return sum(float(jnp.vdot(a - b, g)) for a, b, g in zip(*map(jax.tree.leaves, (state.eta, before, g0))))

  # Descending the later gradient -0.5 g0 moves eta along +g0; following the spike, -g0.
  assert last_step_along_g0(LEARNER) > 0
  assert last_step_along_g0(MetaLearner(LR, max_grad_norm=1e12)) < 0
