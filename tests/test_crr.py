"""CRR (Wang et al. 2020): its policy weights, critic, windows, the off-policy opt-in, and
the paper's signature effect (CRR beats behaviour cloning on mixed data) in a short run."""

import dataclasses
import math
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from environments import offline_data
from environments import registry as env_registry
from harness import config as meta_test_config
from harness import datasets, offline, runner
from inner_agents.agent import IncompatibleRuleError
from inner_agents.crr import agent as crr_agent
from inner_agents.drivers import offline as offline_driver
from inner_agents.rules import crr
from inner_agents.rules import registry as rule_registry
from inner_agents.rules.base import RuleInputs

Q = jnp.array([1.0, 3.0, 2.0])
PI = jnp.array([0.5, 0.25, 0.25])


def test_advantage_mean_is_q_minus_the_policy_expectation():
  # V = 0.5 * 1 + 0.25 * 3 + 0.25 * 2 = 1.75.
  adv = crr.advantage(jnp.stack([Q, Q]), jnp.stack([PI, PI]), jnp.array([1, 0]))
  np.testing.assert_allclose(adv, [3 - 1.75, 1 - 1.75], rtol=1e-6)


def test_advantage_max_is_the_expected_maximum_of_m_policy_samples():
  # m = 2: P(max = 3) = 1 - 0.75^2, P(max = 2) = 0.75^2 - 0.5^2, P(max = 1) = 0.5^2.
  expected = 3 * (1 - 0.75**2) + 2 * (0.75**2 - 0.5**2) + 1 * 0.5**2  # 2.1875
  np.testing.assert_allclose(crr.expected_max(Q, PI, 2), expected, rtol=1e-6)
  np.testing.assert_allclose(crr.expected_max(Q, PI, 1), 1.75, rtol=1e-6)  # m = 1: the mean
  np.testing.assert_allclose(crr.expected_max(Q, PI, 1000), 3.0, rtol=1e-4)  # m -> inf: the max
  adv = crr.advantage(Q[None], PI[None], jnp.array([1]), "max", num_samples=2)
  np.testing.assert_allclose(adv, [3 - expected], rtol=1e-6)


def test_weights_exp_is_clipped_at_20_and_binary_is_a_strict_heaviside():
  adv = jnp.array([-0.75, 0.0, 1.25, 5.0])
  np.testing.assert_allclose(crr.weight(adv, "exp"), [math.exp(-0.75), 1.0, math.exp(1.25), 20.0], rtol=1e-6)
  np.testing.assert_allclose(crr.weight(adv, "exp", beta=2.0)[2], math.exp(0.625), rtol=1e-6)
  np.testing.assert_array_equal(crr.weight(adv, "binary"), [0.0, 0.0, 1.0, 1.0])  # A = 0 gives 0 (acme)
  assert np.isfinite(crr.weight(jnp.array([1e4]), "exp")).all()


def _inputs(a):
  t, b = a.shape
  q = jnp.broadcast_to(Q, (t + 1, b, 3))
  pi = jnp.broadcast_to(PI, (t + 1, b, 3))
  return RuleInputs(
    r_t=jnp.zeros((t, b)),
    discount_t=jnp.ones((t, b)),
    end_t=jnp.zeros((t, b)),
    gamma=0.99,
    pi_a_t=jnp.take_along_axis(pi[:-1], a[..., None], axis=-1)[..., 0],
    q_t=q,
    a_t=a,
    pi_t=pi,
  )


@pytest.mark.parametrize(
  "name, expected",
  [
    ("crr", [math.exp(-0.75), math.exp(1.25), math.exp(0.25)]),
    ("crr_binary", [0.0, 1.0, 1.0]),
    ("crr_max", [math.exp(1 - 2.62109375), math.exp(3 - 2.62109375), math.exp(2 - 2.62109375)]),
    ("crr_binary_max", [0.0, 1.0, 0.0]),
    ("bc", [1.0, 1.0, 1.0]),
  ],
)
def test_rules_give_f_of_the_advantage_for_each_dataset_action(name, expected):
  rule, meta_params = rule_registry.resolve(name)
  assert not rule.on_policy
  # crr_max: m = 4 samples: E max = 3 (1 - 0.75^4) + 2 (0.75^4 - 0.5^4) + 0.5^4 = 2.62109375.
  targets = rule.targets(meta_params, _inputs(jnp.array([[0, 1, 2]])))
  np.testing.assert_allclose(targets.pi_hat[0], expected, rtol=1e-5)


