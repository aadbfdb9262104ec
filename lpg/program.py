"""A Launchpad-style meta-training program: nodes, built from a config, run by a launcher.

Nodes (each a bundle of pure, jittable functions; the launcher decides where they run):
  * PopulationWorker: owns lifetimes (all of them, or a shard: `shard(i, n)`) and computes
    the summed meta-gradient of the current eta over them (`lpg.meta_learner.MetaGradient`).
  * MetaLearnerNode: averages workers' meta-gradients, clips, takes Adam steps on eta and
    feeds each training env's bandit with the lifetimes that ended.
  * Evaluator: trains fresh agents with a frozen eta on held-out envs (`harness.evaluation`,
    the meta-test's own path).
`lpg/launch/local.py` runs all of them in one process, fusing a worker step and a learner
step into one jitted call; `lpg/launch/ray.py` places them on a Ray cluster.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import chex
import jax
import ml_collections

from environments import registry
from harness import config as meta_test_config
from harness import evaluation
from inner_agents.actor_critic import agent as actor_critic
from inner_agents.agent import ConfigError
from inner_agents.drivers.on_policy import Trainer
from lpg import bandit, meta_learner, meta_objective, population
from lpg.network import LPGNetworkConfig
from lpg.rule import LPGRule

AGENT = actor_critic.SPEC.name  # LPG meta-trains the paper's agent.


def env_list(text: str) -> list[str]:
  return [name.strip() for name in text.split(",") if name.strip()]


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises ConfigError naming the first invalid field."""
  positive = [
    "lifetimes_per_env",
    "num_envs",
    "unroll_length",
    "num_inner_updates",
    "num_meta_steps",
    "log_every",
    "keep_checkpoints",
    "eval_seeds",
    "eval_env_steps",
  ]
  for field in positive:
    if not isinstance(config[field], int) or config[field] < 1:
      raise ConfigError(f"config.{field} must be a positive integer, got {config[field]!r}")
  for field in ("hidden_size", "phi_size", "y_size"):
    if config.lpg[field] < 1:
      raise ConfigError(f"config.lpg.{field} must be a positive integer, got {config.lpg[field]!r}")
  if config.lifetime_steps < 0 or config.eval_every < 0:
    raise ConfigError("config.lifetime_steps and config.eval_every must be >= 0")
  for field in (
    "meta_learning_rate",
    "max_grad_norm",
    "bandit_tau",
    "critic_learning_rate_sgd",
    "critic_learning_rate_adam",
  ):
    if not config[field] > 0:
      raise ConfigError(f"config.{field} must be > 0, got {config[field]!r}")
  if not isinstance(config.num_workers, int) or config.num_workers < 1:
    raise ConfigError(f"config.num_workers must be a positive integer, got {config.num_workers!r}")
  if config.ray_mode not in ("sync", "async"):
    raise ConfigError(f"config.ray_mode must be 'sync' or 'async', got {config.ray_mode!r}")
  if config.max_staleness < 0 or config.ray_max_restarts < 0:
    raise ConfigError("config.max_staleness and config.ray_max_restarts must be >= 0")
  if not config.ray_timeout_s > 0 or not config.ray_cpus_per_worker > 0:
    raise ConfigError("config.ray_timeout_s and config.ray_cpus_per_worker must be > 0")
  if not env_list(config.train_envs):
    raise ConfigError("config.train_envs is empty")
  for name in env_list(config.train_envs) + env_list(config.eval_envs):
    registry.entry(name)  # UnknownEnvironmentError names the valid choices.
  for name in env_list(config.train_envs):
    settings = env_settings(config, name)
    for field in ("learning_rates", "y_costs"):
      grid = settings[field]
      if not grid or not all(isinstance(x, int | float) and x > 0 for x in grid):
        raise ConfigError(f"config.env_settings: {name}'s {field} must be positive numbers, got {grid!r}")
    if not isinstance(settings.lifetime_steps, int) or settings.lifetime_steps < 1:
      raise ConfigError(f"config.env_settings: {name}'s lifetime_steps must be a positive integer")


def env_settings(config: ml_collections.ConfigDict, name: str) -> ml_collections.ConfigDict:
  """Table 3's bandit grid and lifetime budget for training env `name` (by name, else family)."""
  for key in (name, registry.family(name)):
    if key in config.env_settings:
      return config.env_settings[key]
  raise ConfigError(
    f"config.env_settings has no entry for {name} or its family {registry.family(name)}; "
    f"it has {', '.join(config.env_settings)}"
  )


def make_rule(config: ml_collections.ConfigDict) -> LPGRule:
  return LPGRule(LPGNetworkConfig(config.lpg.hidden_size, config.lpg.phi_size, config.lpg.y_size))


def _population(name: str, rule: LPGRule, config: ml_collections.ConfigDict) -> population.Population:
  env = registry.make(name)
  agent = actor_critic.make(
    name, env.observation_spec(), env.num_actions, actor_critic.ActorCriticConfig(y_size=config.lpg.y_size)
  )
  settings = env_settings(config, name)
  critic_lr = (
    config.critic_learning_rate_sgd if agent.optimizer == "sgd" else config.critic_learning_rate_adam
  )
  return population.Population(
    # The critic bootstraps where a time limit cut an episode (the rule does not).
    trainer=Trainer(env, agent, rule, config.num_envs, config.unroll_length, final_observations=True),
    critic=agent,  # The critic has the agent's network (its value head only is trained).
    arms=bandit.arm_grid(tuple(settings.learning_rates), tuple(settings.y_costs)),
    num_lifetimes=config.lifetimes_per_env,
    critic_learning_rate=critic_lr,
    config=population.PopulationConfig(
      lifetime_steps=config.lifetime_steps or settings.lifetime_steps,
      entropy_collapse=config.entropy_collapse,
      bandit_tau=config.bandit_tau,
      bandit_rho=config.bandit_rho,
      use_bandit=config.use_bandit,
    ),
  )


