"""Population of lifetimes: hyperparameter draws, lifetime ends (budget, entropy collapse),
fresh restarts, and the bandit fed with ended lifetimes' final returns."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from environments.grid_world import GridWorld, GridWorldSpec, ObjectSpec, open_layout
from inner_agents.agent import make_agent
from inner_agents.training import Trainer
from lpg import bandit, meta_learner, meta_objective, population, rules
from lpg.network import LPGNetworkConfig

M = 3
ENV = GridWorld(
  GridWorldSpec(open_layout(2, 3), objects=(ObjectSpec(1.0, 0.0, 0.5),), max_steps=8, observation="tabular")
)
ARMS = bandit.arm_grid((20.0, 40.0, 80.0), (0.1, 0.5, 1.0))  # 9 arms
LIFETIME_STEPS = 90
CONFIG = population.PopulationConfig(lifetime_steps=LIFETIME_STEPS)


def _population(num_lifetimes):
  rule = rules.LPGRule(LPGNetworkConfig(hidden_size=4, phi_size=4, y_size=M))

  def agent():
    return make_agent(ENV.observation_spec(), ENV.num_actions, M, "sgd")

  return population.Population(
    trainer=Trainer(ENV, agent(), rule, num_envs=2, unroll_length=3),
    critic=agent(),
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
  return jax.jit(POP.end_and_restart)


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
  state = init(jax.random.PRNGKey(0))
  lifetimes = state.lifetimes
  np.testing.assert_array_equal(lifetimes.steps, 0)
  budget = np.asarray(lifetimes.budget)
  assert ((budget >= 1) & (budget <= LIFETIME_STEPS)).all()
  assert len(set(budget)) > 1, "first lifetimes are staggered"
  _assert_hparams_from_the_grids(lifetimes)
  np.testing.assert_array_equal(state.bandit.count, 0)


@pytest.fixture(scope="module")
def ended_case(init, end_and_restart):
  """Lifetime 0 spent its budget (final returns 1 and 3 in its two envs), lifetime 1's
  policy collapsed (no episode finished: no return), lifetime 2 is one step short of its
  budget; all start from marked (non-initial) parameters."""
  state = init(jax.random.PRNGKey(1))
  lt = state.lifetimes
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
  state = state._replace(lifetimes=lt)
  entropy = jnp.asarray(np.where(np.arange(n) == 1, 1e-4, 1.0), jnp.float32)
  new_state, ended, finals = end_and_restart(state, entropy)
  return state, new_state, np.asarray(ended), np.asarray(finals)


def test_lifetimes_end_at_budget_and_on_entropy_collapse(ended_case):
  _, _, ended, finals = ended_case
  np.testing.assert_array_equal(ended, [True, True] + [False] * (POP.num_lifetimes - 2))
  assert finals[0] == 2.0  # mean of the envs' last completed episode returns
  assert np.isnan(finals[1])


def test_ended_lifetimes_restart_fresh(ended_case):
  old, new, _, _ = ended_case
  for i in (0, 1):
    lt = _lifetime(new.lifetimes, i)
    assert int(lt.steps) == 0 and int(lt.budget) == LIFETIME_STEPS
    np.testing.assert_array_equal(lt.train.agent.params["table"]["logits"], 0.0)  # fresh: uniform
    np.testing.assert_array_equal(lt.critic.params["table"]["value"], 0.0)
    assert np.isnan(np.asarray(lt.train.actor.last_return)).all()
    np.testing.assert_array_equal(lt.train.actor.episode_return, 0.0)
    assert not np.array_equal(lt.train.key, _lifetime(old.lifetimes, i).train.key)
  _assert_hparams_from_the_grids(new.lifetimes)
  # The others are untouched, bit for bit.
  for i in range(2, POP.num_lifetimes):
    assert _leaves_equal(_lifetime(new.lifetimes, i), _lifetime(old.lifetimes, i)), i


def test_bandit_receives_the_ended_lifetimes_final_return(ended_case):
  _, new, _, _ = ended_case
  count = np.asarray(new.bandit.count)
  # Lifetime 0 (arm 0) reported 2.0; lifetime 1 (arm 1) had no finished episode: skipped.
  np.testing.assert_array_equal(count, np.eye(len(ARMS), dtype=np.int32)[0])
  assert float(new.bandit.returns[0, 0]) == 2.0
  # Arm 0 is the only tried arm, and untried arms come first: no restart drew arm 0.
  assert (np.asarray(new.lifetimes.arm[:2]) != 0).all()


def test_restarts_draw_every_discount_beta0_and_many_arms(init, end_and_restart):
  state = init(jax.random.PRNGKey(2))
  draws = []
  for _ in range(6):  # every lifetime ends (collapsed) and restarts, 6 times
    state, ended, _ = end_and_restart(state, jnp.zeros(POP.num_lifetimes))
    assert np.asarray(ended).all()
    _assert_hparams_from_the_grids(state.lifetimes)
    np.testing.assert_array_equal(state.lifetimes.steps, 0)
    np.testing.assert_array_equal(state.lifetimes.budget, LIFETIME_STEPS)
    lt = state.lifetimes
    draws.append((lt.hparams.discount, lt.policy_entropy_cost, lt.arm))
  discounts, betas, arms = (np.concatenate(x) for x in zip(*draws))
  assert _rounded(discounts) == {0.997, 0.995, 0.99}
  assert _rounded(betas) == {0.01, 0.02}
  assert len(set(arms)) >= 7  # no return was reported: draws stay uniform over 9 arms


@pytest.mark.slow
def test_meta_steps_advance_and_end_lifetimes_at_their_budget():
  # Through MetaGradient.step: each meta-step takes (K + 1) * B * T env steps per lifetime;
  # lifetime 0 (budget 2 meta-steps) ends after the 2nd, lifetime 1 (budget large) goes on.
  pop = _population(2)
  mg = meta_learner.MetaGradient([pop], 2, meta_objective.MetaObjectiveConfig())
  per_step = 3 * 2 * 3
  assert mg.steps_per_meta_step() == 2 * per_step
  (state,) = jax.jit(mg.init)(jax.random.PRNGKey(3))
  lt = state.lifetimes
  state = state._replace(lifetimes=lt._replace(budget=jnp.array([2 * per_step, 100 * per_step], jnp.int32)))
  eta = jax.jit(pop.trainer.rule.init_meta_params)(jax.random.PRNGKey(4))
  step = jax.jit(mg.step)
  critic0 = np.asarray(state.lifetimes.critic.params["table"]["value"])

  _, (state1,), m1 = step(eta, (state,))
  np.testing.assert_array_equal(state1.lifetimes.steps, [per_step, per_step])
  assert int(m1.lifetimes_ended) == 0
  # The meta-objective's critic trained during the meta-step (it starts at zero).
  assert np.abs(np.asarray(state1.lifetimes.critic.params["table"]["value"]) - critic0).max() > 1e-3

  _, (state2,), m2 = step(eta, (state1,))
  np.testing.assert_array_equal(state2.lifetimes.steps, [0, 2 * per_step])
  np.testing.assert_array_equal(state2.lifetimes.budget, [LIFETIME_STEPS, 100 * per_step])
  assert int(m2.lifetimes_ended) == 1
  # 2 meta-steps = 18 steps per env with episodes of <= 8 steps: lifetime 0 has a final
  # return, and the bandit got exactly it, for lifetime 0's arm.
  arm0 = int(state1.lifetimes.arm[0])
  final = float(m2.final_return)
  assert np.isfinite(final)
  assert int(state2.bandit.count.sum()) == 1 and int(state2.bandit.count[arm0]) == 1
  assert float(state2.bandit.returns[arm0, 0]) == pytest.approx(final)
