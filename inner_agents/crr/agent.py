"""Critic Regularized Regression (Wang, Novikov, Zolna et al., NeurIPS 2020) as an inner agent.

An offline agent: it learns from a fixed dataset of someone else's behaviour and never acts
while learning. Two networks, each with a target copy hard-copied every 100 updates (acme):

  critic (TD on the learned policy; discrete actions: expected SARSA, exact):
    L_Q = mean_t[ 1/2 (Q(s_t, a_t) - (r_t + gamma d_t sum_a pi'(a|s'_t) Q'(s'_t, a)))^2 ]
  policy (the paper's Eq. 2, a weight per dataset action, stop-gradient'ed as in acme):
    L_pi = - mean_t[ sg(pi_hat_t) log pi(a_t|s_t) ] + y_cost mean_t[ KL(y(s_t) || y_hat_t) ]

where ' marks target networks, s'_t is the state a_t reached and d_t = 0 where the episode
terminated. pi_hat comes from the rule: CRR's f(A) with the online critic and policy
(native `crr`: min(exp(A/beta), 20); `crr_binary`, `crr_max`, `crr_binary_max`; `bc`: 1;
`inner_agents.rules.crr`), or from any other rule the agent is given: the learned LPG rule
or A2C's advantage replaces f(A) and nothing else (the critic is trained the same way; a
rule's y_hat trains the y head, which only such rules use). Those rules read the data as
if the agent's own (`RuleInputs`: pi(a_t|s_t) of the policy being trained on mu's
actions, v(s) = sum_a pi(a|s) Q(s, a)), so they run only with an explicit opt-in.
`swap_filter` optionally passes a swapped rule's pi_hat through CRR's non-negative f
(the sheet's hybrid arm). Each update takes two Adam steps (policy, critic) from one batch
of B windows of T consecutive dataset transitions (`inner_agents.types.Windows`).

Differences from the paper, for this CPU: the critic is a plain (not distributional) Q
trained by MSE, as in acme's JAX agent; networks are MLP 64-64 (the fact sheet's small
version; image observations keep the actor-critic preset's conv layers first); V is the
exact expectation over the discrete policy rather than 4 sampled actions.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, NamedTuple

import chex
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax
from dm_env import specs

from inner_agents import losses, networks
from inner_agents.actor_critic import presets as actor_critic_presets
from inner_agents.agent import AgentEntry, AgentSpec, ConfigError
from inner_agents.rules import crr as crr_rules
from inner_agents.rules.base import RuleInputs, Targets, UpdateRule, check_inputs, check_targets
from inner_agents.types import AgentOutput, Windows

SPEC = AgentSpec(
  name="crr",
  provides=frozenset({"pi", "y", "v", "q"}),
  data_regime="offline",
  native_rule="crr",
  rule_roles=("policy",),
  summary="Critic Regularized Regression (offline): pi and y heads, a Q critic with target networks",
)
SWAP_FILTERS = ("none", "exp", "binary")
EVAL_POLICIES = ("sample", "greedy")


@dataclasses.dataclass(frozen=True)
class CRRConfig:
  """The agent's settings (`meta_test.py --config.crr.<field>`); defaults: acme's JAX CRR
  (Adam 3e-4 for both networks, gamma 0.99, target copy every 100 updates, beta 1) at the
  fact sheet's small size (MLP 64-64).

  Attributes:
    y_size: m, bins of the y head (for rules with a y_hat, e.g. LPG; 30 as in LPG).
    hidden_sizes: the MLP layers of both networks.
    policy_learning_rate, critic_learning_rate: Adam step sizes.
    discount: gamma of the critic's target (and given to rules).
    target_update_period: updates between hard copies of the target networks.
    y_cost: alpha_y, weight of KL(y || y_hat) for rules that give y_hat.
    swap_filter: a swapped-in rule's pi_hat (one that assumes on-policy data: a2c, LPG) as
      is ('none') or through CRR's f: 'exp' min(exp(pi_hat), 20) or 'binary' 1[pi_hat > 0]
      (off-policy rules, CRR's own and bc, are never filtered).
    eval_episodes: episodes per evaluation of the learned policy in the real environment.
    eval_policy: 'sample' a ~ pi(.|s) (the learned stochastic policy) or 'greedy' argmax.
    eval_max_steps: cap on an evaluation episode where the env has no time limit of its own.
  """

  y_size: int = 30
  hidden_sizes: tuple[int, ...] = (64, 64)
  policy_learning_rate: float = 3e-4
  critic_learning_rate: float = 3e-4
  discount: float = 0.99
  target_update_period: int = 100
  y_cost: float = 0.5
  swap_filter: str = "none"
  eval_episodes: int = 32
  eval_policy: str = "sample"
  eval_max_steps: int = 1000

  def __post_init__(self):
    object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
    for field in ("y_size", "target_update_period", "eval_episodes", "eval_max_steps"):
      value = getattr(self, field)
      if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"crr.{field} must be a positive integer, got {value!r}")
    if not all(isinstance(s, int) and s > 0 for s in self.hidden_sizes):
      raise ConfigError(f"crr.hidden_sizes must be positive integers, got {self.hidden_sizes!r}")
    for field in ("policy_learning_rate", "critic_learning_rate", "y_cost"):
      value = getattr(self, field)
      if (
        isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0
      ):
        raise ConfigError(f"crr.{field} must be a non-negative number, got {value!r}")
    if not 0.0 <= self.discount <= 1.0:
      raise ConfigError(f"crr.discount must lie in [0, 1], got {self.discount!r}")
    if self.swap_filter not in SWAP_FILTERS:
      raise ConfigError(f"crr.swap_filter must be one of {', '.join(SWAP_FILTERS)}, got {self.swap_filter!r}")
    if self.eval_policy not in EVAL_POLICIES:
      raise ConfigError(
        f"crr.eval_policy must be one of {', '.join(EVAL_POLICIES)}, got {self.eval_policy!r}"
      )


class HParams(NamedTuple):
  """Per-run hyperparameters (arrays, so seeds can vmap over them)."""

  policy_learning_rate: chex.Numeric
  critic_learning_rate: chex.Numeric
  discount: chex.Numeric
  y_cost: chex.Numeric


class CRRState(NamedTuple):
  """Online and target parameters of both networks, their Adam states and the update count."""

  policy: hk.Params
  critic: hk.Params
  target_policy: hk.Params
  target_critic: hk.Params
  policy_opt: optax.OptState
  critic_opt: optax.OptState
  steps: chex.Array


class LearnStats(NamedTuple):
  policy_loss: chex.Array
  critic_loss: chex.Array
  mean_weight: chex.Array  # mean pi_hat (after any swap filter)
  positive_weight: chex.Array  # fraction of pi_hat > 0
  policy_entropy: chex.Array
  kl: chex.Array


def filter_pi_hat(pi_hat: chex.Array, swap_filter: str) -> chex.Array:
  """A swapped rule's pi_hat through CRR's non-negative f (config `swap_filter`)."""
  if swap_filter == "none":
    return pi_hat
  return crr_rules.weight(pi_hat, swap_filter)


@dataclasses.dataclass(frozen=True, eq=False)
class CRRAgent:
  """CRR for one environment (see the module docstring).

  Attributes:
    policy: apply(params, obs [...]) -> AgentOutput [...] (logits, y_logits; value unused).
    critic: apply(params, obs [...]) -> AgentOutput whose logits [..., A] are Q(s, .).
    num_actions: A.
    config: the agent's settings.
    description: one line: the agent and its networks.
  """

  spec: ClassVar[AgentSpec] = SPEC

  policy: hk.Transformed
  critic: hk.Transformed
  num_actions: int
  config: CRRConfig = CRRConfig()
  description: str = "crr"

  @property
  def _optimizer(self) -> optax.GradientTransformation:
    return optax.scale_by_adam()

  def init(self, key: chex.PRNGKey, observation: chex.Array) -> CRRState:
    policy_key, critic_key = jax.random.split(key)
    policy = self.policy.init(policy_key, observation)
    critic = self.critic.init(critic_key, observation)
    opt = self._optimizer
    return CRRState(
      policy, critic, policy, critic, opt.init(policy), opt.init(critic), jnp.zeros((), jnp.int32)
    )

  def predict(self, state: CRRState, observation: chex.Array) -> AgentOutput:
    return self.policy.apply(state.policy, observation)

  def act(
    self, state: CRRState, observation: chex.Array, key: chex.PRNGKey
  ) -> tuple[chex.Array, AgentOutput]:
    """a ~ pi(.|s) (or its argmax, config `eval_policy`) for observations [B, ...]."""
    out = self.predict(state, observation)
    if self.config.eval_policy == "greedy":
      action = jnp.argmax(out.logits, axis=-1)
    else:
      action = jax.random.categorical(key, out.logits)
    return action.astype(jnp.int32), out

  def q_values(self, params: hk.Params, observation: chex.Array) -> chex.Array:
    """Q(s, .) [..., A] for observations [..., *obs_shape]."""
    return self.critic.apply(params, observation).logits

  def critic_target(self, state: CRRState, windows: Windows, gamma: chex.Numeric) -> chex.Array:
    """r_t + gamma d_t sum_a pi'(a|s'_t) Q'(s'_t, a) [T, B] with the target networks."""
    q_next = self.q_values(state.target_critic, windows.next_observation)  # [T, B, A]
    pi_next = jax.nn.softmax(self.policy.apply(state.target_policy, windows.next_observation).logits)
    v_next = jnp.sum(pi_next * q_next, axis=-1)
    return jax.lax.stop_gradient(windows.reward + gamma * windows.discount * v_next)

  def critic_loss(
    self, params: hk.Params, windows: Windows, target: chex.Array
  ) -> tuple[chex.Array, chex.Array]:
    """(L_Q on the windows' T steps, Q(s, .) [T+1, B, A] on their T+1 observations)."""
    q = self.q_values(params, windows.observation)  # [T+1, B, A]
    q_a = jnp.take_along_axis(q[:-1], windows.action[..., None], axis=-1)[..., 0]
    chex.assert_equal_shape([q_a, target])
    return 0.5 * jnp.mean(jnp.square(q_a - target)), q

  def rule_inputs(
    self,
    state: CRRState,
    windows: Windows,
    out: AgentOutput,
    q: chex.Array,
    gamma: chex.Numeric,
    consumes: frozenset,
  ) -> RuleInputs:
    """RuleInputs [T, B] from the online networks' outputs `out` and Q(s, .) `q` [T+1, B, A]
    on the windows' observations (all stop-gradient'ed): pi(a_t|s_t) of the policy being
    trained, v(s) = sum_a pi(a|s) Q(s, a), and q, pi, a."""
    out, q = jax.lax.stop_gradient((out, q))
    critic = jax.lax.stop_gradient(state.critic)
    pi = jax.nn.softmax(out.logits)  # [T+1, B, A]
    v_tp1 = None
    if "v" in consumes:  # From the state each step reached (a truncated episode's final one too).
      pi_next = jax.nn.softmax(
        self.policy.apply(jax.lax.stop_gradient(state.policy), windows.next_observation).logits
      )
      v_tp1 = jnp.sum(pi_next * self.q_values(critic, windows.next_observation), axis=-1)
    return RuleInputs(
      r_t=windows.reward,
      discount_t=gamma * windows.discount,
      end_t=windows.end,
      gamma=gamma,
      pi_a_t=jnp.take_along_axis(pi[:-1], windows.action[..., None], axis=-1)[..., 0],
      y_t=jax.nn.softmax(out.y_logits),
      v_t=jnp.sum(pi * q, axis=-1),
      v_tp1=v_tp1,
      q_t=q,
      a_t=windows.action,
      pi_t=pi,
    )

  def learn(
    self,
    state: CRRState,
    trajectory: Windows,
    outputs: Any,
    rule: UpdateRule,
    meta_params: Any,
    hparams: HParams,
  ) -> tuple[CRRState, LearnStats, Targets]:
    """One update from B windows [T, B]: the rule's weights, a policy and a critic Adam step,
    and the periodic target copy. `outputs` is unused (the policy's outputs on the windows
    are computed here, with their gradient)."""
    del outputs
    windows = trajectory
    target = self.critic_target(state, windows, hparams.discount)
    (c_loss, q), c_grads = jax.value_and_grad(self.critic_loss, has_aux=True)(state.critic, windows, target)

    def policy_loss(params):
      out = self.policy.apply(params, windows.observation)  # [T+1, B, ...]
      inputs = self.rule_inputs(state, windows, out, q, hparams.discount, rule.consumes)
      check_inputs(inputs, rule.consumes)
      targets = rule.targets(meta_params, inputs)
      check_targets(targets, inputs)
      pi_hat = jax.lax.stop_gradient(targets.pi_hat)
      if rule.on_policy:  # A swapped-in rule (CRR's own and bc are off-policy rules).
        pi_hat = filter_pi_hat(pi_hat, self.config.swap_filter)
      logits = out.logits[:-1]
      loss = -jnp.mean(pi_hat * losses.log_prob(logits, windows.action))
      kl = jnp.zeros(())
      if targets.y_hat is not None:
        kl = jnp.mean(losses.categorical_kl(out.y_logits[:-1], jax.lax.stop_gradient(targets.y_hat)))
        loss += hparams.y_cost * kl
      aux = (pi_hat, kl, jnp.mean(losses.entropy(logits)), targets)
      return loss, aux

    (p_loss, (pi_hat, kl, entropy, targets)), p_grads = jax.value_and_grad(policy_loss, has_aux=True)(
      state.policy
    )
    opt = self._optimizer
    p_dir, policy_opt = opt.update(p_grads, state.policy_opt, state.policy)
    c_dir, critic_opt = opt.update(c_grads, state.critic_opt, state.critic)
    policy = jax.tree.map(lambda p, d: p - hparams.policy_learning_rate * d, state.policy, p_dir)
    critic = jax.tree.map(lambda p, d: p - hparams.critic_learning_rate * d, state.critic, c_dir)
    steps = state.steps + 1
    copy = steps % self.config.target_update_period == 0
    state = CRRState(
      policy=policy,
      critic=critic,
      target_policy=optax.tree_utils.tree_where(copy, policy, state.target_policy),
      target_critic=optax.tree_utils.tree_where(copy, critic, state.target_critic),
      policy_opt=policy_opt,
      critic_opt=critic_opt,
      steps=steps,
    )
    stats = LearnStats(
      policy_loss=p_loss,
      critic_loss=c_loss,
      mean_weight=jnp.mean(pi_hat),
      positive_weight=jnp.mean((pi_hat > 0).astype(jnp.float32)),
      policy_entropy=entropy,
      kl=kl,
    )
    return state, stats, targets

  def hparams(self, rule: UpdateRule) -> HParams:
    del rule  # CRR's settings do not depend on the rule (equal budgets for every arm).
    c = self.config
    return HParams(c.policy_learning_rate, c.critic_learning_rate, c.discount, c.y_cost)

  def uses_final_observation(self, rule: UpdateRule) -> bool:
    del rule
    return True  # The critic bootstraps from the state every transition reached.


class StateEmbeddingNet(hk.Module):
  """An MLP on one-hot encodings of integer states, its first layer computed as a lookup:
  obs int [...] -> AgentOutput [...] (logits and y_logits; value 0, unused)."""

  def __init__(self, num_states: int, num_actions: int, y_size: int, hidden_sizes: tuple[int, ...]):
    super().__init__(name="state_mlp")
    self._shape = (num_states, num_actions, y_size)
    self._hidden_sizes = hidden_sizes

  def __call__(self, obs: chex.Array) -> AgentOutput:
    n, a, m = self._shape
    # one_hot(s) @ W + b = W[s] + b, W initialised as hk.Linear's with fan_in n.
    w_init = hk.initializers.TruncatedNormal(1.0 / np.sqrt(n))
    x = hk.get_parameter("w", (n, self._hidden_sizes[0]), init=w_init)[obs]
    x = jax.nn.relu(x + hk.get_parameter("b", (self._hidden_sizes[0],), init=jnp.zeros))
    for size in self._hidden_sizes[1:]:
      x = jax.nn.relu(hk.Linear(size)(x))
    logits = hk.Linear(a, w_init=jnp.zeros, name="policy")(x)
    y_logits = hk.Linear(m, name="y")(x)
    return AgentOutput(logits=logits, y_logits=y_logits, value=jnp.zeros(obs.shape, jnp.float32))


def make(env_name: str, obs_spec: specs.Array, num_actions: int, config: CRRConfig | None = None) -> CRRAgent:
  """CRR for `env_name`: MLP `hidden_sizes` on vectors (and on one-hot states for tabular
  envs), after the actor-critic preset's conv layers on images."""
  config = config or CRRConfig()
  layers = [f"D{s}" for s in config.hidden_sizes]
  if networks.is_tabular(obs_spec):
    n = networks.num_states(obs_spec)

    def make_net(outputs: int, y_size: int) -> hk.Transformed:
      return hk.without_apply_rng(
        hk.transform(lambda obs: StateEmbeddingNet(n, outputs, y_size, config.hidden_sizes)(obs))
      )

    # The critic: the same network, its A policy outputs read as Q(s, .).
    policy, critic = make_net(num_actions, config.y_size), make_net(num_actions, 1)
    return CRRAgent(policy, critic, num_actions, config, f"crr({'-'.join(layers)} on one-hot states)")
  torso = dict(mlp_sizes=config.hidden_sizes)
  if len(obs_spec.shape) == 3:
    preset = actor_critic_presets.preset(env_name, obs_spec)
    torso |= dict(
      conv_channels=preset.conv_channels,
      conv_kernels=preset.conv_kernels,
      conv_strides=preset.conv_strides,
      conv_padding=preset.conv_padding,
    )
    layers = [f"C{c}" for c in preset.conv_channels] + layers
  policy = networks.make_network(obs_spec, num_actions, config.y_size, **torso)
  critic = networks.make_network(obs_spec, num_actions, 1, **torso)  # Q(s, .): its policy outputs.
  return CRRAgent(policy, critic, num_actions, config, f"crr({'-'.join(layers)})")


# B windows of T = meta-test's unroll_length (20) steps: 13 x 20 = 260 transitions per
# update, about the batch of 256 of the fact sheet's small version.
BATCH_WINDOWS = 13

ENTRY = AgentEntry(spec=SPEC, config_class=CRRConfig, make=make, num_envs=lambda env_name: BATCH_WINDOWS)
