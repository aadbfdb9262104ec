"""Population of lifetimes: hyperparameter draws, lifetime ends (budget, entropy collapse),
fresh restarts, the bandit fed with ended lifetimes' final returns, and slices of a
population that are bit-identical to the whole."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from environments.grid_world import GridWorld, GridWorldSpec, ObjectSpec, open_layout
from inner_agents.actor_critic.agent import make_agent
from inner_agents.actor_critic.presets import Preset
from inner_agents.drivers.on_policy import Trainer
from lpg import bandit, meta_learner, meta_objective, population
from lpg.network import LPGNetworkConfig
from lpg.rule import LPGRule

M = 3
ENV = GridWorld(
  GridWorldSpec(open_layout(2, 3), objects=(ObjectSpec(1.0, 0.0, 0.5),), max_steps=8, observation="tabular")
)
ARMS = bandit.arm_grid((20.0, 40.0, 80.0), (0.1, 0.5, 1.0))  # 9 arms
LIFETIME_STEPS = 90
CONFIG = population.PopulationConfig(lifetime_steps=LIFETIME_STEPS)


def _population(num_lifetimes):
  rule = LPGRule(LPGNetworkConfig(hidden_size=4, phi_size=4, y_size=M))
  agent = make_agent(ENV.observation_spec(), ENV.num_actions, M, Preset(optimizer="sgd"))
  return population.Population(
    trainer=Trainer(ENV, agent, rule, num_envs=2, unroll_length=3),
    critic=agent,
    arms=ARMS,
    num_lifetimes=num_lifetimes,
    critic_learning_rate=1.0,
    config=CONFIG,
  )


POP = _population(8)


@pytest.fixture(scope="module")
def init():
  return jax.jit(POP.init)


@pytest.fixture(scope="module")
def end_and_restart():
  """end -> the bandit update -> restart, as a meta-step and the meta-learner do them."""

  @jax.jit
  def f(lifetimes, bandit_state, entropy):
    lifetimes, report, finals = POP.end(lifetimes, entropy)
    bandit_state = population.update_bandit(bandit_state, report)
    return POP.restart(lifetimes, bandit_state), bandit_state, lifetimes.ended, finals

  return f


def _leaves_equal(a, b):
  return all(np.array_equal(x, y, equal_nan=True) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _lifetime(lifetimes, i):
  return jax.tree.map(lambda x: x[i], lifetimes)


def _rounded(x):
  """The set of float32 values in x as python floats rounded to 6 decimals."""
  return {round(float(v), 6) for v in np.asarray(x).ravel()}


def _assert_hparams_from_the_grids(lifetimes):
  hp = lifetimes.hparams
  arm = np.asarray(lifetimes.arm)
  np.testing.assert_array_equal(hp.learning_rate, ARMS[arm, 0])
  np.testing.assert_array_equal(hp.y_cost, ARMS[arm, 1])
  assert _rounded(hp.discount) <= {0.997, 0.995, 0.99}
  assert _rounded(lifetimes.policy_entropy_cost) <= {0.01, 0.02}
  np.testing.assert_array_equal(hp.value_cost, 0.0)
  np.testing.assert_array_equal(hp.entropy_cost, 0.0)


def test_init_draws_hparams_and_staggered_budgets(init):
  lifetimes = init(jax.random.PRNGKey(0))
  np.testing.assert_array_equal(lifetimes.steps, 0)
  assert not np.asarray(lifetimes.ended).any()
  budget = np.asarray(lifetimes.budget)
  assert ((budget >= 1) & (budget <= LIFETIME_STEPS)).all()
  assert len(set(budget)) > 1, "first lifetimes are staggered"
  _assert_hparams_from_the_grids(lifetimes)
  np.testing.assert_array_equal(POP.init_bandit().count, 0)


def test_slices_of_a_population_are_the_whole_bit_for_bit(init, end_and_restart):
  # A shard on a remote worker inits and restarts its lifetimes from their own keys.
  key = jax.random.PRNGKey(5)
  whole = init(key)
  parts = [jax.jit(POP.init, static_argnums=(1, 2))(key, a, b) for a, b in ((0, 3), (3, 4), (4, 8))]
  assert _leaves_equal(whole, jax.tree.map(lambda *x: np.concatenate(x), *parts))
  # Everything ends; the restarts of a slice equal the slice of the restarts.
  entropy = jnp.zeros(POP.num_lifetimes)
  restarted, bandit_state, _, _ = end_and_restart(whole, POP.init_bandit(), entropy)
  ended = jax.jit(lambda lt: POP.end(lt, entropy[:3])[0])(parts[0])
  part = jax.jit(POP.restart)(ended, bandit_state)
  assert _leaves_equal(part, jax.tree.map(lambda x: x[:3], restarted))


@pytest.fixture(scope="module")
def ended_case(init, end_and_restart):
  """Lifetime 0 spent its budget (final returns 1 and 3 in its two envs), lifetime 1's
  policy collapsed (no episode finished: no return), lifetime 2 is one step short of its
  budget; all start from marked (non-initial) parameters."""
  lt = init(jax.random.PRNGKey(1))
  n = POP.num_lifetimes
  table = lt.train.agent.params["table"]
  marked = {**table, "logits": jnp.ones_like(table["logits"])}
  critic = lt.critic.params["table"]
  steps = np.zeros(n, np.int32)
  steps[0] = lt.budget[0]  # spent
  steps[2] = lt.budget[2] - 1  # one step short
  last_return = np.full((n, 2), 0.5, np.float32)
  last_return[0] = [1.0, 3.0]
  last_return[1] = np.nan
  lt = lt._replace(
    arm=jnp.arange(n, dtype=jnp.int32),
    steps=jnp.asarray(steps),
    train=lt.train._replace(
      agent=lt.train.agent._replace(params={"table": marked}),
      actor=lt.train.actor._replace(last_return=jnp.asarray(last_return)),
    ),
    critic=lt.critic._replace(params={"table": {**critic, "value": jnp.ones_like(critic["value"])}}),
  )
  lt = lt._replace(hparams=lt.hparams._replace(learning_rate=jnp.asarray(ARMS[np.arange(n), 0])))
  lt = lt._replace(hparams=lt.hparams._replace(y_cost=jnp.asarray(ARMS[np.arange(n), 1])))
  entropy = jnp.asarray(np.where(np.arange(n) == 1, 1e-4, 1.0), jnp.float32)
  new, bandit_state, ended, finals = end_and_restart(lt, POP.init_bandit(), entropy)
  return lt, (new, bandit_state), np.asarray(ended), np.asarray(finals)


def test_lifetimes_end_at_budget_and_on_entropy_collapse(ended_case):
  _, _, ended, finals = ended_case
  np.testing.assert_array_equal(ended, [True, True] + [False] * (POP.num_lifetimes - 2))
  assert finals[0] == 2.0  # mean of the envs' last completed episode returns
  assert np.isnan(finals[1])


def test_ended_lifetimes_restart_fresh(ended_case):
  old, (new, _), _, _ = ended_case
  for i in (0, 1):
    lt = _lifetime(new, i)
    assert int(lt.steps) == 0 and int(lt.budget) == LIFETIME_STEPS
    np.testing.assert_array_equal(lt.train.agent.params["table"]["logits"], 0.0)  # fresh: uniform
    np.testing.assert_array_equal(lt.critic.params["table"]["value"], 0.0)
    assert np.isnan(np.asarray(lt.train.actor.last_return)).all()
    np.testing.assert_array_equal(lt.train.actor.episode_return, 0.0)
    assert not np.array_equal(lt.train.key, _lifetime(old, i).train.key)
    assert not np.array_equal(lt.key, _lifetime(old, i).key)
  _assert_hparams_from_the_grids(new)
  # The others are untouched, bit for bit (and not marked ended).
  for i in range(2, POP.num_lifetimes):
    assert _leaves_equal(_lifetime(new, i), _lifetime(old, i)), i


def test_bandit_receives_the_ended_lifetimes_final_return(ended_case):
  _, (new, bandit_state), _, _ = ended_case
  count = np.asarray(bandit_state.count)
  # Lifetime 0 (arm 0) reported 2.0; lifetime 1 (arm 1) had no finished episode: skipped.
  np.testing.assert_array_equal(count, np.eye(len(ARMS), dtype=np.int32)[0])
  assert float(bandit_state.returns[0, 0]) == 2.0
  # Arm 0 is the only tried arm, and untried arms come first: no restart drew arm 0.
  assert (np.asarray(new.arm[:2]) != 0).all()


def test_restarts_draw_every_discount_beta0_and_many_arms(init, end_and_restart):
  lt, bandit_state = init(jax.random.PRNGKey(2)), POP.init_bandit()
  draws = []
  for _ in range(6):  # every lifetime ends (collapsed) and restarts, 6 times
    lt, bandit_state, ended, _ = end_and_restart(lt, bandit_state, jnp.zeros(POP.num_lifetimes))
    assert np.asarray(ended).all()
    _assert_hparams_from_the_grids(lt)
    np.testing.assert_array_equal(lt.steps, 0)
    np.testing.assert_array_equal(lt.budget, LIFETIME_STEPS)
    draws.append((lt.hparams.discount, lt.policy_entropy_cost, lt.arm))
  discounts, betas, arms = (np.concatenate(x) for x in zip(*draws))
  assert _rounded(discounts) == {0.997, 0.995, 0.99}
  assert _rounded(betas) == {0.01, 0.02}
  assert len(set(arms)) >= 7  # no return was reported: draws stay uniform over 9 arms


@pytest.mark.slow
def test_meta_steps_advance_and_end_lifetimes_at_their_budget():
  # Through MetaGradient.step: each meta-step takes (K + 1) * B * T env steps per lifetime;
  # lifetime 0 (budget 2 meta-steps) ends after the 2nd and restarts at the start of the
  # 3rd, lifetime 1 (budget large) goes on.
  pop = _population(2)
  mg = meta_learner.MetaGradient([pop], 2, meta_objective.MetaObjectiveConfig())
  per_step = 3 * 2 * 3
  assert mg.steps_per_meta_step() == 2 * per_step
  (lt,) = jax.jit(mg.init)(jax.random.PRNGKey(3))
  lt = lt._replace(budget=jnp.array([2 * per_step, 100 * per_step], jnp.int32))
  bandits = mg.init_bandits()
  eta = jax.jit(pop.trainer.rule.init_meta_params)(jax.random.PRNGKey(4))
  step = jax.jit(mg.step)
  critic0 = np.asarray(lt.critic.params["table"]["value"])

  out1, (lt1,) = step(eta, bandits, (lt,))
  np.testing.assert_array_equal(lt1.steps, [per_step, per_step])
  assert float(out1.sums["ended"]) == 0 and not np.asarray(out1.reports[0].valid).any()
  # The meta-objective's critic trained during the meta-step (it starts at zero).
  assert np.abs(np.asarray(lt1.critic.params["table"]["value"]) - critic0).max() > 1e-3

  out2, (lt2,) = step(eta, bandits, (lt1,))
  np.testing.assert_array_equal(lt2.steps, [2 * per_step, 2 * per_step])
  np.testing.assert_array_equal(lt2.ended, [True, False])
  # 2 meta-steps = 18 steps per env with episodes of <= 8 steps: lifetime 0 has a final
  # return, and its report carries exactly it, for lifetime 0's arm.
  _, _, m2 = meta_learner.combine([out2], [mg.parts], 1)
  report = out2.reports[0]
  np.testing.assert_array_equal(report.valid, [True, False])
  assert int(report.arm[0]) == int(lt1.arm[0])
  assert float(report.final_return[0]) == pytest.approx(float(m2.final_return))
  assert int(m2.lifetimes_ended) == 1

  bandits = (population.update_bandit(bandits[0], report),)
  _, (lt3,) = step(eta, bandits, (lt2,))
  np.testing.assert_array_equal(lt3.steps, [per_step, 3 * per_step])  # restarted, then stepped
  np.testing.assert_array_equal(lt3.budget, [LIFETIME_STEPS, 100 * per_step])
