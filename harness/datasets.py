r"""Offline datasets made here, in Minari's format, from behaviour policies on an environment.

  python -m harness.datasets --env=tabular_dense --expert_steps=2000000 --steps=50000
  python -m harness.datasets --env=gym/CartPole-v1 --expert_steps=300000 --kinds=expert,mixed

The expert is an actor-critic agent trained by A2C on the environment (`--expert_steps`,
its learning curve is recorded); then each behaviour policy acts in B parallel envs for
about `--steps` transitions (whole episodes only; the unfinished ones are dropped):

  expert   a ~ pi_expert(.|s), the expert's own stochastic policy
  noisy    the expert, but each action is uniform-random with probability `--epsilon` (0.5)
  mixed    each episode is an expert or a uniform-random one, half and half (a coin per episode)
  random   uniform-random actions

Datasets are written with Minari's own writer as `<prefix>/<env>/<kind>-v0` under the
Minari root (`--root`, else $MINARI_DATASETS_PATH, else ~/.minari/datasets), each with
what made it: behaviour, epsilon, steps, episodes, seed, its own average return, the
expert's training and, for JAX envs, the environment parameters drawn for the run
(a tabular grid's layout), so agents are evaluated where the data came from.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags, logging

from environments import offline_data
from environments import registry as env_registry
from environments.errors import UnknownEnvironmentError
from environments.host import HostEnvironment, UnsupportedEnvironmentError
from environments.types import Environment
from harness import cli, evaluation, offline
from harness import config as meta_test_config
from inner_agents.agent import ConfigError
from inner_agents.rules.a2c import A2CRule

KINDS = ("expert", "noisy", "mixed", "random")
AGENT = "actor_critic"


@dataclasses.dataclass(frozen=True)
class Behaviour:
  """A behaviour policy: the expert's action, replaced by a uniform-random one with
  probability `epsilon` per step, in a fraction `random_episodes` of the episodes."""

  kind: str
  epsilon: float = 0.0
  random_episodes: float = 0.0


def behaviour(kind: str, epsilon: float = 0.5) -> Behaviour:
  """The behaviour policy of a dataset kind (module docstring)."""
  if kind not in KINDS:
    raise ConfigError(f"unknown dataset kind {kind!r}; valid: {', '.join(KINDS)}")
  return {
    "expert": Behaviour("expert"),
    "noisy": Behaviour("noisy", epsilon=epsilon),
    "mixed": Behaviour("mixed", random_episodes=0.5),
    "random": Behaviour("random", epsilon=1.0),
  }[kind]


@dataclasses.dataclass(frozen=True, eq=False)
class Expert:
  """A trained actor-critic agent: act(obs [B, ...], key) -> actions [B].

  env_params: the JAX env's parameters it was trained under (None for host envs).
  train_steps, curve: its A2C training budget and learning curve.
  """

  agent: Any
  state: Any
  env_params: Any
  train_steps: int
  curve: np.ndarray

  def act(self, observation: chex.Array, key: chex.PRNGKey) -> chex.Array:
    return self.agent.act(self.state, observation, key)[0]


def train_expert(env_name: str, steps: int, seed: int, num_points: int = 10) -> Expert:
  """An actor-critic agent trained by A2C for >= `steps` env steps (the meta-test settings)."""
  config, rule = meta_test_config.get_config(), A2CRule()
  if env_registry.is_host(env_name):
    with env_registry.make_host(env_name, evaluation.num_envs(env_name, AGENT, config)) as env:
      trainer = evaluation.make_host_trainer(env, AGENT, rule, config)
      updates = max(1, math.ceil(steps / trainer.steps_per_update))
      run = trainer.train(seed, {}, trainer.agent.hparams(rule), updates, min(num_points, updates))
      return Expert(trainer.agent, run.agent, None, updates * trainer.steps_per_update, run.curve)
  trainer = evaluation.make_trainer(env_name, AGENT, rule, config)
  chunk, points = evaluation.schedule(steps, trainer.steps_per_update, num_points)
  hparams = trainer.agent.hparams(rule)
  state = jax.jit(trainer.init)(jax.random.PRNGKey(seed))
  run = jax.jit(lambda s: trainer.run(s, {}, hparams, chunk))
  curve = []
  for _ in range(points):
    state, metrics = run(state)
    curve.append(float(jnp.sum(metrics.return_sum) / jnp.maximum(jnp.sum(metrics.episode_count), 1)))
  return Expert(
    trainer.agent, state.agent, state.env_params, chunk * points * trainer.steps_per_update, np.array(curve)
  )


class Records(NamedTuple):
  """What a behaviour policy did in B envs over S steps (numpy, time-major [S, B]).

  observation: [S, B, ...] s_t.  action, reward, discount: [S, B].  last: bool [S, B] the
  episode ended after a_t.  final: [S, B, ...] the state a_t reached (before any reset).
  random_episode: bool [S, B] the step belongs to a uniform-random episode (mixed).
  """

  observation: np.ndarray
  action: np.ndarray
  reward: np.ndarray
  discount: np.ndarray
  last: np.ndarray
  final: np.ndarray
  random_episode: np.ndarray


def _actions(
  expert: Expert | None,
  b: Behaviour,
  observation: chex.Array,
  random_episode: chex.Array,
  key: chex.PRNGKey,
  num_actions: int,
) -> chex.Array:
  """The behaviour's actions [B]: uniform in random episodes, else the expert's, each replaced
  by a uniform one with probability epsilon."""
  expert_key, random_key, coin_key = jax.random.split(key, 3)
  uniform = jax.random.randint(random_key, random_episode.shape, 0, num_actions, jnp.int32)
  if expert is None:
    return uniform
  use_random = random_episode | (jax.random.uniform(coin_key, random_episode.shape) < b.epsilon)
  return jnp.where(use_random, uniform, expert.act(observation, expert_key).astype(jnp.int32))


def collect_jax(
  env: Environment,
  env_params: Any,
  expert: Expert | None,
  b: Behaviour,
  num_envs: int,
  num_steps: int,
  key: chex.PRNGKey,
) -> Records:
  """`num_steps` steps of the behaviour in `num_envs` JAX envs, one jitted scan."""

  @jax.jit
  def run(key):
    reset_key, coin_key, key = jax.random.split(key, 3)
    env_state, ts = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(reset_key, num_envs), env_params)
    random_episode = jax.random.uniform(coin_key, (num_envs,)) < b.random_episodes

    def step(carry, step_key):
      env_state, obs, random_episode = carry
      act_key, coin_key = jax.random.split(step_key)
      action = _actions(expert, b, obs, random_episode, act_key, env.num_actions)
      env_state, ts, final = jax.vmap(env.step_autoreset, in_axes=(0, 0, None))(env_state, action, env_params)
      coin = jax.random.uniform(coin_key, (num_envs,)) < b.random_episodes
      record = (obs, action, ts.reward, ts.discount, ts.last(), final, random_episode)
      return (env_state, ts.observation, jnp.where(ts.last(), coin, random_episode)), record

    _, records = jax.lax.scan(
      step, (env_state, ts.observation, random_episode), jax.random.split(key, num_steps)
    )
    return records

  return Records(*jax.device_get(run(key)))


def collect_host(
  env: HostEnvironment, expert: Expert | None, b: Behaviour, num_steps: int, seed: int
) -> Records:
  """`num_steps` steps of the behaviour in the host env's B envs (reset with `seed`)."""
  num_envs, key = env.num_envs, jax.random.PRNGKey(seed)
  rng = np.random.default_rng(seed)
  act = jax.jit(expert.act) if expert is not None else None
  obs = env.reset(seed).observation
  random_episode = rng.random(num_envs) < b.random_episodes
  rows = []
  for _ in range(num_steps):
    key, act_key = jax.random.split(key)
    action = rng.integers(0, env.num_actions, num_envs).astype(np.int32)
    if act is not None:
      use_random = random_episode | (rng.random(num_envs) < b.epsilon)
      action = np.where(use_random, action, np.asarray(act(obs, act_key))).astype(np.int32)
    hs = env.step(action)
    ts = hs.timestep
    last = ts.step_type == 2
    rows.append((obs, action, ts.reward, ts.discount, last, hs.final_observation, random_episode))
    random_episode = np.where(last, rng.random(num_envs) < b.random_episodes, random_episode)
    obs = ts.observation
  return Records(*(np.stack(column) for column in zip(*rows)))


