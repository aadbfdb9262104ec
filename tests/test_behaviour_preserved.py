"""Numbers recorded on main before the agent-interface redesign (commit c1c5ec9) that the
redesigned code must reproduce bit for bit.

* `python meta_train.py`'s eta after 4 meta-steps of the default config (fixed seed; held-out
  evaluation off): the sha256 of eta's float32 bytes, leaves in sorted path order.
* meta_test.py's final returns and curves of a2c, random and pretrained:reference_cpu on a
  tabular grid (table, SGD) and the distractor chain (MLP, Adam), 2 seeds x 25,600 env
  steps, 2 curve points (chain_short, a table chain, was recorded too).

Both budgets end before any grid-world episode reaches its time limit (4 x 6 x 20 and
25,600 / 64 = 400 env steps per env, against max_steps >= 500), so the one intended
change of the redesign, bootstrapping at time-limit truncations, cannot move them; it is
tested with known answers in test_rules.py, test_actor_critic.py and test_meta_objective.py.
"""

import hashlib

import jax
import numpy as np
import pytest

from harness import config as meta_test_config
from harness import evaluation
from inner_agents.rules import registry
from lpg import program
from lpg.configs import meta_train as meta_train_config
from lpg.launch import local

ETA_SHA256_AFTER_4_META_STEPS = "dfc303023c0fe1d62771966972ef6321974e6d7bf23d5c0ad68201b9a8ec6647"

# (env, rule): (final return per seed, curve [seed, point]), from main's meta_test.py.
META_TEST = {
  ("tabular_dense", "a2c"): ([-1.4375, -0.8055555820465088], [[-1.125, -1.6785714626312256], [-1.2307692766189575, -0.4285714328289032]]),
  ("tabular_dense", "random"): ([-1.9090908765792847, -0.7837837934494019], [[-1.5, -2.0], [-1.185185194015503, -0.4545454680919647]]),
  ("tabular_dense", "reference_cpu"): ([-1.3529411554336548, -1.0], [[-0.9166666865348816, -1.840000033378601], [-1.1538461446762085, -0.9047619104385376]]),
  ("chain_short", "a2c"): ([0.8125, 0.84375], [[0.2473958283662796, 0.7091346383094788], [0.384765625, 0.8602941036224365]]),
  ("chain_short", "random"): ([-0.21875, 0.15625], [[-0.015625, -0.026442307978868484], [-0.0078125, 0.04963235184550285]]),
  ("chain_short", "reference_cpu"): ([0.90625, 0.90625], [[0.5130208134651184, 0.879807710647583], [0.642578125, 0.935661792755127]]),
  ("chain_distractor", "a2c"): ([-0.15625, 0.125], [[-0.0052083334885537624, -0.024038461968302727], [-0.0078125, 0.05147058889269829]]),
  ("chain_distractor", "random"): ([-0.21875, 0.15625], [[-0.015625, -0.026442307978868484], [-0.0078125, 0.04963235184550285]]),
  ("chain_distractor", "reference_cpu"): ([-0.1875, 0.15625], [[-0.013020833022892475, -0.03365384787321091], [-0.0078125, 0.04595588147640228]]),
}  # fmt: skip


def eta_sha256(eta) -> str:
  """sha256 over eta's leaves (sorted '/'-joined paths, then float32 bytes)."""
  h = hashlib.sha256()
  leaves = {
    "".join(f"/{k.key}" for k in path): np.ascontiguousarray(np.asarray(leaf, np.float32))
    for path, leaf in jax.tree_util.tree_flatten_with_path(eta)[0]
  }
  for path in sorted(leaves):
    h.update(path.encode())
    h.update(leaves[path].tobytes())
  return h.hexdigest()


def test_default_meta_training_reaches_mains_eta(tmp_path):
  config = meta_train_config.get_config()
  with config.unlocked():
    config.num_meta_steps = 4
    config.eval_envs = ""
  state = local.run(program.build(config), str(tmp_path), progress=False)
  assert eta_sha256(state["learner"].eta) == ETA_SHA256_AFTER_4_META_STEPS


@pytest.mark.parametrize("env", ["tabular_dense", "chain_distractor"])
def test_meta_test_gives_mains_returns(env):
  config = meta_test_config.get_config()
  config.num_curve_points = 2
  for (rule, meta_params), spec in zip(
    registry.resolve_all(["a2c", "random", "pretrained:reference_cpu"]), ["a2c", "random", "reference_cpu"]
  ):
    result = evaluation.evaluate(env, "actor_critic", rule, meta_params, config, 2, 25_600)
    finals, curve = META_TEST[(env, spec)]
    np.testing.assert_array_equal(result.final_return, finals, err_msg=f"{env} / {spec}")
    np.testing.assert_array_equal(result.curve, curve, err_msg=f"{env} / {spec}")
