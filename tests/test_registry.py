"""Every registered environment: specs match what reset/step return, jit+vmap equals an
unjitted per-env loop, fixed keys give identical trajectories; names and JSON specs."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from env_testing import B, batched, keys, lifetime_params, random_actions, rollout, to_numpy
from env_testing import make as make_env

from environments import chain, grid_world, registry, types
from environments.errors import UnknownEnvironmentError

NAMES = [
  "tabular_dense",
  "tabular_sparse",
  "tabular_long_horizon",
  "tabular_longer_horizon",
  "tabular_long_dense",
  "random_dense",
  "random_long_horizon",
  "random_small",
  "random_small_sparse",
  "random_very_dense",
  "chain_short",
  "chain_short_noisy",
  "chain_long",
  "chain_long_noisy",
  "chain_distractor",
]
T = 4  # Steps per test rollout; episodes are set up to end within them (see `_near_the_end`).


def test_names():
  assert registry.names() == NAMES
  assert [name for name, _ in registry.describe_all()] == NAMES


def _near_the_end(env, state, params):
  """Shortens the first episodes so that auto-resets happen within T steps."""
  if isinstance(env, chain.DelayedChain):
    return state, chain.ChainParams(length=jnp.asarray(2, jnp.int32))
  return state.replace(t=jnp.full_like(state.t, env.spec.max_steps - 2)), params


def _batched_rollout(env, seed: int):
  """B envs of one lifetime: reset, then T auto-resetting steps with random actions.

  Returns the initial state, params, actions [T, B] and the numpy (first TimeStep,
  states [T, B], TimeSteps [T, B]).
  """
  params = lifetime_params(env, seed)
  state, first = batched(env).reset(keys(seed + 1), params)
  state, params = _near_the_end(env, state, params)
  acts = random_actions(seed + 2, env.num_actions, (T, B))
  states, timesteps = rollout(batched(env).step, state, acts, params)
  return state, params, acts, (to_numpy(first), states, timesteps)


@pytest.fixture(scope="module", params=NAMES)
def env_rollout(request):
  env = make_env(request.param)
  return env, _batched_rollout(env, seed=0)


def test_specs_match_returned_values(env_rollout):
  env, (_, _, _, (first, _, ts)) = env_rollout
  obs_spec, reward_spec, discount_spec = env.observation_spec(), env.reward_spec(), env.discount_spec()
  action_spec = env.action_spec()
  assert action_spec.num_values == env.num_actions and action_spec.dtype == np.int32
  assert action_spec.num_values in ((2,) if isinstance(env, chain.DelayedChain) else (9, 18))
  for b in range(B):
    obs_spec.validate(first.observation[b])
    assert first.step_type[b] == types.FIRST and first.reward[b] == 0.0 and first.discount[b] == 1.0
    for t in range(T):
      obs_spec.validate(ts.observation[t, b])
      reward_spec.validate(ts.reward[t, b])
      discount_spec.validate(ts.discount[t, b])
  assert ts.step_type.dtype == np.int8
  assert set(np.unique(ts.step_type)) <= {types.MID, types.LAST}
  assert (ts.step_type == types.LAST).any()  # Episodes were set up to end within T steps.


def test_jit_vmap_equals_unjitted_loop(env_rollout):
  """One of the B envs, stepped one step at a time without jit, from the same state and keys."""
  env, (init, params, acts, (_, states, ts)) = env_rollout
  state = jax.tree.map(lambda x: x[0], init)
  for t in range(T):
    state, step = env.step(state, acts[t, 0], params)
    expected = jax.tree.map(lambda x, t=t: x[t, 0], (states, ts))
    for got, want in zip(jax.tree.leaves(to_numpy((state, step))), jax.tree.leaves(expected)):
      np.testing.assert_array_equal(got, want, err_msg=f"step {t}")


def test_fixed_key_gives_identical_trajectories(env_rollout):
  env, (_, _, _, original) = env_rollout
  again = _batched_rollout(env, seed=0)[3]
  for x, y in zip(jax.tree.leaves(original), jax.tree.leaves(again)):
    np.testing.assert_array_equal(x, y)
  other = _batched_rollout(env, seed=10)[3]
  assert any(np.any(x != y) for x, y in zip(jax.tree.leaves(original), jax.tree.leaves(other)))


def test_unknown_name():
  with pytest.raises(UnknownEnvironmentError) as error:
    registry.make("tabular_dens")
  message = str(error.value)
  assert "'tabular_dens'" in message
  assert all(name in message for name in NAMES)
  assert isinstance(error.value, ValueError)
  with pytest.raises(UnknownEnvironmentError):
    registry.family("no_such_env")


def test_register_twice_is_an_error():
  entry = registry.entry("chain_short")
  with pytest.raises(ValueError, match="already registered"):
    registry.register("chain_short", entry.family, entry.factory)
  with pytest.raises(ValueError, match="unknown environment family"):
    registry.register("chain_shorter", "mdp", entry.factory)


def test_make_builds_a_fresh_env():
  assert registry.make("chain_short") is not registry.make("chain_short")
  assert registry.make("tabular_dense") != registry.make("tabular_dense")  # Identity, not value.


def test_families():
  assert registry.family("tabular_dense") == "tabular_grid" and registry.family("chain_distractor") == "chain"
  assert registry.family("atari/Pong") == "atari" and registry.family("gym/CartPole-v1") == "gym"
  assert [registry.family(n) for n in registry.names("random_grid")] == ["random_grid"] * 5


@pytest.mark.parametrize("observation", ["tabular", "map"])
def test_json_spec_through_registry(tmp_path, observation):
  data = {
    "layout": ["....", ".#..", "...."],
    "objects": [[2, [1, 0, 0.5]], [-1, 1, 0]],
    "max_steps": 30,
    "observation": observation,
    "description": "a small test map",
  }
  path = tmp_path / "my_grid.json"
  path.write_text(json.dumps(data))
  env = registry.make(str(path))
  assert isinstance(env, grid_world.GridWorld) and env.name == "my_grid"
  assert env.spec == grid_world.GridWorldSpec.from_dict(data)
  entry = registry.entry(str(path))
  assert entry.family == {"tabular": "tabular_grid", "map": "random_grid"}[observation]
  assert env.describe().endswith("; a small test map")
  # It runs: a reset observes a valid state.
  params = env.sample_params(jax.random.PRNGKey(0))
  _, ts = env.reset(jax.random.PRNGKey(1), params)
  env.observation_spec().validate(np.asarray(ts.observation))
  if observation == "tabular":
    assert env.num_states == 12 * 2**3


def test_bad_json_spec_through_registry(tmp_path):
  path = tmp_path / "bad.json"
  path.write_text(json.dumps({"size": [3, 3], "objects": [], "max_steps": 5, "observation": "map"}))
  with pytest.raises(grid_world.SpecError, match="at least one object"):
    registry.make(str(path))
  with pytest.raises(grid_world.SpecError, match="cannot read"):
    registry.make(str(tmp_path / "missing.json"))


def test_reference_configs_hold_out_one_env_per_family_and_the_cpu_one_drops_conv_agents():
  from inner_agents.actor_critic import presets
  from lpg.configs import meta_train as cfg

  reference = cfg.get_config("reference")
  train, held_out = reference.train_envs.split(","), reference.eval_envs.split(",")
  assert sorted(train + held_out) == sorted(registry.names())
  assert sorted(registry.entry(n).family for n in held_out) == ["chain", "random_grid", "tabular_grid"]
  conv = [n for n in train if presets.preset(n).conv_channels]
  assert sorted(conv) == sorted(cfg.CONV_AGENT_GRIDS)
  assert list(cfg.REFERENCE_CPU_TRAIN) == [n for n in train if n not in conv]
