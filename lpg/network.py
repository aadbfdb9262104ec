"""The LPG meta-network (Oh et al. 2020, Section 3 and Figure 1).

Per step t the network sees
  x_t = [r_t, d_t, gamma, pi(a_t|s_t), phi(y(s_t)), phi(y(s_{t+1}))]        (6 scalars)
where phi is an embedding shared between y(s_t) and y(s_{t+1}) (Dense(16)-ReLU-Dense(1)).
An LSTM runs *backward* in time over the trajectory, so its output at t depends only on
steps t..T-1; its carry is reset to zero where step t is terminal (d_t = 1), so nothing
crosses an episode boundary (the paper's reset rule; the carry entering step T-1 from
beyond the window is zero). Heads (unspecified in the paper; our choice, noted in
DESIGN): pi_hat_t = Linear(1)(h_t), a scalar, and y_hat_t = softmax(Linear(m)(h_t)).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import chex
import haiku as hk
import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class LPGNetworkConfig:
  """Sizes: `hidden_size` of the LSTM (paper 256), `phi_size` of phi's hidden layer
  (paper 16), `y_size` m (paper 30)."""

  hidden_size: int = 256
  phi_size: int = 16
  y_size: int = 30


class LPGOutput(NamedTuple):
  """pi_hat: [T, B]; y_hat: [T, B, m] probabilities."""

  pi_hat: chex.Array
  y_hat: chex.Array


class LPGNetwork(hk.Module):
  """(r, d, gamma, pi_a, y) [T, B, ...] -> LPGOutput [T, B, ...]."""

  def __init__(self, config: LPGNetworkConfig, name: str = "lpg"):
    super().__init__(name=name)
    self._config = config

  def __call__(
    self,
    reward: chex.Array,
    done: chex.Array,
    discount: chex.Numeric,
    pi_a: chex.Array,
    y: chex.Array,
  ) -> LPGOutput:
    """Args:
    reward: [T, B] r_t.  done: [T, B] d_t in {0, 1}.  discount: scalar or [T, B] gamma.
    pi_a: [T, B] pi(a_t|s_t).  y: [T+1, B, m] y(s_t) for t = 0..T.
    """
    chex.assert_rank([reward, done, pi_a, y], [2, 2, 2, 3])
    c = self._config
    phi = hk.Sequential([hk.Linear(c.phi_size, name="phi_hidden"), jax.nn.relu, hk.Linear(1, name="phi_out")])
    phi_y = phi(y)[..., 0]  # [T+1, B]
    gamma = jnp.broadcast_to(jnp.asarray(discount, reward.dtype), reward.shape)
    x = jnp.stack([reward, done, gamma, pi_a, phi_y[:-1], phi_y[1:]], axis=-1)  # [T, B, 6]
    core = hk.ResetCore(hk.LSTM(c.hidden_size))
    batch = reward.shape[1]
    # ResetCore zeroes the carry *before* processing step t where should_reset[t]; with
    # reverse=True that is the carry coming from t+1, i.e. the reset at terminal steps.
    h, _ = hk.dynamic_unroll(core, (x, done > 0.5), core.initial_state(batch), reverse=True)  # [T, B, H]
    pi_hat = hk.Linear(1, name="pi_hat")(h)[..., 0]
    y_hat = jax.nn.softmax(hk.Linear(c.y_size, name="y_hat")(h))
    return LPGOutput(pi_hat=pi_hat, y_hat=y_hat)


def make_lpg_network(config: LPGNetworkConfig) -> hk.Transformed:
  """apply(eta, reward, done, discount, pi_a, y) -> LPGOutput."""

  def forward(reward, done, discount, pi_a, y):
    return LPGNetwork(config)(reward, done, discount, pi_a, y)

  return hk.without_apply_rng(hk.transform(forward))