@dataclasses.dataclass(frozen=True, eq=False)
class PopulationWorker:
  """Owns (a shard of) the lifetimes; `step(eta, bandits, lifetimes) -> (output, lifetimes)`."""

  meta_gradient: meta_learner.MetaGradient

  @property
  def parts(self) -> tuple[meta_learner.Part, ...]:
    return self.meta_gradient.parts

  def shard(self, index: int, count: int) -> PopulationWorker:
    """The worker owning shard `index` of `count` of the lifetimes."""
    return PopulationWorker(self.meta_gradient.shard(index, count))

  def init(self, key: chex.PRNGKey) -> tuple[population.Lifetime, ...]:
    return self.meta_gradient.init(key)

  def step(self, eta: Any, bandits: Any, lifetimes: Any):
    return self.meta_gradient.step(eta, bandits, lifetimes)

  def steps_per_meta_step(self) -> int:
    return self.meta_gradient.steps_per_meta_step()


@dataclasses.dataclass(frozen=True, eq=False)
class MetaLearnerNode:
  """Owns eta, its optimiser and the bandits; applies workers' outputs."""

  learner: meta_learner.MetaLearner
  rule: LPGRule
  num_envs: int

  def init(self, key: chex.PRNGKey) -> meta_learner.MetaLearnerState:
    return self.learner.init(self.rule.init_meta_params(key))

  def apply(
    self,
    state: meta_learner.MetaLearnerState,
    bandits: tuple[bandit.BanditState, ...],
    outputs: Sequence[meta_learner.WorkerOutput],
    parts: Sequence[Sequence[meta_learner.Part]],
  ):
    """Averages the outputs' meta-gradients, steps eta and feeds the bandits.

    Returns (state, bandits, MetaStepMetrics, meta-gradient norm).
    """
    grads, reports, metrics = meta_learner.combine(outputs, parts, self.num_envs)
    state, grad_norm = self.learner.apply(state, grads)
    bandits = tuple(b if r is None else population.update_bandit(b, r) for b, r in zip(bandits, reports))
    return state, bandits, metrics, grad_norm


@dataclasses.dataclass(frozen=True, eq=False)
class Evaluator:
  """Trains fresh agents with a frozen eta on held-out envs."""

  rule: LPGRule
  envs: tuple[str, ...]
  config: ml_collections.ConfigDict  # a meta_test config
  seeds: int
  env_steps: int

  def evaluate(self, eta: Any) -> list[evaluation.EvalResult]:
    return [
      evaluation.evaluate(env, AGENT, self.rule, eta, self.config, self.seeds, self.env_steps)
      for env in self.envs
    ]


@dataclasses.dataclass(frozen=True, eq=False)
class Program:
  """The meta-training program: its nodes and the config they were built from."""

  config: ml_collections.ConfigDict
  worker: PopulationWorker
  learner: MetaLearnerNode
  evaluator: Evaluator

  @staticmethod
  def keys(key: chex.PRNGKey) -> tuple[chex.PRNGKey, chex.PRNGKey]:
    """(learner key, worker key) of a run seeded with `key`; a shard inits from the latter."""
    learner_key, worker_key = jax.random.split(key)
    return learner_key, worker_key

  def init(self, key: chex.PRNGKey) -> dict[str, Any]:
    """The whole state: {'learner': MetaLearnerState, 'bandits': one per training env,
    'lifetimes': one [L] batch per training env}."""
    learner_key, worker_key = self.keys(key)
    return {
      "learner": self.learner.init(learner_key),
      "bandits": self.worker.meta_gradient.init_bandits(),
      "lifetimes": self.worker.init(worker_key),
    }

  def steps_per_meta_step(self) -> int:
    return self.worker.steps_per_meta_step()


def build(config: ml_collections.ConfigDict) -> Program:
  """Builds the program's nodes from a validated config."""
  validate(config)
  rule = make_rule(config)
  pops = [_population(name, rule, config) for name in env_list(config.train_envs)]
  objective = meta_objective.MetaObjectiveConfig(
    y_entropy_cost=config.y_entropy_cost,
    pi_hat_l2_cost=config.pi_hat_l2_cost,
    y_hat_l2_cost=config.y_hat_l2_cost,
    critic_lambda=config.critic_lambda,
    normalize_advantages=config.normalize_advantages,
  )
  mg = meta_learner.MetaGradient(pops, config.num_inner_updates, objective)
  learner = meta_learner.MetaLearner(config.meta_learning_rate, config.max_grad_norm)
  eval_config = meta_test_config.get_config()
  eval_config.num_envs = config.num_envs
  eval_config.unroll_length = config.unroll_length
  eval_config[AGENT].y_size = config.lpg.y_size
  eval_config.num_curve_points = 10
  evaluator = Evaluator(
    rule, tuple(env_list(config.eval_envs)), eval_config, config.eval_seeds, config.eval_env_steps
  )
  return Program(config, PopulationWorker(mg), MetaLearnerNode(learner, rule, len(pops)), evaluator)
