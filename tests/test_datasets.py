"""The dataset builder (`python -m harness.datasets`): behaviour policies, episode splitting
(terminations vs truncations, final states), what each dataset records, and bad input."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from environments import offline_data
from environments import registry as env_registry
from harness import datasets, offline
from inner_agents.agent import ConfigError


def test_episodes_split_at_ends_keep_final_states_and_drop_unfinished_ones():
  # Two envs over 4 steps. Env 0: an episode truncated after 2 steps (final state 12, the
  # next one starts at 20), then one terminated after 2 more. Env 1: never ends (dropped).
  obs = np.array([[10, 50], [11, 51], [20, 52], [21, 53]])
  records = datasets.Records(
    observation=obs,
    action=np.array([[0, 1], [1, 1], [0, 1], [1, 1]]),
    reward=np.array([[1.0, 0], [2, 0], [3, 0], [4, 0]]),
    discount=np.array([[1.0, 1], [1, 1], [1, 1], [0, 1]]),
    last=np.array([[False, False], [True, False], [False, False], [True, False]]),
    final=np.array([[11, 51], [12, 52], [21, 53], [22, 54]]),
    random_episode=np.array([[True, False], [True, False], [False, False], [False, False]]),
  )
  episodes, random_flags = datasets.episodes(records)
  assert len(episodes) == 2
  np.testing.assert_array_equal(episodes[0].observations, [10, 11, 12])
  np.testing.assert_array_equal(episodes[0].truncations, [False, True])
  np.testing.assert_array_equal(episodes[0].terminations, [False, False])
  np.testing.assert_array_equal(episodes[1].observations, [20, 21, 22])
  np.testing.assert_array_equal(episodes[1].terminations, [False, True])
  np.testing.assert_array_equal(episodes[1].rewards, [3, 4])
  np.testing.assert_array_equal(random_flags, [True, False])


def test_behaviours_mix_expert_and_uniform_actions_as_specified():
  class Zero:
    def act(self, observation, key):
      return jnp.zeros(observation.shape[0], jnp.int32)

  env = env_registry.make("chain_short")
  params = env.sample_params(jax.random.PRNGKey(0))
  fractions = {}
  for kind in datasets.KINDS:
    expert = None if kind == "random" else Zero()
    r = datasets.collect_jax(env, params, expert, datasets.behaviour(kind), 64, 100, jax.random.PRNGKey(1))
    fractions[kind] = float(np.mean(r.action == 1))  # the expert never takes action 1
    if kind == "mixed":
      _, random_flags = datasets.episodes(r)
      assert 0.4 < random_flags.mean() < 0.6
  assert fractions["expert"] == 0.0
  assert abs(fractions["noisy"] - 0.25) < 0.02  # epsilon 0.5, half of the random actions are 1
  assert abs(fractions["mixed"] - 0.25) < 0.05
  assert abs(fractions["random"] - 0.5) < 0.02


def test_build_records_how_each_dataset_was_made(tmp_path):
  root = str(tmp_path)
  (made,) = datasets.build(
    "chain_short", ["random"], steps=800, expert_steps=1, seed=3, num_envs=8, root=root
  )
  assert made.dataset_id == "lpg/chain_short/random-v0" and made.env_name == "chain_short"
  m = made.metadata
  assert (m["behaviour"], m["seed"], m["expert"], m["episodes"]) == ("random", 3, None, made.num_episodes)
  assert m["transitions"] == made.num_transitions <= 800
  np.testing.assert_allclose(m["average_return"], made.episode_returns().mean())
  env = env_registry.make("chain_short")
  params = offline.params_from_json(env, m[offline.ENV_PARAMS])
  assert int(params.length) == int(env.sample_params(jax.random.PRNGKey(3)).length)
  assert made.terminations.sum() == made.num_episodes and not made.truncations.any()  # chains terminate
  with pytest.raises(offline_data.DatasetError, match="overwrite"):
    datasets.build("chain_short", ["random"], 800, 1, root=root)


def test_the_command_refuses_bad_input_in_one_line(tmp_path):
  with pytest.raises(ConfigError, match="unknown dataset kind"):
    datasets.behaviour("perfect")
  for args, message in [
    (["--env=nope"], "unknown environment"),
    (["--env=chain_short", "--epsilon=2"], "epsilon"),
  ]:
    run = subprocess.run(
      [sys.executable, "-m", "harness.datasets", f"--root={tmp_path}", *args], capture_output=True, text=True
    )
    assert run.returncode != 0 and message in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
  assert not list(tmp_path.iterdir())
