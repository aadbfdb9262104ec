"""The actor-critic agent: pi, y and value heads (and Eq. 7's f), trained on any rule's targets.

The agent of the LPG paper (Oh et al. 2020): a policy pi(a|s) and a categorical prediction
y(s) (m bins) that the rule's targets train, plus a value head v(s) for rules that want a
critic (A2C, its native rule). Its loss (minimised) is Eq. 2 written as a loss, plus the
terms a rule may ask for:

  L(theta) = - mean_t[ log pi(a_t|s_t) * pi_hat_t ]              (policy, Eq. 2)
             + y_cost * mean_t[ KL(y(s_t) || y_hat_t) ]           (prediction, Eq. 2)
             + value_cost * mean_t[ 1/2 (v(s_t) - v_hat_t)^2 ]     (if the rule gives v_hat)
             - entropy_cost * mean_t[ H(pi(.|s_t)) ]               (A2C's entropy bonus)

and, with Eq. 7's baseline (learned rules on Atari, `pi_hat_baseline`), pi_hat_t is
replaced by pi_hat_t - f(s_t) in the policy term (f a constant there) and
1/2 mean_t[(f(s_t) - pi_hat_t)^2] is added: f is a head of its own.

The targets (pi_hat, y_hat, v_hat) are constants with respect to theta: the rule computes
them from stop-gradient'ed agent outputs (`rule_inputs`), but they are *not*
stop-gradient'ed here, so gradients with respect to a rule's meta-parameters flow through
an update (what the meta-gradient needs). Acting samples a_t ~ pi(.|s_t).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, NamedTuple

import chex
import haiku as hk
import jax
import jax.numpy as jnp
import optax
from dm_env import specs

from inner_agents import losses, networks
from inner_agents.actor_critic import presets
from inner_agents.agent import AgentEntry, AgentSpec, ConfigError
from inner_agents.bootstrap import bootstrap_values
from inner_agents.rules.base import RuleInputs, Targets, UpdateRule, check_inputs, check_targets
from inner_agents.types import AgentOutput, Trajectory

OPTIMIZERS = ("sgd", "adam")

SPEC = AgentSpec(
  name="actor_critic",
  provides=frozenset({"pi", "y", "v"}),
  data_regime="on_policy",
  native_rule="a2c",
  rule_roles=("policy",),
  summary="the LPG paper's agent: pi, y (m bins) and v heads on a table, MLP or conv torso",
)


@dataclasses.dataclass(frozen=True)
class ActorCriticConfig:
  """The agent's settings (`meta_test.py --config.actor_critic.<field>`).

  A negative number means "the default": the environment's preset where the paper fixes
  one (Atari, Table 4), else the rule's (`UpdateRule.hparam_defaults`, `learning_rates`).

  Attributes:
    y_size: m, the number of bins of the prediction y (paper: 30).
    learning_rate: alpha_lr.
    y_cost: alpha_y, the weight of KL(y || y_hat) (paper: searched {0.1, 0.5, 1}).
    value_cost: the weight of the value regression.
    entropy_cost: the weight of the policy-entropy bonus.
    discount: gamma (negative: the preset's, 0.99; Atari 0.995).
    pi_hat_baseline: Eq. 7's baseline for learned rules: -1 the preset's (on for Atari), 0 off, 1 on.
  """

  y_size: int = 30
  learning_rate: float = -1.0
  y_cost: float = 0.5
  value_cost: float = -1.0
  entropy_cost: float = -1.0
  discount: float = -1.0
  pi_hat_baseline: int = -1

  def __post_init__(self):
    if not isinstance(self.y_size, int) or self.y_size < 1:
      raise ConfigError(f"actor_critic.y_size must be a positive integer, got {self.y_size!r}")
    for field in ("learning_rate", "y_cost", "value_cost", "entropy_cost"):
      value = getattr(self, field)
      if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"actor_critic.{field} must be a finite number, got {value!r}")
    if not (self.discount < 0 or 0.0 <= self.discount <= 1.0):
      raise ConfigError(
        f"actor_critic.discount must lie in [0, 1] (negative: the preset's), got {self.discount}"
      )
    if self.pi_hat_baseline not in (-1, 0, 1):
      raise ConfigError(
        f"actor_critic.pi_hat_baseline must be -1 (the preset's), 0 or 1, got {self.pi_hat_baseline!r}"
      )


class HParams(NamedTuple):
  """Per-run (per-lifetime) hyperparameters, arrays so that populations vmap over them.

  learning_rate: alpha_lr.  y_cost: alpha_y.  value_cost: weight of 1/2 (v - v_hat)^2.
  entropy_cost: weight of the entropy bonus (A2C; 0 for LPG, as in the paper).
  discount: gamma, given to the rule.
  """

  learning_rate: chex.Numeric
  y_cost: chex.Numeric
  value_cost: chex.Numeric
  entropy_cost: chex.Numeric
  discount: chex.Numeric


class AgentState(NamedTuple):
  params: hk.Params
  opt_state: optax.OptState


class LearnStats(NamedTuple):
  loss: chex.Array
  policy_entropy: chex.Array
  y_entropy: chex.Array
  kl: chex.Array
  value_loss: chex.Array


@dataclasses.dataclass(frozen=True, eq=False)
class ActorCriticAgent:
  """The actor-critic agent for one environment (see the module docstring).

  Attributes:
    network: the haiku network, apply(params, obs [...]) -> AgentOutput [...].
    num_actions: size of the action set.
    y_size: m, the number of categorical bins of y.
    optimizer: 'sgd' or 'adam'; the learning rate is a per-run hyperparameter.
    description: one line: the agent and its torso.
    preset: the environment's settings (meta-test defaults).
    config: the agent's settings.
    baseline: whether the network has Eq. 7's head f (used with learned rules).
  """

  spec: ClassVar[AgentSpec] = SPEC

  network: hk.Transformed
  num_actions: int
  y_size: int
  optimizer: str = "sgd"
  description: str = "actor_critic"
  preset: presets.Preset = presets.TABLE
  config: ActorCriticConfig = ActorCriticConfig()
  baseline: bool = False

  def __post_init__(self):
    if self.optimizer not in OPTIMIZERS:
      raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {self.optimizer!r}")

  @property
  def _transform(self) -> optax.GradientTransformation:
    # The step direction only; params move by -learning_rate * direction so that the
    # learning rate can be a traced, per-lifetime array.
    if self.optimizer == "sgd":
      return optax.identity()
    # eps_root > 0 keeps d sqrt(v)/dv finite where v = 0, so meta-gradients can flow
    # through Adam updates (optax's advice for meta-learning).
    return optax.scale_by_adam(eps_root=1e-8)

  def init(self, key: chex.PRNGKey, observation: chex.Array) -> AgentState:
    params = self.network.init(key, observation)
    return AgentState(params=params, opt_state=self._transform.init(params))

  def apply(self, params: hk.Params, obs: chex.Array) -> AgentOutput:
    return self.network.apply(params, obs)

  def predict(self, state: AgentState, observation: chex.Array) -> AgentOutput:
    return self.apply(state.params, observation)

  def act(
    self, state: AgentState, observation: chex.Array, key: chex.PRNGKey
  ) -> tuple[chex.Array, AgentOutput]:
    """a ~ pi(.|s) for observations [B, ...]: (int32 [B], outputs [B, ...])."""
    out = self.apply(state.params, observation)
    return jax.random.categorical(key, out.logits).astype(jnp.int32), out

  def rule_inputs(
    self, state: AgentState, trajectory: Trajectory, outputs: AgentOutput, gamma: chex.Numeric, consumes
  ) -> RuleInputs:
    """RuleInputs [T, B] from the agent's outputs on trajectory.observation [T+1, B].

    Where a truncated episode ends (`end` with a nonzero discount), the value to bootstrap
    from is v of the state reached before the reset (`trajectory.truncations`), computed
    only if the rule consumes v (`inner_agents.bootstrap`).
    """
    out = jax.lax.stop_gradient(outputs)
    probs = jax.nn.softmax(out.logits[:-1])  # [T, B, A]
    pi_a = jnp.take_along_axis(probs, trajectory.action[..., None], axis=-1)[..., 0]
    v_tp1 = None
    if "v" in consumes:
      params = jax.lax.stop_gradient(state.params)
      v_tp1 = bootstrap_values(lambda obs: self.apply(params, obs).value, trajectory, out.value[1:])
    return RuleInputs(
      r_t=trajectory.reward,
      discount_t=gamma * trajectory.discount,
      end_t=trajectory.end,
      gamma=gamma,
      pi_a_t=pi_a,
      y_t=jax.nn.softmax(out.y_logits),
      v_t=out.value,
      v_tp1=v_tp1,
    )

  def loss(
    self,
    params: hk.Params,
    trajectory: Trajectory,
    targets: Targets,
    hparams: HParams,
    use_baseline: bool = False,
  ) -> tuple[chex.Array, LearnStats]:
    """The agent loss on a trajectory [T, B] (see module docstring)."""
    out = self.apply(params, trajectory.observation[:-1])  # [T, B, ...]
    chex.assert_equal_shape([out.value, trajectory.action, targets.pi_hat])
    log_pi_a = losses.log_prob(out.logits, trajectory.action)
    policy_entropy = jnp.mean(losses.entropy(out.logits))
    pi_hat = targets.pi_hat - jax.lax.stop_gradient(out.baseline) if use_baseline else targets.pi_hat
    loss = -jnp.mean(log_pi_a * pi_hat) - hparams.entropy_cost * policy_entropy
    kl = jnp.zeros(())
    if targets.y_hat is not None:
      chex.assert_equal_shape([out.y_logits, targets.y_hat])
      kl = jnp.mean(losses.categorical_kl(out.y_logits, targets.y_hat))
      loss += hparams.y_cost * kl
    value_loss = jnp.zeros(())
    if targets.v_hat is not None:
      chex.assert_equal_shape([out.value, targets.v_hat])
      value_loss = 0.5 * jnp.mean(jnp.square(out.value - targets.v_hat))
      loss += hparams.value_cost * value_loss
    if use_baseline:  # Eq. 7: f(s) regresses onto pi_hat with weight 1.
      loss += 0.5 * jnp.mean(jnp.square(out.baseline - targets.pi_hat))
    stats = LearnStats(
      loss=loss,
      policy_entropy=policy_entropy,
      y_entropy=jnp.mean(losses.entropy(out.y_logits)),
      kl=kl,
      value_loss=value_loss,
    )
    return loss, stats

  def apply_gradients(self, state: AgentState, grads: hk.Params, learning_rate: chex.Numeric) -> AgentState:
    """theta <- theta - learning_rate * optimizer(grads)."""
    direction, opt_state = self._transform.update(grads, state.opt_state, state.params)
    params = jax.tree.map(lambda p, d: p - learning_rate * d, state.params, direction)
    return AgentState(params=params, opt_state=opt_state)

  def update(
    self,
    state: AgentState,
    trajectory: Trajectory,
    targets: Targets,
    hparams: HParams,
    use_baseline: bool = False,
  ) -> tuple[AgentState, LearnStats]:
    """One gradient step on the loss with given targets."""
    grads, stats = jax.grad(self.loss, has_aux=True)(state.params, trajectory, targets, hparams, use_baseline)
    return self.apply_gradients(state, grads, hparams.learning_rate), stats

  def learn(
    self,
    state: AgentState,
    trajectory: Trajectory,
    outputs: AgentOutput,
    rule: UpdateRule,
    meta_params: Any,
    hparams: HParams,
  ) -> tuple[AgentState, LearnStats, Targets]:
    """One update from a trajectory [T, B] and the agent's outputs on its T+1 observations:
    rule targets, then a gradient step. Returns the new state, the stats and the targets."""
    inputs = self.rule_inputs(state, trajectory, outputs, hparams.discount, rule.consumes)
    check_inputs(inputs, rule.consumes)
    targets = rule.targets(meta_params, inputs)
    check_targets(targets, inputs)
    state, stats = self.update(state, trajectory, targets, hparams, self.baseline and rule.learned)
    return state, stats, targets

  def uses_final_observation(self, rule: UpdateRule) -> bool:
    """Rules that read v bootstrap from it, also where a time limit cut an episode."""
    return "v" in rule.consumes

  def hparams(self, rule: UpdateRule) -> HParams:
    """The config's values where set (>= 0), else the preset's (Atari: Table 4), else the
    rule's defaults."""

    def pick(value: float, *defaults: float | None) -> float:
      return float(value) if value >= 0 else float(next(d for d in defaults if d is not None))

    c, p, d = self.config, self.preset, rule.hparam_defaults
    return HParams(
      learning_rate=pick(c.learning_rate, p.learning_rate, rule.learning_rates[self.optimizer]),
      y_cost=pick(c.y_cost, p.y_cost, d.get("y_cost", 0.5)),
      value_cost=pick(c.value_cost, d.get("value_cost", 0.0)),
      entropy_cost=pick(c.entropy_cost, d.get("entropy_cost", 0.0)),
      discount=pick(c.discount, p.discount),
    )


def make_agent(
  obs_spec: specs.Array,
  num_actions: int,
  y_size: int,
  preset: presets.Preset = presets.TABLE,
  config: ActorCriticConfig | None = None,
  baseline: bool = False,
) -> ActorCriticAgent:
  """An agent whose torso fits `obs_spec` (table, MLP or conv + MLP) as `preset` says."""
  config = config or ActorCriticConfig(y_size=y_size)
  net = networks.make_network(obs_spec, num_actions, y_size, **preset.torso_kwargs(), baseline=baseline)
  if networks.is_tabular(obs_spec):
    desc = "actor_critic(table)"
  else:
    layers = [f"C{c}" for c in preset.conv_channels] + [f"D{s}" for s in preset.mlp_sizes]
    desc = f"actor_critic({'-'.join(layers) or 'linear'})"
  return ActorCriticAgent(net, num_actions, y_size, preset.optimizer, desc, preset, config, baseline)


def make(
  env_name: str, obs_spec: specs.Array, num_actions: int, config: ActorCriticConfig | None = None
) -> ActorCriticAgent:
  """The agent for environment `env_name` (its preset), with `config`."""
  config = config or ActorCriticConfig()
  preset = presets.preset(env_name, obs_spec)
  baseline = preset.pi_hat_baseline if config.pi_hat_baseline < 0 else bool(config.pi_hat_baseline)
  return make_agent(obs_spec, num_actions, config.y_size, preset, config, baseline)


ENTRY = AgentEntry(
  spec=SPEC,
  config_class=ActorCriticConfig,
  make=make,
  num_envs=lambda env_name: presets.preset(env_name).num_envs,
)
