"""The LPG meta-network: shapes, backward recurrence, resets at terminations, shared phi,
and gamma as an input (Oh et al. 2020, Section 3 / Figure 1)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lpg.network import LPGNetworkConfig, make_lpg_network

T, B, M = 6, 2, 3
CONFIG = LPGNetworkConfig(hidden_size=8, phi_size=4, y_size=M)
NET = make_lpg_network(CONFIG)


def _inputs(seed=0, done=None):
  """Random (reward, done, gamma, pi_a, y) with y [T+1, B, m] probabilities."""
  k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
  reward = jax.random.normal(k1, (T, B))
  pi_a = jax.random.uniform(k2, (T, B), minval=0.05, maxval=1.0)
  y = jax.nn.softmax(2.0 * jax.random.normal(k3, (T + 1, B, M)))
  done = jnp.zeros((T, B)) if done is None else jnp.asarray(done, jnp.float32)
  return reward, done, 0.9, pi_a, y


@pytest.fixture(scope="module")
def eta():
  # A random initialisation has small output weights; scale every parameter up so that
  # the outputs depend clearly (not numerically negligibly) on every input.
  # phi's hidden bias is set to 2 so that no ReLU of phi is dead for any y (its weights
  # are > -2 here, and y is a distribution): otherwise some y(s) would reach nothing.
  params = NET.init(jax.random.PRNGKey(42), *_inputs())
  params = jax.tree.map(lambda p: 3.0 * p + 0.1, params)
  assert float(params["lpg/phi_hidden"]["w"].min()) > -2.0
  params["lpg/phi_hidden"]["b"] = jnp.full((CONFIG.phi_size,), 2.0)
  return params


@pytest.fixture(scope="module")
def apply():
  return jax.jit(NET.apply)


def _outputs_flat(apply, eta, reward, done, gamma, pi_a, y):
  out = apply(eta, reward, done, gamma, pi_a, y)
  return jnp.concatenate([out.pi_hat[..., None], out.y_hat], axis=-1)  # [T, B, 1 + m]


def test_output_shapes_and_y_hat_is_a_distribution(apply, eta):
  out = apply(eta, *_inputs())
  assert out.pi_hat.shape == (T, B)
  assert out.y_hat.shape == (T, B, M)
  y_hat = np.asarray(out.y_hat)
  assert (y_hat > 0).all()
  np.testing.assert_allclose(y_hat.sum(-1), 1.0, rtol=1e-6)
  # The input x_t has 6 scalars: the LSTM's input weights are [6 + hidden, 4 hidden].
  assert eta["lpg/lstm/linear"]["w"].shape == (6 + CONFIG.hidden_size, 4 * CONFIG.hidden_size)


def _jacobian_wrt(apply, eta, inputs, argnum):
  """d outputs[t, b, :] / d inputs[argnum][s, b'] as an array [T, B, 1 + m, S, B]
  (summed in absolute value over any trailing input axis, e.g. y's m)."""

  def f(x):
    args = list(inputs)
    args[argnum] = x
    return _outputs_flat(apply, eta, *args)

  jac = np.abs(np.asarray(jax.jacobian(f)(inputs[argnum])))
  return jac.reshape((*jac.shape[:5], -1)).sum(-1)


def _dependence(jac):
  """bool [T, S]: whether any output at t (any batch entry, any output unit) depends on the
  input at step s of the *same* batch entry; also checks batch entries never mix."""
  t, b = jac.shape[:2]
  dep = np.zeros((t, jac.shape[3]), bool)
  for i in range(b):
    for j in range(b):
      block = np.abs(jac[:, i, :, :, j]).max(axis=1)  # [T, S]
      if i == j:
        dep |= block > 0
      else:
        assert (block == 0).all(), "batch entries must not interact"
  return dep


@pytest.mark.parametrize("argnum,name", [(0, "reward"), (3, "pi_a")])
def test_backward_in_time_output_depends_only_on_later_steps(apply, eta, argnum, name):
  jac = _jacobian_wrt(apply, eta, _inputs(), argnum)
  dep = _dependence(jac)
  # Upper triangular: output t depends on input s iff s >= t (no terminations).
  np.testing.assert_array_equal(dep, np.triu(np.ones((T, T), bool)), err_msg=name)


def test_perturbing_one_step_changes_exactly_the_outputs_at_or_before_it(apply, eta):
  reward, done, gamma, pi_a, y = _inputs()
  base = np.asarray(_outputs_flat(apply, eta, reward, done, gamma, pi_a, y))
  s = 3
  bumped = np.asarray(_outputs_flat(apply, eta, reward.at[s].add(0.5), done, gamma, pi_a, y))
  # Outputs after s are computed before s is reached: bit-identical.
  np.testing.assert_array_equal(bumped[s + 1 :], base[s + 1 :])
  changed = np.abs(bumped - base).max(axis=(1, 2))
  assert (changed[: s + 1] > 1e-6).all(), changed


def test_y_enters_at_t_as_current_and_at_t_minus_1_as_next(apply, eta):
  # y has T+1 entries: y[s] is y(s_s) at step s and y(s_{t+1}) at step t = s - 1, so the
  # output at t depends on y[s] iff s >= t (y[T], the bootstrap state, reaches every t).
  dep = _dependence(_jacobian_wrt(apply, eta, _inputs(), 4))  # [T, T+1]
  np.testing.assert_array_equal(dep, np.triu(np.ones((T, T + 1), bool)))


@pytest.mark.parametrize("k", [0, 2, T - 2])
def test_reset_at_termination_blocks_later_steps(apply, eta, k):
  done = np.zeros((T, B), np.float32)
  done[k] = 1.0
  inputs = _inputs(done=done)
  for argnum in (0, 3):  # reward, pi_a
    dep = _dependence(_jacobian_wrt(apply, eta, inputs, argnum))
    expected = np.triu(np.ones((T, T), bool))
    expected[: k + 1, k + 1 :] = False  # nothing after the episode's end reaches it
    np.testing.assert_array_equal(dep, expected, err_msg=f"argnum {argnum}")
  # y: y[k+1] is the "next state" input of the terminal step k (the paper's x_t), but
  # nothing from y[k+2:] reaches t <= k.
  dep = _dependence(_jacobian_wrt(apply, eta, inputs, 4))
  assert not dep[: k + 1, k + 2 :].any()
  assert dep[k, k + 1] and dep[k + 1 :, k + 2 :].any()


def test_reset_equals_running_the_episode_alone(apply, eta):
  # With d_k = 1 the outputs at t <= k are those of the network run on steps 0..k only.
  k = 2
  done = np.zeros((T, B), np.float32)
  done[k] = 1.0
  reward, done, gamma, pi_a, y = _inputs(done=done)
  full = NET.apply(eta, reward, done, gamma, pi_a, y)
  head = NET.apply(eta, reward[: k + 1], done[: k + 1], gamma, pi_a[: k + 1], y[: k + 2])
  np.testing.assert_allclose(full.pi_hat[: k + 1], head.pi_hat, rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(full.y_hat[: k + 1], head.y_hat, rtol=1e-6, atol=1e-7)
  # Without the termination the later steps do leak into those outputs.
  no_done = NET.apply(eta, reward, jnp.zeros_like(done), gamma, pi_a, y)
  assert np.abs(np.asarray(no_done.pi_hat[:k]) - np.asarray(head.pi_hat[:k])).max() > 1e-4


def test_phi_is_one_embedding_shared_by_y_t_and_y_t_plus_1(apply, eta):
  # One phi module (Dense(phi)-ReLU-Dense(1) on m inputs) and no other parameter sees y.
  phi_modules = [name for name in eta if "phi" in name]
  assert sorted(phi_modules) == ["lpg/phi_hidden", "lpg/phi_out"]
  assert eta["lpg/phi_hidden"]["w"].shape == (M, CONFIG.phi_size)
  assert eta["lpg/phi_out"]["w"].shape == (CONFIG.phi_size, 1)
  # Zeroing phi's output weight removes every path from y, both as y(s_t) and as
  # y(s_{t+1}): were y(s_{t+1}) embedded by separate parameters, some dependence would stay.
  flat = {name: dict(module) for name, module in eta.items()}
  flat["lpg/phi_out"]["w"] = jnp.zeros_like(eta["lpg/phi_out"]["w"])
  jac = _jacobian_wrt(apply, flat, _inputs(), 4)
  assert (jac == 0).all()
  assert np.abs(_jacobian_wrt(apply, eta, _inputs(), 4)).max() > 1e-4


def test_gamma_is_an_input(apply, eta):
  reward, done, _, pi_a, y = _inputs()
  a = apply(eta, reward, done, 0.99, pi_a, y)
  b = apply(eta, reward, done, 0.9, pi_a, y)
  assert np.abs(np.asarray(a.pi_hat) - np.asarray(b.pi_hat)).min() > 0
  # A per-step [T, B] gamma is accepted and equals the broadcast scalar.
  c = apply(eta, reward, done, jnp.full((T, B), 0.9), pi_a, y)
  np.testing.assert_allclose(c.pi_hat, b.pi_hat, rtol=1e-6)
  g = jax.grad(lambda gamma: jnp.sum(apply(eta, reward, done, gamma, pi_a, y).pi_hat))(0.95)
  assert abs(float(g)) > 1e-4
