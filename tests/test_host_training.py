"""Host-side training (Gymnasium / Atari through `HostTrainer`), the Atari torso and the
Eq. 7 baseline on pi_hat."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from dm_env import specs

from environments import registry
from inner_agents.agent import make_agent
from inner_agents.host_training import HostTrainer
from inner_agents.types import AgentHParams, AgentOutput, Trajectory
from lpg import evaluation, rules
from lpg.configs import meta_test as meta_test_config


def _config(**overrides):
  c = meta_test_config.get_config()
  with c.unlocked():
    c.update(overrides)
  return c


def test_a2c_learns_cartpole_and_beats_random():
  config = _config(num_curve_points=4)
  results = {
    name: evaluation.evaluate("gym/CartPole-v1", rules.make_rule(name), {}, config, seeds=2, env_steps=80_000)
    for name in ("a2c", "random")
  }
  a2c, rnd = results["a2c"].final_return, results["random"].final_return
  # A uniform policy balances ~22 steps; A2C (Adam 2e-3) gets to 150-200 in 80k steps.
  assert np.all(rnd < 40), rnd
  assert np.all(a2c > 100), a2c
  assert results["a2c"].curve.shape == (2, 4) and results["a2c"].params is not None


def _cartpole_trainer(overlap: bool):
  env = registry.make_host("gym/CartPole-v1", 4)
  preset = registry.host_preset(env)
  agent = make_agent(env.observation_spec(), env.num_actions, 8, preset.optimizer, **preset.torso_kwargs())
  return HostTrainer(env, agent, rules.make_rule("a2c"), unroll_length=5, overlap=overlap)


@pytest.mark.parametrize("overlap", [False, True])
def test_host_training_is_deterministic(overlap):
  hp = AgentHParams(learning_rate=1e-3, y_cost=0.5, value_cost=0.5, entropy_cost=0.01, discount=0.99)
  runs = []
  for _ in range(2):
    trainer = _cartpole_trainer(overlap)
    runs.append(trainer.train(3, {}, hp, num_updates=30, num_points=3))
    trainer.env.close()
  leaves = [jax.tree.leaves(r.agent.params) for r in runs]
  assert all(np.array_equal(a, b) for a, b in zip(*leaves))
  np.testing.assert_array_equal(runs[0].curve, runs[1].curve)


def test_nature_torso_shapes_and_scaling():
  spec = specs.Array((84, 84, 4), np.uint8)
  agent = make_agent(spec, 6, 30, "adam", **registry.ATARI.torso_kwargs())
  obs = jnp.zeros((3, 2, 84, 84, 4), jnp.uint8)
  state = agent.init(jax.random.PRNGKey(0), obs[0])
  out = agent.apply(state.params, obs)
  assert out.logits.shape == (3, 2, 6) and out.y_logits.shape == (3, 2, 30) and out.value.shape == (3, 2)
  shapes = {k: v["w"].shape for k, v in state.params.items() if "conv" in k}
  # Nature DQN: 8x8/4 -> 20x20x32, 4x4/2 -> 9x9x64, 3x3/1 -> 7x7x64, then D512.
  assert sorted(shapes.values()) == sorted([(8, 8, 4, 32), (4, 4, 32, 64), (3, 3, 64, 64)])
  dense = [v["w"].shape for k, v in state.params.items() if k.endswith("linear")]
  assert dense == [(7 * 7 * 64, 512)]
  # uint8 pixels are scaled to [0, 1]: a 255 image equals a float 1.0 image.
  full = agent.apply(state.params, jnp.full((1, 84, 84, 4), 255, jnp.uint8))
  ones = agent.apply(state.params, jnp.ones((1, 84, 84, 4), jnp.float32))
  np.testing.assert_allclose(full.value, ones.value, rtol=1e-6)


def test_pi_hat_baseline_is_eq7():
  """pi_hat' = pi_hat - f(s_t) and f regresses onto pi_hat with weight 1 (Eq. 7)."""
  rule = rules.LPGRule()
  wrapped = rules.PiHatBaseline(rule)
  eta = rule.init_meta_params(jax.random.PRNGKey(0))
  t, b, m = 4, 3, rule.config.y_size
  k = jax.random.split(jax.random.PRNGKey(1), 4)
  inputs = rules.RuleInputs(
    reward=jax.random.normal(k[0], (t, b)),
    done=jnp.zeros((t, b)).at[2, 0].set(1.0),
    pi_a=jax.random.uniform(k[1], (t, b)),
    y=jax.nn.softmax(jax.random.normal(k[2], (t + 1, b, m))),
    value=jax.random.normal(k[3], (t + 1, b)),
  )
  hp = AgentHParams(learning_rate=1.0, y_cost=0.5, value_cost=1.0, entropy_cost=0.0, discount=0.99)
  plain, based = rule.targets(eta, inputs, hp), wrapped.targets(eta, inputs, hp)
  np.testing.assert_allclose(based.pi_hat, plain.pi_hat - inputs.value[:-1], rtol=1e-6)
  np.testing.assert_allclose(based.value_target, plain.pi_hat, rtol=1e-6)
  np.testing.assert_allclose(based.y_hat, plain.y_hat)
  assert wrapped.hparam_defaults["value_cost"] == 1.0 and wrapped.name == rule.name
  # The Atari preset turns it on for LPG rules only.
  config = _config()
  assert isinstance(evaluation.test_rule("atari/Breakout", rule, config), rules.PiHatBaseline)
  assert not isinstance(evaluation.test_rule("tabular_dense", rule, config), rules.PiHatBaseline)
  assert evaluation.test_rule("atari/Breakout", rules.make_rule("a2c"), config).name == "a2c"


def test_atari_hparams_follow_table4():
  config = _config()
  hp = evaluation.hparams_for(rules.PiHatBaseline(rules.LPGRule()), "adam", config, "atari/Breakout")
  assert (hp.learning_rate, hp.y_cost, hp.value_cost, hp.discount) == (5e-4, 0.5, 1.0, 0.995)
  assert evaluation.num_envs("atari/Breakout", config) == 30
  assert evaluation.num_envs("tabular_dense", config) == 64
  # Explicit settings win.
  config = _config(learning_rate=1e-3, discount=0.9, num_envs=8)
  hp = evaluation.hparams_for(rules.LPGRule(), "adam", config, "atari/Breakout")
  assert (hp.learning_rate, hp.discount) == (1e-3, 0.9) and evaluation.num_envs("atari/Pong", config) == 8


def test_host_trajectory_matches_agent_outputs():
  """`learn` sees pi and y of the parameters being updated, also at the lagged first step."""
  trainer = _cartpole_trainer(overlap=True)
  state = trainer.agent.init(jax.random.PRNGKey(0), jnp.zeros((4, 4)))
  obs = jax.random.normal(jax.random.PRNGKey(1), (6, 4, 4))
  traj = Trajectory(obs, jnp.zeros((5, 4), jnp.int32), jnp.ones((5, 4)), jnp.zeros((5, 4)))
  true_out = trainer.agent.apply(state.params, obs)
  stale = AgentOutput(*(x.at[0].add(1.0) for x in true_out))
  hp = AgentHParams(learning_rate=1e-3, y_cost=0.5, value_cost=0.5, entropy_cost=0.01, discount=0.99)
  a, _ = trainer._learn(state, {}, hp, traj, stale)
  b, _ = trainer._learn(state, {}, hp, traj, true_out)
  trainer.env.close()
  for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
    np.testing.assert_allclose(x, y, rtol=1e-6)
