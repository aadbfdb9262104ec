"""The actor-critic agent: network shapes, loss terms with hand-worked answers, optimiser
step, Eq. 7's head, and its rule inputs (bootstrapping at truncations)."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlax
from dm_env import specs

from inner_agents import losses, networks
from inner_agents.actor_critic import agent as agent_lib
from inner_agents.actor_critic import presets
from inner_agents.rules import a2c, registry
from inner_agents.rules.base import Targets
from inner_agents.types import AgentOutput, Trajectory, Truncations
from lpg.rule import LPGRule

HP = agent_lib.HParams(learning_rate=1.0, y_cost=0.5, value_cost=0.5, entropy_cost=0.01, discount=0.9)


def _table_agent(num_states=4, num_actions=3, y_size=5, optimizer="sgd", baseline=False):
  spec = specs.BoundedArray((), np.int32, 0, num_states - 1)
  return agent_lib.make_agent(
    spec, num_actions, y_size, presets.Preset(optimizer=optimizer), baseline=baseline
  )


@pytest.mark.parametrize(
  "obs_shape,conv,mlp,desc",
  [((22,), (), (16,), "actor_critic(D16)"), ((5, 7, 3), (16,), (32,), "actor_critic(C16-D32)")],
)
def test_torso_shapes_and_uniform_initial_policy(obs_shape, conv, mlp, desc):
  spec = specs.Array(obs_shape, np.float32)
  agent = agent_lib.make_agent(spec, 9, 30, presets.Preset(conv, mlp, "adam"))
  assert agent.description == desc
  obs = jax.random.uniform(jax.random.PRNGKey(0), (4, 6, *obs_shape))
  state = agent.init(jax.random.PRNGKey(1), obs[0])
  out = agent.apply(state.params, obs)
  assert out.logits.shape == (4, 6, 9)
  assert out.y_logits.shape == (4, 6, 30)
  assert out.value.shape == (4, 6)
  np.testing.assert_allclose(out.logits, 0.0)  # zero-initialised policy head: uniform


@pytest.mark.parametrize(
  "obs_shape,convs,padding",
  [
    ((11, 11, 5), dict(conv_channels=(8, 4, 4)), "SAME"),  # random_very_dense's shape, smaller
    ((7, 6, 3), dict(conv_channels=(4,), conv_kernels=(4,), conv_strides=(2,)), "SAME"),  # uneven SAME
    ((36, 36, 4), dict(conv_channels=(4, 8, 8), conv_kernels=(8, 4, 3), conv_strides=(4, 2, 1)), "VALID"),
  ],
)
def test_patch_convs_equal_native_convs_with_the_same_parameters(obs_shape, convs, padding):
  spec = specs.Array(obs_shape, np.float32)
  nets = {
    impl: networks.make_network(spec, 3, 5, mlp_sizes=(8,), conv_padding=padding, conv_impl=impl, **convs)
    for impl in ("native", "patches")
  }
  rng = np.random.default_rng(0)  # numpy draws: no RNG kernels to compile
  obs = rng.normal(size=(2, 4, *obs_shape)).astype(np.float32)  # [seeds, batch, H, W, C]
  params = {impl: jax.jit(net.init)(jax.random.PRNGKey(1), obs[0]) for impl, net in nets.items()}
  # Same parameter names, shapes and initial values: checkpoints are interchangeable.
  assert jax.tree.structure(params["native"]) == jax.tree.structure(params["patches"])
  jax.tree.map(np.testing.assert_array_equal, params["native"], params["patches"])
  # Per-seed parameters [2, ...], as vmapped lifetimes and seeds have.
  params = jax.tree.map(
    lambda w: w + 0.1 * rng.normal(size=(2, *w.shape)).astype(np.float32), params["native"]
  )

  def value_and_grad(impl):
    def loss(p, o):
      out = nets[impl].apply(p, o)
      return jnp.sum(out.y_logits**2) + jnp.sum(jnp.sin(out.value))

    return jax.jit(jax.vmap(jax.value_and_grad(loss)))(params, obs)

  (want_value, want_grad), (value, grad) = value_and_grad("native"), value_and_grad("patches")
  np.testing.assert_allclose(value, want_value, rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), grad, want_grad)


def test_conv_impl_auto_is_patches_on_cpu_and_native_elsewhere():
  def uses_conv(obs_shape, impl):
    net = networks.make_network(specs.Array(obs_shape, np.float32), 3, 5, (4,), (8,), conv_impl=impl)
    obs = jnp.zeros((1, *obs_shape))
    params = jax.eval_shape(net.init, jax.random.PRNGKey(0), obs)
    return "conv_general_dilated" in str(jax.make_jaxpr(net.apply)(params, obs))

  native = networks.resolve_conv_impl("auto", jax.default_backend()) == "native"
  assert uses_conv((13, 13, 5), "auto") == native and uses_conv((84, 84, 4), "auto") == native
  assert uses_conv((13, 13, 5), "native") and not uses_conv((13, 13, 5), "patches")
  assert networks.resolve_conv_impl("auto", "cpu") == "patches"
  assert networks.resolve_conv_impl("auto", "gpu") == "native"
  assert networks.resolve_conv_impl("patches", "gpu") == "patches"
  with pytest.raises(ValueError, match="conv_impl='fft'"):
    networks.resolve_conv_impl("fft", "cpu")


def test_table_lookup_and_init():
  agent = _table_agent()
  state = agent.init(jax.random.PRNGKey(0), jnp.zeros((2,), jnp.int32))
  p = state.params["table"]
  assert p["logits"].shape == (4, 3) and p["y_logits"].shape == (4, 5) and p["value"].shape == (4,)
  np.testing.assert_array_equal(p["logits"], 0.0)
  assert 0.05 < float(jnp.std(p["y_logits"])) < 0.2
  obs = jnp.array([[3, 1]])
  out = agent.apply(state.params, obs)
  np.testing.assert_array_equal(out.y_logits[0, 1], p["y_logits"][1])


def test_bad_observation_shape_raises():
  with pytest.raises(ValueError, match="no torso"):
    agent_lib.make_agent(specs.Array((3, 4), np.float32), 2, 4, presets.Preset((), (8,), "adam"))
  with pytest.raises(ValueError, match="optimizer"):
    _table_agent(optimizer="rmsprop")


def test_categorical_kl_and_entropy_known_answers():
  p_logits = jnp.log(jnp.array([0.5, 0.25, 0.25]))
  q = jnp.array([0.25, 0.5, 0.25])
  expected = 0.5 * np.log(2.0) + 0.25 * np.log(0.5)
  np.testing.assert_allclose(losses.categorical_kl(p_logits, q), expected, rtol=1e-6)
  np.testing.assert_allclose(losses.categorical_kl(p_logits, jnp.exp(p_logits)), 0.0, atol=1e-7)
  np.testing.assert_allclose(losses.entropy(jnp.zeros(4)), np.log(4.0), rtol=1e-6)
  assert float(losses.entropy(jnp.array([0.0, -1e9]))) == 0.0  # collapsed: 0, not NaN
  np.testing.assert_allclose(losses.log_prob(p_logits, jnp.asarray(1)), np.log(0.25), rtol=1e-6)


def _tiny_trajectory():
  # T = 3 steps, B = 2 envs, states 0..3; episodes terminate after steps (1, 0) and (2, 1).
  observation = jnp.array([[0, 1], [2, 3], [1, 0], [3, 2]], jnp.int32)
  end = jnp.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
  return Trajectory(
    observation=observation,
    action=jnp.array([[0, 2], [1, 1], [2, 0]], jnp.int32),
    reward=jnp.array([[1.0, 0.0], [0.0, -1.0], [2.0, 0.5]]),
    discount=1.0 - end,
    end=end,
  )


def _random_table_params(agent, key):
  params = agent.init(key, jnp.zeros((1,), jnp.int32)).params
  keys = jax.random.split(key, 3)
  return jax.tree.map(
    lambda p, k: jax.random.normal(k, p.shape), params, {"table": dict(zip(sorted(params["table"]), keys))}
  )


def test_loss_matches_hand_computation():
  agent = _table_agent()
  params = _random_table_params(agent, jax.random.PRNGKey(3))
  traj = _tiny_trajectory()
  pi_hat = jnp.array([[1.0, -2.0], [0.5, 0.0], [3.0, 1.0]])
  y_hat = jax.nn.softmax(jax.random.normal(jax.random.PRNGKey(4), (3, 2, 5)))
  v_hat = jnp.array([[1.0, 2.0], [0.0, -1.0], [0.5, 0.5]])
  targets = Targets(pi_hat=pi_hat, y_hat=y_hat, v_hat=v_hat)
  loss, stats = agent.loss(params, traj, targets, HP)

  t = {k: np.asarray(v, np.float64) for k, v in params["table"].items()}
  pg, kl, vl, ent = [], [], [], []
  for i in range(3):
    for b in range(2):
      s, a = int(traj.observation[i, b]), int(traj.action[i, b])
      logp = t["logits"][s] - np.log(np.exp(t["logits"][s]).sum())
      pg.append(logp[a] * float(pi_hat[i, b]))
      ent.append(-(np.exp(logp) * logp).sum())
      logy = t["y_logits"][s] - np.log(np.exp(t["y_logits"][s]).sum())
      kl.append((np.exp(logy) * (logy - np.log(np.asarray(y_hat[i, b])))).sum())
      vl.append(0.5 * (t["value"][s] - float(v_hat[i, b])) ** 2)
  expected = -np.mean(pg) + 0.5 * np.mean(kl) + 0.5 * np.mean(vl) - 0.01 * np.mean(ent)
  np.testing.assert_allclose(loss, expected, rtol=1e-5)
  np.testing.assert_allclose(stats.kl, np.mean(kl), rtol=1e-5)
  np.testing.assert_allclose(stats.policy_entropy, np.mean(ent), rtol=1e-5)


def test_policy_gradient_on_a_table_entry():
  # d/dlogits[s] of -mean(log pi(a|s) pi_hat) = -(onehot(a) - pi(s)) * pi_hat / (T*B).
  agent = _table_agent()
  params = _random_table_params(agent, jax.random.PRNGKey(5))
  observation = jnp.array([[2], [0]], jnp.int32)
  traj = Trajectory(observation, jnp.array([[1]]), jnp.zeros((1, 1)), jnp.ones((1, 1)), jnp.zeros((1, 1)))
  targets = Targets(pi_hat=jnp.array([[2.0]]))
  hp = HP._replace(entropy_cost=0.0)
  grads = jax.grad(lambda p: agent.loss(p, traj, targets, hp)[0])(params)
  pi = jax.nn.softmax(params["table"]["logits"][2])
  expected = -(jax.nn.one_hot(1, 3) - pi) * 2.0
  np.testing.assert_allclose(grads["table"]["logits"][2], expected, rtol=1e-5)
  np.testing.assert_array_equal(grads["table"]["logits"][0], 0.0)  # s_T is not trained on
  np.testing.assert_array_equal(grads["table"]["value"], 0.0)  # no value target given


def test_a2c_gradient_equals_independent_rlax_a2c():
  """Our agent loss with the A2C rule's targets == A2C written directly with rlax."""
  agent = _table_agent()
  params = _random_table_params(agent, jax.random.PRNGKey(6))
  traj = _tiny_trajectory()
  rule = a2c.A2CRule()
  state = agent_lib.AgentState(params, None)

  def ours(p):
    out = agent.apply(p, traj.observation)
    targets = rule.targets({}, agent.rule_inputs(state, traj, out, HP.discount, rule.consumes))
    return agent.loss(p, traj, targets, HP)[0]

  def reference(p):
    out = agent.apply(p, traj.observation)
    v = out.value
    disc = HP.discount * (1.0 - traj.end)
    per_env = []
    for b in range(2):
      ret = rlax.lambda_returns(traj.reward[:, b], disc[:, b], jax.lax.stop_gradient(v[1:, b]), 1.0)
      adv = ret - v[:-1, b]
      pg = rlax.policy_gradient_loss(
        out.logits[:-1, b], traj.action[:, b], jax.lax.stop_gradient(adv), jnp.ones(3)
      )
      ent = rlax.entropy_loss(out.logits[:-1, b], jnp.ones(3))
      per_env.append(pg + HP.entropy_cost * ent + HP.value_cost * 0.5 * jnp.mean(adv**2))
    return jnp.mean(jnp.stack(per_env))

  g_ours, g_ref = jax.grad(ours)(params), jax.grad(reference)(params)
  for k in ("logits", "value"):
    np.testing.assert_allclose(g_ours["table"][k], g_ref["table"][k], rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(ours(params), reference(params), rtol=1e-5)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_update_step(optimizer):
  agent = _table_agent(optimizer=optimizer)
  state = agent.init(jax.random.PRNGKey(0), jnp.zeros((1,), jnp.int32))
  traj = _tiny_trajectory()
  targets = Targets(pi_hat=jnp.ones((3, 2)))
  hp = HP._replace(learning_rate=0.1, entropy_cost=0.0)
  new, _ = agent.update(state, traj, targets, hp)
  grads = jax.grad(lambda p: agent.loss(p, traj, targets, hp)[0])(state.params)
  delta = jax.tree.map(lambda a, b: a - b, new.params, state.params)
  if optimizer == "sgd":
    np.testing.assert_allclose(delta["table"]["logits"], -0.1 * grads["table"]["logits"], rtol=1e-6)
  else:  # Adam's first step moves each touched entry by lr * sign(grad).
    g = grads["table"]["logits"]
    touched = np.abs(np.asarray(g)) > 1e-6
    np.testing.assert_allclose(
      np.asarray(delta["table"]["logits"])[touched], -0.1 * np.sign(g)[touched], rtol=1e-3
    )


def test_random_rule_never_changes_the_agent():
  agent = _table_agent(optimizer="adam")
  state = agent.init(jax.random.PRNGKey(0), jnp.zeros((1,), jnp.int32))
  traj = _tiny_trajectory()
  out = agent.apply(state.params, traj.observation)
  rule, _ = registry.resolve("random")
  hp = HP._replace(entropy_cost=0.0)
  new, _, targets = agent.learn(state, traj, out, rule, {}, hp)
  np.testing.assert_array_equal(targets.pi_hat, 0.0)
  jax.tree.map(np.testing.assert_array_equal, new.params, state.params)
  assert hk.data_structures.tree_size(state.params) > 0


def test_rule_inputs_are_stop_gradient_and_pick_taken_action():
  agent = _table_agent(num_states=2, num_actions=2, y_size=4)
  obs = jnp.zeros((3, 1), jnp.int32)
  traj = Trajectory(obs, jnp.array([[1], [0]]), jnp.zeros((2, 1)), jnp.ones((2, 1)), jnp.zeros((2, 1)))
  state = agent.init(jax.random.PRNGKey(0), obs[0])

  def f(logits):
    out = AgentOutput(logits=logits, y_logits=jnp.zeros((3, 1, 4)), value=jnp.zeros((3, 1)))
    return jnp.sum(agent.rule_inputs(state, traj, out, 0.9, frozenset({"pi"})).pi_a_t)

  logits = jnp.log(jnp.array([[[0.25, 0.75]], [[0.6, 0.4]], [[0.5, 0.5]]]))
  np.testing.assert_allclose(f(logits), 0.75 + 0.6, rtol=1e-6)
  np.testing.assert_array_equal(jax.grad(f)(logits), 0.0)


def test_rule_inputs_bootstrap_a_truncation_from_the_state_it_reached():
  """Known answer: at a truncated end, v_tp1 is v of the final observation (not of the next
  episode's first), discount_t stays gamma, end_t is 1; at a termination discount_t is 0."""
  agent = _table_agent(num_states=6, num_actions=2, y_size=3)
  state = agent.init(jax.random.PRNGKey(0), jnp.zeros((1,), jnp.int32))
  values = jnp.arange(6.0) * 10.0  # v(s) = 10 s
  state = state._replace(params={"table": {**state.params["table"], "value": values}})
  # One env, T = 3: s0=1 -(r=1)-> s1=2 -(r=2, truncated: reached 5, reset to 0)-> s2=0 -(r=3, terminated)-> s3=4.
  traj = Trajectory(
    observation=jnp.array([[1], [2], [0], [4]], jnp.int32),
    action=jnp.zeros((3, 1), jnp.int32),
    reward=jnp.array([[1.0], [2.0], [3.0]]),
    discount=jnp.array([[1.0], [1.0], [0.0]]),
    end=jnp.array([[0.0], [1.0], [1.0]]),
    truncations=Truncations(index=jnp.array([1]), observation=jnp.array([5], jnp.int32)),  # step 1 reached 5
  )
  out = agent.apply(state.params, traj.observation)
  inputs = agent.rule_inputs(state, traj, out, 0.5, frozenset({"pi", "v"}))
  np.testing.assert_allclose(inputs.v_tp1[:, 0], [20.0, 50.0, 40.0])  # s1, final 5 (truncated), s3
  np.testing.assert_allclose(inputs.discount_t[:, 0], [0.5, 0.5, 0.0])
  np.testing.assert_array_equal(inputs.end_t[:, 0], [0.0, 1.0, 1.0])
  # A2C on them: G_2 = 3 (terminated), G_1 = 2 + 0.5 * 50 (truncated: bootstraps, stops), G_0 = 1 + 0.5 G_1.
  targets = a2c.A2CRule().targets({}, inputs)
  np.testing.assert_allclose(targets.v_hat[:, 0], [1.0 + 0.5 * 27.0, 27.0, 3.0])
  np.testing.assert_allclose(targets.pi_hat[:, 0], targets.v_hat[:, 0] - values[jnp.array([1, 2, 0])])
  # A rule that does not consume v gets no bootstrap values computed.
  assert agent.rule_inputs(state, traj, out, 0.5, frozenset({"pi", "y"})).v_tp1 is None


def test_eq7_baseline_head():
  """pi_hat' = pi_hat - f(s_t) in the policy term and f regresses onto pi_hat with weight 1
  (Eq. 7), on a head f of its own; only learned rules use it."""
  agent = _table_agent(baseline=True)
  params = agent.init(jax.random.PRNGKey(0), jnp.zeros((1,), jnp.int32)).params
  assert set(params["table"]) == {"logits", "y_logits", "value", "baseline"}
  f_table = jax.random.normal(jax.random.PRNGKey(7), (4,))
  params = {"table": {**params["table"], "baseline": f_table}}
  traj = _tiny_trajectory()
  pi_hat = jnp.array([[1.0, -2.0], [0.5, 0.0], [3.0, 1.0]])
  targets = Targets(pi_hat=pi_hat)
  hp = HP._replace(entropy_cost=0.0)
  f = f_table[traj.observation[:-1]]
  plain = agent.loss(params, traj, Targets(pi_hat=pi_hat - f), hp)[0]
  based = agent.loss(params, traj, targets, hp, use_baseline=True)[0]
  np.testing.assert_allclose(based, plain + 0.5 * jnp.mean((f - pi_hat) ** 2), rtol=1e-6)
  grads = jax.grad(lambda p: agent.loss(p, traj, targets, hp, use_baseline=True)[0])(params)
  g_f = jax.grad(lambda p: 0.5 * jnp.mean((p["table"]["baseline"][traj.observation[:-1]] - pi_hat) ** 2))(
    params
  )
  np.testing.assert_allclose(grads["table"]["baseline"], g_f["table"]["baseline"], rtol=1e-6)
  # learn uses it with a learned rule, not with A2C; the Atari preset turns it on.
  lpg_rule = LPGRule(name="x")
  assert lpg_rule.learned and not a2c.A2CRule().learned
  atari = agent_lib.make("atari/Breakout", specs.Array((84, 84, 4), np.uint8), 4)
  grid = agent_lib.make("tabular_dense", specs.BoundedArray((), np.int32, 0, 9), 9)
  assert atari.baseline and not grid.baseline


def test_hparams_come_from_config_then_preset_then_rule():
  """Atari follows Table 4; explicit settings win; otherwise the rule's defaults."""
  atari_spec = specs.Array((84, 84, 4), np.uint8)
  agent = agent_lib.make("atari/Breakout", atari_spec, 4)
  hp = agent.hparams(LPGRule())
  assert (hp.learning_rate, hp.y_cost, hp.value_cost, hp.discount) == (5e-4, 0.5, 0.0, 0.995)
  assert agent.preset.num_envs == 30 and agent.description == "actor_critic(C32-C64-C64-D512)"
  config = agent_lib.ActorCriticConfig(learning_rate=1e-3, discount=0.9)
  hp = agent_lib.make("atari/Breakout", atari_spec, 4, config).hparams(LPGRule())
  assert (hp.learning_rate, hp.discount) == (1e-3, 0.9)
  table = agent_lib.make("tabular_dense", specs.BoundedArray((), np.int32, 0, 9), 9)
  hp = table.hparams(a2c.A2CRule())
  assert (hp.learning_rate, hp.value_cost, hp.entropy_cost, hp.discount) == (10.0, 0.5, 0.01, 0.99)


@pytest.mark.parametrize(
  "field,value,match",
  [("y_size", 0, "y_size"), ("discount", 1.5, "discount"), ("pi_hat_baseline", 2, "pi_hat_baseline")],
)
def test_config_values_are_checked(field, value, match):
  with pytest.raises(agent_lib.ConfigError, match=match):
    agent_lib.ActorCriticConfig(**{field: value})


def test_presets_follow_table3_and_table4(tmp_path):
  assert presets.preset("tabular_dense") == presets.TABLE == presets.preset("chain_short")
  small = presets.preset("random_small")
  assert (small.conv_channels, small.mlp_sizes, small.optimizer) == ((), (32,), "adam")
  assert presets.preset("random_dense").conv_channels == (16,)
  assert presets.preset("random_very_dense").conv_channels == (32, 16, 16)
  assert presets.preset("chain_distractor").mlp_sizes == (16,)
  assert presets.preset("atari/Breakout") == presets.ATARI and presets.ATARI.num_envs == 30
  assert presets.preset("gym/CartPole-v1", specs.Array((4,), np.float32)) == presets.GYM_VECTOR
  assert presets.preset("gym/X", specs.Array((84, 84, 4), np.uint8)).conv_channels == (32, 64, 64)
  path = tmp_path / "grid.json"
  path.write_text('{"size": [3, 3], "objects": [[1, 0, 0]], "max_steps": 5, "observation": "map"}')
  assert presets.preset(str(path)) == presets.RANDOM_GRID


@pytest.mark.parametrize(
  "end,discount,size,expected",
  [
    ([[0, 0], [0, 0], [0, 0]], [[1, 1], [1, 1], [1, 1]], 0, [[1, 2], [3, 4], [5, 6]]),  # none: next values
    ([[0, 0], [1, 0], [0, 1]], [[1, 1], [1, 1], [1, 0]], 2, [[1, 2], [70, 4], [5, 6]]),  # 1 truncated, padded
    ([[1, 1], [1, 1], [0, 0]], [[1, 1], [1, 1], [1, 1]], 4, [[50, 60], [70, 80], [5, 6]]),  # 4 truncated
  ],
)
def test_bootstrap_values_use_the_state_a_truncated_episode_reached(end, discount, size, expected):
  """Known answer, v(obs) = 10 obs: where a step was truncated, the value of the observation
  it reached (final[t, b]); elsewhere, and after the termination at (2, 1), next_values."""
  from inner_agents.bootstrap import bootstrap_values, truncated

  end, discount = jnp.asarray(end, jnp.float32), jnp.asarray(discount, jnp.float32)
  final = np.array([[5, 6], [7, 8], [9, 10]], np.int32)
  traj = Trajectory(
    jnp.zeros((4, 2), jnp.int32), jnp.zeros((3, 2), jnp.int32), jnp.zeros((3, 2)), discount, end
  )
  if size:
    (index,) = np.nonzero(np.asarray(truncated(traj)).reshape(-1))
    index = np.concatenate([index, np.full(size - index.size, index[0])])  # padding repeats a real one
    traj = traj._replace(truncations=Truncations(jnp.asarray(index), jnp.asarray(final.reshape(-1)[index])))
  next_values = jnp.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
  got = jax.jit(lambda tr: bootstrap_values(lambda obs: 10.0 * obs, tr, next_values))(traj)
  np.testing.assert_allclose(got, expected)


def test_max_truncations_bound():
  from inner_agents.bootstrap import max_truncations

  assert max_truncations(None, 64, 20) == 0  # no time limit
  assert max_truncations(500, 64, 20) == 64  # at most one per env in T steps
  assert max_truncations(3, 4, 7) == 12  # ends at most 3 steps apart: ceil(7 / 3) = 3 per env
  assert max_truncations(1, 4, 7) == 28  # every step, at most