def test_off_policy_rules_need_the_opt_in_and_crr_rules_need_a_critic():
  config = meta_test_config.get_config()
  for spec in ("a2c", "pretrained:reference_cpu"):
    if spec.startswith("pretrained:"):
      import lpg  # noqa: F401  Registers the LPG rules.
    with pytest.raises(IncompatibleRuleError, match="allow_off_policy"):
      runner.resolve_pairs(["crr"], [spec], config)
    assert len(runner.resolve_pairs(["crr"], [spec], config, allow_off_policy=True)) == 1
  assert len(runner.resolve_pairs(["crr"], ["native", "bc", "crr_binary"], config)) == 3
  with pytest.raises(IncompatibleRuleError, match="q"):
    runner.resolve_pairs(["actor_critic"], ["crr"], config)


# A two-step MDP with both steps' actions in the data: from s0, a0 gives 1 and a1 gives 0;
# from s1, a0 gives 2 and a1 gives 0, and the episode terminates. Under the uniform policy
# (a frozen, zero-initialised policy) and gamma = 0.9: Q(s1) = [2, 0], V(s1) = 1,
# Q(s0) = [1 + 0.9, 0 + 0.9].
def _two_step_data():
  obs, next_obs, actions, rewards, terms = [], [], [], [], []
  for a0 in (0, 1):
    for a1 in (0, 1):
      obs += [0, 1]
      next_obs += [1, 2]
      actions += [a0, a1]
      rewards += [1.0 - a0, 2.0 * (1 - a1)]
      terms += [False, True]
  n = len(actions)
  return offline_driver.device_data(
    np.asarray(obs, np.int32),
    np.asarray(next_obs, np.int32),
    np.asarray(actions),
    np.asarray(rewards),
    np.asarray(terms),
    np.zeros(n, bool),
  )


def test_critic_learns_the_policys_action_values_computed_by_hand():
  from dm_env import specs

  spec = specs.BoundedArray((), np.int32, 0, 2)
  config = crr_agent.CRRConfig(
    policy_learning_rate=0.0,
    critic_learning_rate=3e-3,
    discount=0.9,
    target_update_period=20,
    hidden_sizes=(32,),
  )
  agent = crr_agent.make("two_step", spec, 2, config)
  rule, meta_params = rule_registry.resolve("crr")
  trainer = offline_driver.OfflineTrainer(
    _two_step_data(), agent, rule, num_windows=8, window=1, env=env_registry.make("chain_short")
  )
  state = jax.jit(lambda k: trainer.run(trainer.init(k), meta_params, agent.hparams(rule), 3000)[0])(
    jax.random.PRNGKey(0)
  )
  q = agent.q_values(state.agent.critic, jnp.array([0, 1]))
  np.testing.assert_allclose(q, [[1.9, 0.9], [2.0, 0.0]], atol=0.05)
  # The target network is a copy taken every 20 updates: equal to the online one after 3000.
  assert all(jax.tree.leaves(jax.tree.map(jnp.array_equal, state.agent.critic, state.agent.target_critic)))


def test_windows_run_through_episode_ends_with_final_states_and_discounts():
  # Episodes: [10, 11 | 12 (truncated)] then [20 | 21 (terminated)]; states are ints.
  data = offline_driver.device_data(
    np.array([10, 11, 20]),
    np.array([11, 12, 21]),
    np.array([0, 1, 0]),
    np.array([1.0, 2.0, 3.0]),
    np.array([False, False, True]),
    np.array([False, True, False]),
  )
  w = offline_driver.sample_windows(data, jax.random.PRNGKey(0), num_windows=4, length=3)
  for b in range(4):  # Only one start fits: the whole dataset.
    np.testing.assert_array_equal(w.observation[:, b], [10, 11, 20, 21])
    np.testing.assert_array_equal(w.next_observation[:, b], [11, 12, 21])
    np.testing.assert_array_equal(w.discount[:, b], [1, 1, 0])  # The truncation bootstraps.
    np.testing.assert_array_equal(w.end[:, b], [0, 1, 1])
  with pytest.raises(ValueError, match="at least"):
    offline_driver.sample_windows(data, jax.random.PRNGKey(0), 1, 4)


class _ChainExpert:
  """chain_short's optimal policy: the first action must be c, which the start state shows
  (tabular states 0 and 1 are c); later actions do not matter."""

  def act(self, observation, key):
    del key
    return jnp.where(observation < 2, observation, 0).astype(jnp.int32)