def episodes(records: Records) -> tuple[list[offline_data.Episode], np.ndarray]:
  """The complete episodes of each env, in env order (unfinished ones dropped), and whether
  each was a uniform-random episode."""
  found, random_flags = [], []
  for b in range(records.action.shape[1]):
    start = 0
    for end in np.nonzero(records.last[:, b])[0]:
      steps = slice(start, end + 1)
      discount = records.discount[steps, b]
      last = np.zeros(end + 1 - start, bool)
      last[-1] = True
      found.append(
        offline_data.Episode(
          observations=np.concatenate([records.observation[steps, b], records.final[end : end + 1, b]]),
          actions=records.action[steps, b].astype(np.int32),
          rewards=records.reward[steps, b].astype(np.float32),
          terminations=last & (discount == 0),
          truncations=last & (discount > 0),
        )
      )
      random_flags.append(bool(records.random_episode[start, b]))
      start = end + 1
  return found, np.asarray(random_flags, bool)


def dataset_id(prefix: str, env_name: str, kind: str) -> str:
  """`<prefix>/<env>/<kind>-v0`, the env's path separators replaced by '-'."""
  return f"{prefix}/{env_name.replace('/', '-')}/{kind}-v0"


def build(
  env_name: str,
  kinds: Sequence[str],
  steps: int,
  expert_steps: int,
  seed: int = 0,
  epsilon: float = 0.5,
  num_envs: int = 16,
  root: str | None = None,
  prefix: str = "lpg",
  overwrite: bool = False,
  command: str = "",
) -> list[offline_data.Dataset]:
  """Trains the expert (if a kind needs it), collects and writes one dataset per kind."""
  kinds = list(dict.fromkeys(kinds))
  plans = [behaviour(k, epsilon) for k in kinds]
  for name, value in (("steps", steps), ("expert_steps", expert_steps), ("num_envs", num_envs)):
    if value < 1:
      raise ConfigError(f"--{name} must be a positive integer, got {value}")
  if not 0.0 <= epsilon <= 1.0:
    raise ConfigError(f"--epsilon must lie in [0, 1], got {epsilon}")
  ids = [dataset_id(prefix, env_name, k) for k in kinds]
  existing = [i for i in ids if i in offline_data.list_local(root)]
  if existing and not overwrite:
    raise offline_data.DatasetError(
      f"dataset {existing[0]} exists in {offline_data.root(root)}; pass --overwrite"
    )
  host = env_registry.is_host(env_name)
  env = None if host else env_registry.make(env_name)
  needs_expert = any(p.kind != "random" for p in plans)
  start = time.time()
  expert = train_expert(env_name, expert_steps, seed) if needs_expert else None
  expert_s = time.time() - start
  env_params = expert.env_params if expert is not None else None
  if not host and env_params is None:
    env_params = env.sample_params(jax.random.PRNGKey(seed))
  num_steps = max(1, math.ceil(steps / num_envs))
  made = []
  for i, (kind, plan, ds_id) in enumerate(zip(kinds, plans, ids)):
    policy = None if plan.kind == "random" else expert
    collect_seed = seed * 1000 + i + 1
    if host:
      with env_registry.make_host(env_name, num_envs) as host_env:
        records = collect_host(host_env, policy, plan, num_steps, collect_seed)
        num_actions = host_env.num_actions
    else:
      records = collect_jax(
        env, env_params, policy, plan, num_envs, num_steps, jax.random.PRNGKey(collect_seed)
      )
      num_actions = env.num_actions
    eps, random_flags = episodes(records)
    if not eps:
      raise offline_data.DatasetError(
        f"no episode of {env_name} ended within {num_steps} steps per env; raise --steps"
      )
    returns = np.asarray([float(e.rewards.sum()) for e in eps])
    metadata = {
      "behaviour": kind,
      "epsilon": plan.epsilon,
      "random_episode_fraction": float(random_flags.mean()),
      "transitions": int(sum(len(e.actions) for e in eps)),
      "episodes": len(eps),
      "seed": seed,
      "collect_seed": collect_seed,
      "average_return": float(returns.mean()),
      "return_std": float(returns.std()),
      "expert": None
      if expert is None
      else {
        "algorithm": "A2C, actor_critic agent (meta_test settings)",
        "train_steps": expert.train_steps,
        "train_curve": [float(x) for x in expert.curve],
        "train_wall_s": round(expert_s, 1),
      },
      "command": command,
    }
    if not host:
      metadata[offline.ENV_PARAMS] = offline.params_to_json(env_params)
    offline_data.write(
      ds_id,
      eps,
      num_actions,
      env_name,
      metadata,
      root=root,
      gym_env_id=env_name[len(env_registry.GYM_PREFIX) :]
      if env_name.startswith(env_registry.GYM_PREFIX)
      else None,
      overwrite=overwrite,
    )
    made.append(offline_data.load(ds_id, root))
  return made


