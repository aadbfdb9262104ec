"""The learned update rule: targets from the LPG network with parameters eta.

  pi_hat_t, y_hat_t = LPG_eta(r_t, d_t, gamma, pi(a_t|s_t), phi(y(s_t)), phi(y(s_t+1)))

(Oh et al. 2020, Eq. 2 and Fig. 1; see `lpg.network`). The agent then ascends
pi_hat * grad log pi(a_t|s_t) - y_cost * grad KL(y(s_t) || y_hat_t).

The paper's d_t is "a binary episode-termination flag" that resets the backward LSTM so
that no information crosses an episode boundary. In a trajectory of auto-resetting
environments that boundary is every episode end, terminated or cut by a time limit (the
paper's grid worlds end at "max steps"), so d_t = `RuleInputs.end_t`, and
phi(y(s_{t+1})) at an end is y of the next episode's first state, as in meta-training.
The rule consumes pi and y (not v): truncated episodes reach it only through d_t.
"""

from __future__ import annotations

from typing import Any

import chex
import jax.numpy as jnp

from inner_agents.rules.base import RuleInputs, Targets, UpdateRule
from lpg import network as network_lib


class LPGRule(UpdateRule):
  """The learned policy gradient (LPG) rule: pi_hat and y_hat from the LPG network, eta."""

  consumes = frozenset({"pi", "y"})
  on_policy = True
  learned = True
  hparam_defaults = {"y_cost": 0.5, "value_cost": 0.0, "entropy_cost": 0.0}

  def __init__(self, config: network_lib.LPGNetworkConfig | None = None, name: str = "lpg"):
    self.config = config or network_lib.LPGNetworkConfig()
    self.network = network_lib.make_lpg_network(self.config)
    self.name = name

  @property
  def y_size(self) -> int:
    """m: the bins of the y it reads and predicts (agents must match)."""
    return self.config.y_size

  def init_meta_params(self, key: chex.PRNGKey) -> Any:
    t, b, m = 2, 1, self.config.y_size
    zeros = jnp.zeros((t, b))
    return self.network.init(key, zeros, zeros, 0.99, zeros, jnp.zeros((t + 1, b, m)))

  def targets(self, meta_params: Any, inputs: RuleInputs) -> Targets:
    chex.assert_axis_dimension(inputs.y_t, -1, self.config.y_size)
    out = self.network.apply(meta_params, inputs.r_t, inputs.end_t, inputs.gamma, inputs.pi_a_t, inputs.y_t)
    return Targets(pi_hat=out.pi_hat, y_hat=out.y_hat)