@pytest.fixture(scope="module")
def chain_mixed(tmp_path_factory):
  """A mixed chain_short dataset (half expert, half uniform-random episodes) on disk."""
  root = str(tmp_path_factory.mktemp("minari"))
  env = env_registry.make("chain_short")
  params = env.sample_params(jax.random.PRNGKey(8))  # a chain of 8 steps
  records = datasets.collect_jax(
    env, params, _ChainExpert(), datasets.behaviour("mixed"), 16, 250, jax.random.PRNGKey(1)
  )
  episodes, random_flags = datasets.episodes(records)
  returns = np.array([e.rewards.sum() for e in episodes])
  meta = {"behaviour": "mixed", offline.ENV_PARAMS: offline.params_to_json(params)}
  offline_data.write("test/chain_short/mixed-v0", episodes, 2, "chain_short", meta, root=root)
  assert np.all(returns[~random_flags] == 1.0)  # The scripted expert is optimal.
  # A foreign dataset (no env recorded) with vector observations and 3 actions.
  foreign = offline_data.Episode(
    np.zeros((3, 4), np.float32),
    np.array([0, 2]),
    np.ones(2, np.float32),
    np.array([0, 1], bool),
    np.zeros(2, bool),
  )
  offline_data.write("test/foreign-v0", [foreign], 3, "", {}, root=root)
  return root, float(returns.mean())


def test_crr_beats_behaviour_cloning_on_mixed_data(chain_mixed):
  """On half-expert, half-random chain data BC learns pi(c|s0) ~ 0.75 (return ~ 0.5); CRR
  weighs the correct first action up: >= 0.2 more return (the stated margin) after 800
  updates (measured: crr 0.86, crr_binary 0.70, bc 0.56; lr 1e-3 for a short run)."""
  root, data_return = chain_mixed
  dataset = offline_data.load("test/chain_short/mixed-v0", root)
  config = meta_test_config.get_config()
  finals = {}
  for name in ("crr", "crr_binary", "bc"):
    rule, meta_params = rule_registry.resolve(name)
    agent_config = crr_agent.CRRConfig(
      policy_learning_rate=1e-3, critic_learning_rate=1e-3, target_update_period=50, eval_episodes=256
    )
    with offline.offline_trainer(
      "chain_short", "crr", rule, agent_config, dataset, 13, config.unroll_length
    ) as t:
      runs = t.train_seeds((0, 1), meta_params, t.agent.hparams(rule), 400, 2)
    finals[name] = float(np.mean(runs.final_return))
  assert 0.3 < finals["bc"] < 0.7, finals  # pi(c|s0) ~ 0.75: return 0.75 - 0.25 = 0.5
  assert finals["crr"] >= finals["bc"] + 0.2, finals
  assert finals["crr_binary"] >= finals["bc"] + 0.1, finals
  assert abs(data_return) < 0.7


def _meta_test(*args, cwd=None):
  return subprocess.run(
    [sys.executable, "meta_test.py", "--noprogress", *args], capture_output=True, text=True, cwd=cwd
  )


def test_meta_test_trains_crr_from_a_dataset_and_refuses_bad_input(chain_mixed, tmp_path):
  root, _ = chain_mixed
  out = tmp_path / "out"
  common = ["--agent=crr", f"--dataset_root={root}", "--seeds=1", "--env_steps=2600", f"--out={out}"]
  ok = _meta_test(
    *common, "--dataset=test/chain_short/mixed-v0", "--rule=native,bc,a2c", "--allow_off_policy"
  )
  assert ok.returncode == 0, ok.stderr
  assert "test/chain_short/mixed-v0" in ok.stdout and "crr" in ok.stdout and "bc" in ok.stdout
  assert (out / "results.csv").exists() and len(list((out / "done").iterdir())) == 3
  # The report names the pair that ran off-policy by opt-in, and only that one.
  assert "off-policy (--allow_off_policy): crr/a2c:" in (out / "summary.txt").read_text()
  bad_out = tmp_path / "bad"
  for args, message in [
    (["--dataset=test/nope-v0"], "no dataset"),
    (["--dataset=test/chain_short/mixed-v0", "--env=tabular_dense"], "collected on chain_short"),
    (["--dataset=test/chain_short/mixed-v0", "--rule=a2c"], "allow_off_policy"),
    (
      ["--dataset=test/foreign-v0", "--env=chain_short"],
      "its observations are float32[4], the environment's []",
    ),
  ]:
    run = _meta_test(*common[:-1], f"--out={bad_out}", "--rule=native", *args)
    assert run.returncode != 0 and message in run.stderr, (args, run.stderr)
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert not bad_out.exists()


def test_an_episode_ending_without_a_flag_is_cut_as_a_truncation(chain_mixed):
  root, _ = chain_mixed
  dataset = offline_data.load("test/chain_short/mixed-v0", root)
  assert np.array_equal(offline.episode_truncations(dataset), dataset.truncations)  # complete episodes
  lengths = dataset.episode_lengths
  unfinished = dataclasses.replace(dataset, terminations=np.zeros_like(dataset.terminations))
  cut = offline.episode_truncations(unfinished)
  assert cut.sum() == len(lengths) and cut[np.cumsum(lengths) - 1].all()
