"""Offline agents in the meta-test harness: which environment a dataset belongs to, the
environment parameters it was collected under, and the offline driver for a pair.

A dataset made here (`harness.datasets`) records the registry name of its environment and,
for JAX envs, the parameters drawn for the run that collected it (a tabular grid's object
layout, a chain's length), so that the learned policy is evaluated where the data came
from. A foreign Minari dataset with a Gymnasium env spec maps to `gym/<id>`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from environments import offline_data
from environments import registry as env_registry
from environments.types import Environment
from inner_agents import registry as agent_registry
from inner_agents.drivers.offline import OfflineTrainer, device_data
from inner_agents.rules.base import UpdateRule

ENV_PARAMS = "env_params"  # The metadata field holding a JAX env's parameters.


def params_to_json(params: Any) -> list:
  """A JAX env's parameters (a pytree of small arrays) as JSON lists, in leaf order."""
  return [np.asarray(leaf).tolist() for leaf in jax.tree.leaves(params)]


def params_from_json(env: Environment, values: Sequence) -> Any:
  """The inverse of `params_to_json` for `env` (its parameter structure and dtypes)."""
  template = env.sample_params(jax.random.PRNGKey(0))
  leaves, treedef = jax.tree.flatten(template)
  if len(values) != len(leaves):
    raise offline_data.DatasetError(
      f"the dataset's {ENV_PARAMS} have {len(values)} arrays, {env.name} needs {len(leaves)}"
    )
  arrays = [jnp.asarray(v, leaf.dtype) for v, leaf in zip(values, leaves)]
  bad = [a.shape for a, leaf in zip(arrays, leaves) if a.shape != leaf.shape]
  if bad:
    raise offline_data.DatasetError(f"the dataset's {ENV_PARAMS} do not fit {env.name} (shapes {bad})")
  return jax.tree.unflatten(treedef, arrays)


def dataset_env(dataset: offline_data.Dataset, env_names: Sequence[str] = ()) -> str:
  """The environment to evaluate a dataset's agents in: the one it records, which `env_names`
  (when given, e.g. an explicit --env) must contain, else the only one given."""
  if dataset.env_name:
    if env_names and dataset.env_name not in env_names:
      raise offline_data.DatasetError(
        f"dataset {dataset.dataset_id} was collected on {dataset.env_name}, not on {', '.join(env_names)}"
      )
    return dataset.env_name
  if len(env_names) != 1:
    raise offline_data.DatasetError(
      f"dataset {dataset.dataset_id} records no environment: pass the one it came from as --env"
    )
  return env_names[0]


def observation_spec_and_actions(env_name: str) -> tuple[Any, int]:
  """(observation spec, number of actions) of any environment name."""
  if env_registry.is_host(env_name):
    with env_registry.make_host(env_name, 1) as env:
      return env.observation_spec(), env.num_actions
  env = env_registry.make(env_name)
  return env.observation_spec(), env.num_actions


def check_dataset(dataset: offline_data.Dataset, env_name: str) -> tuple[Any, int]:
  """DatasetError (one line) if the dataset cannot be evaluated in `env_name`; else the
  env's (observation spec, number of actions)."""
  spec, num_actions = observation_spec_and_actions(env_name)
  offline_data.check_matches(dataset, env_name, tuple(spec.shape), num_actions)
  if not env_registry.is_host(env_name) and ENV_PARAMS not in dataset.metadata:
    raise offline_data.DatasetError(
      f"dataset {dataset.dataset_id} records no {ENV_PARAMS} for the JAX env {env_name}; "
      "build it with `python -m harness.datasets`"
    )
  return spec, num_actions


def episode_truncations(dataset: offline_data.Dataset) -> np.ndarray:
  """bool [N]: the dataset's truncations, plus the last step of any episode that ends with
  neither flag (a foreign dataset's unfinished episode): it is cut there, and bootstraps
  from the state it reached, so no window runs from it into the next episode."""
  last = np.zeros(dataset.num_transitions, bool)
  last[np.cumsum(dataset.episode_lengths) - 1] = True
  return dataset.truncations | (last & ~dataset.terminations)


@contextlib.contextmanager
def offline_trainer(
  env_name: str,
  agent_name: str,
  rule: UpdateRule,
  agent_config: Any,
  dataset: offline_data.Dataset,
  num_windows: int,
  window: int,
) -> Iterator[OfflineTrainer]:
  """The offline driver for `agent_name` (with its typed config) on `dataset`, B = num_windows
  windows of T = window steps per update, evaluating in `env_name` (a host env is open while
  the context is)."""
  spec, num_actions = check_dataset(dataset, env_name)
  agent = agent_registry.make(agent_name, env_name, spec, num_actions, agent_config)
  data = device_data(
    dataset.observations,
    dataset.next_observations,
    dataset.actions,
    dataset.rewards,
    dataset.terminations,
    episode_truncations(dataset),
  )
  common = dict(
    data=data,
    agent=agent,
    rule=rule,
    num_windows=num_windows,
    window=window,
    eval_episodes=agent_config.eval_episodes,
    eval_max_steps=agent_config.eval_max_steps,
  )
  if env_registry.is_host(env_name):
    with env_registry.make_host(env_name, agent_config.eval_episodes) as host_env:
      yield OfflineTrainer(host_env=host_env, **common)
  else:
    env = env_registry.make(env_name)
    yield OfflineTrainer(env=env, env_params=params_from_json(env, dataset.metadata[ENV_PARAMS]), **common)
