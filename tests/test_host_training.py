"""The host driver (Gymnasium / Atari through `HostTrainer`) and the Atari torso."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from dm_env import specs

from environments import registry
from harness import config as meta_test_config
from harness import evaluation
from inner_agents.actor_critic import agent as actor_critic
from inner_agents.actor_critic import presets
from inner_agents.drivers.host import HostTrainer
from inner_agents.rules import registry as rules
from inner_agents.types import AgentOutput, Trajectory

AGENT = "actor_critic"
HP = actor_critic.HParams(learning_rate=1e-3, y_cost=0.5, value_cost=0.5, entropy_cost=0.01, discount=0.99)


def _config(**overrides):
  c = meta_test_config.get_config()
  with c.unlocked():
    c.update(overrides)
  return c


def test_a2c_learns_cartpole_and_beats_random():
  config = _config(num_curve_points=4)
  results = {
    name: evaluation.evaluate("gym/CartPole-v1", AGENT, rules.resolve(name)[0], {}, config, 2, 80_000)
    for name in ("a2c", "random")
  }
  a2c, rnd = results["a2c"].final_return, results["random"].final_return
  # A uniform policy balances ~22 steps; A2C (Adam 2e-3) gets to 150-200 in 80k steps.
  assert np.all(rnd < 40), rnd
  assert np.all(a2c > 100), a2c
  assert results["a2c"].curve.shape == (2, 4) and results["a2c"].params is not None
  assert results["a2c"].agent_description == "actor_critic(D64-D64)"


def _cartpole_trainer(overlap: bool):
  env = registry.make_host("gym/CartPole-v1", 4)
  agent = actor_critic.make(
    env.name, env.observation_spec(), env.num_actions, actor_critic.ActorCriticConfig(y_size=8)
  )
  return HostTrainer(env, agent, rules.resolve("a2c")[0], unroll_length=5, overlap=overlap)


@pytest.mark.parametrize("overlap", [False, True])
def test_host_training_is_deterministic(overlap):
  runs = []
  for _ in range(2):
    trainer = _cartpole_trainer(overlap)
    runs.append(trainer.train(3, {}, HP, num_updates=30, num_points=3))
    trainer.env.close()
  leaves = [jax.tree.leaves(r.agent.params) for r in runs]
  assert all(np.array_equal(a, b) for a, b in zip(*leaves))
  np.testing.assert_array_equal(runs[0].curve, runs[1].curve)


def test_nature_torso_shapes_and_scaling():
  spec = specs.Array((84, 84, 4), np.uint8)
  agent = actor_critic.make_agent(spec, 6, 30, presets.ATARI)
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


def test_num_envs_come_from_the_agent_preset_unless_set():
  config = _config()
  assert evaluation.num_envs("atari/Breakout", AGENT, config) == 30
  assert evaluation.num_envs("gym/CartPole-v1", AGENT, config) == 16
  assert evaluation.num_envs("tabular_dense", AGENT, config) == 64
  assert evaluation.num_envs("atari/Pong", AGENT, _config(num_envs=8)) == 8


def test_host_trajectory_matches_agent_outputs():
  """`learn` sees pi and y of the parameters being updated, also at the lagged first step."""
  trainer = _cartpole_trainer(overlap=True)
  state = trainer.agent.init(jax.random.PRNGKey(0), jnp.zeros((4, 4)))
  obs = jax.random.normal(jax.random.PRNGKey(1), (6, 4, 4))
  zeros = jnp.zeros((5, 4))
  traj = Trajectory(obs, jnp.zeros((5, 4), jnp.int32), jnp.ones((5, 4)), zeros + 1.0, zeros)
  true_out = trainer.agent.apply(state.params, obs)
  stale = AgentOutput(*(x.at[0].add(1.0) for x in true_out[:3]))
  a, _ = trainer._learn(state, {}, HP, traj, stale)
  b, _ = trainer._learn(state, {}, HP, traj, true_out)
  trainer.env.close()
  for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
    np.testing.assert_allclose(x, y, rtol=1e-6)


def test_cartpole_time_limit_is_a_truncation_with_its_final_observation():
  """CartPole-v1 cut at max_episode_steps: LAST with discount 1, and the final observation
  is the state the pole reached, not the next episode's first."""
  with registry.make_host("gym/CartPole-v1", 2, max_episode_steps=3) as env:
    env.reset(0)
    for _ in range(2):
      ts, _, final = env.step(np.zeros(2, np.int32))
      np.testing.assert_array_equal(final, ts.observation)
    ts, scores, final = env.step(np.zeros(2, np.int32))
  assert (ts.step_type == 2).all() and (ts.discount == 1.0).all() and scores.done.all()
  assert not np.allclose(final, ts.observation)
  assert np.all(np.abs(final[:, 1]) > 0.3)  # pushed left three times: moving, unlike a fresh start
