"""harness.result_store: finished meta-test results round-trip, and their key changes with
every setting a result depends on."""

import jax
import numpy as np
import pytest

from harness import checkpoint, result_store
from harness import config as meta_test_config
from harness.evaluation import EvalResult
from inner_agents.rules import registry
from lpg.rule import LPGRule


def _result():
  return EvalResult(
    env="atari/Breakout",
    rule="a2c",
    agent="actor_critic",
    agent_description="actor_critic(conv)",
    seeds=(3, 4),
    env_steps=np.array([100, 200]),
    curve=np.array([[1.0, np.nan], [0.5, 2.0]]),
    final_return=np.array([1.5, 2.0]),
    wall_time_s=7.0,
    params=({"w": np.ones(2)}, {"w": np.zeros(2)}),
  )


def test_round_trip_without_agent_parameters(tmp_path):
  file = result_store.path(str(tmp_path), "atari/Breakout", "actor_critic", "a2c", "abc")
  assert file == str(tmp_path / "done" / "atari-Breakout__actor_critic__a2c__abc.npz")
  assert result_store.load(file) is None
  result_store.save(file, _result())
  got = result_store.load(file)
  want = _result()
  assert (got.env, got.rule, got.agent, got.seeds) == ("atari/Breakout", "a2c", "actor_critic", (3, 4))
  assert got.agent_description == "actor_critic(conv)"
  assert got.wall_time_s == 7.0
  np.testing.assert_array_equal(got.env_steps, want.env_steps)
  np.testing.assert_array_equal(got.curve, want.curve)  # NaN where no episode finished
  np.testing.assert_array_equal(got.final_return, want.final_return)
  assert got.params is None


def test_a_file_that_is_not_a_result_is_a_clear_error(tmp_path):
  file = str(tmp_path / "done" / "x.npz")
  (tmp_path / "done").mkdir()
  checkpoint.save(file, {"w": np.ones(2)}, {"kind": "something_else"})
  with pytest.raises(
    checkpoint.CheckpointError, match="is not a meta-test result; delete it or pass --noresume"
  ):
    result_store.load(file)


def test_key_depends_on_every_setting():
  config = meta_test_config.get_config()
  a2c, none = registry.resolve("a2c")
  small = LPGRule(name="small")
  _, (lpg, eta) = registry.resolve_all(["a2c", "lpg_init"])
  base = ("tabular_dense", "actor_critic", lpg, eta, 5, 1000, config)
  key = result_store.result_key(*base)
  assert key == result_store.result_key(*base)  # deterministic
  other_config = meta_test_config.get_config()
  other_config.seed_offset = 1
  agent_config = meta_test_config.get_config()
  agent_config.actor_critic.y_cost = 0.1
  nudged = jax.tree.map(lambda x: x.at[(0,) * x.ndim].add(1e-6) if x.ndim else x + 1e-6, eta)
  variants = [
    ("tabular_sparse", "actor_critic", lpg, eta, 5, 1000, config),
    ("tabular_dense", "other_agent", lpg, eta, 5, 1000, config),
    ("tabular_dense", "actor_critic", a2c, none, 5, 1000, config),
    ("tabular_dense", "actor_critic", small, eta, 5, 1000, config),  # another name, same eta
    ("tabular_dense", "actor_critic", lpg, nudged, 5, 1000, config),  # same name, other eta
    ("tabular_dense", "actor_critic", lpg, eta, 4, 1000, config),
    ("tabular_dense", "actor_critic", lpg, eta, 5, 999, config),
    ("tabular_dense", "actor_critic", lpg, eta, 5, 1000, other_config),
    ("tabular_dense", "actor_critic", lpg, eta, 5, 1000, agent_config),  # the agent's own setting
  ]
  keys = {result_store.result_key(*v) for v in variants}
  assert key not in keys and len(keys) == len(variants)
