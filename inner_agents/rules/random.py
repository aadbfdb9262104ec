"""The `random` rule: the floor every learning rule must beat."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from inner_agents.rules.base import RuleInputs, Targets, UpdateRule


class RandomRule(UpdateRule):
  """No learning: pi_hat = 0 everywhere, so the (uniform) initial policy never changes.

  It consumes nothing and assumes nothing about the data, so it drives any agent.
  """

  name = "random"
  on_policy = False

  def targets(self, meta_params: Any, inputs: RuleInputs) -> Targets:
    del meta_params
    return Targets(pi_hat=jnp.zeros_like(inputs.r_t))