_ENV = flags.DEFINE_string("env", None, "Environment to collect on (a JAX env of ours or gym/<id>).")
_KINDS = flags.DEFINE_list("kinds", list(KINDS), f"Datasets to make: {', '.join(KINDS)}.")
_STEPS = flags.DEFINE_integer("steps", 50_000, "Transitions per dataset (whole episodes; about).")
_EXPERT_STEPS = flags.DEFINE_integer("expert_steps", 1_000_000, "Env steps of the expert's A2C training.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the expert, the env parameters and the collection.")
_EPSILON = flags.DEFINE_float("epsilon", 0.5, "noisy: probability of a uniform-random action per step.")
_NUM_ENVS = flags.DEFINE_integer("num_envs", 16, "Parallel envs the behaviour acts in.")
_ROOT = flags.DEFINE_string(
  "root", None, "Minari dataset root (default: $MINARI_DATASETS_PATH or ~/.minari/datasets)."
)
_PREFIX = flags.DEFINE_string("prefix", "lpg", "Namespace of the dataset ids.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace datasets with the same ids.")


def run(argv: list[str]) -> None:
  if len(argv) > 1:
    raise ConfigError(f"unexpected arguments {argv[1:]}")
  if not _ENV.value:
    raise ConfigError("--env is required, e.g. --env=tabular_dense or --env=gym/CartPole-v1")
  env_registry.validate(_ENV.value)
  made = build(
    _ENV.value,
    _KINDS.value,
    _STEPS.value,
    _EXPERT_STEPS.value,
    _SEED.value,
    _EPSILON.value,
    _NUM_ENVS.value,
    _ROOT.value,
    _PREFIX.value,
    _OVERWRITE.value,
    command=" ".join(["python -m harness.datasets", *sys.argv[1:]]),
  )
  print(f"{'dataset':40s} {'episodes':>8s} {'transitions':>11s} {'average return':>15s}")
  for d in made:
    m = d.metadata
    print(f"{d.dataset_id:40s} {d.num_episodes:8d} {d.num_transitions:11d} {m['average_return']:15.2f}")
  print(f"wrote {', '.join(d.path for d in made)}")


def main(argv: list[str]) -> None:
  logging.set_verbosity(logging.WARNING)
  try:
    run(argv)
  except (
    ConfigError,
    UnknownEnvironmentError,
    UnsupportedEnvironmentError,
    offline_data.DatasetError,
    OSError,
  ) as e:
    cli.fail("harness.datasets", str(e))


if __name__ == "__main__":
  app.run(main, flags_parser=cli.flags_parser("harness.datasets"))
