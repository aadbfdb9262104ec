"""Grid worlds: moves, collection, termination/respawn, truncation, auto-reset, observations,
layouts of the paper's maps, and spec parsing. Expected values are worked out by hand."""

import json

import jax.numpy as jnp
import numpy as np
import pytest
from env_testing import B, batched, keys, lifetime_params, pad, random_actions, to_numpy, within
from env_testing import make as make_env

from environments import grid_world, types
from environments.grid_world import GridParams, GridState, GridWorld, GridWorldSpec, ObjectSpec, SpecError

# A 4x5 tabular grid (flat cell = 5 * row + col) with walls at (0, 3) = 3 and (3, 0) = 15:
#      col 0  1  2  3  4
#   row 0  0  1  2  #  4
#   row 1  5  6  7  8  9
#   row 2 10 11 12 13 14
#   row 3  # 16 17 18 19
# Objects: 0 = [1, 0.3, 0.2], 1 = [-1, 0, 1], 2 = [0.5, 1, 0]; episodes truncate after 5 steps.
# Tabular index = cell * 8 + present_0 + 2 present_1 + 4 present_2.
GW = GridWorld(
  GridWorldSpec(
    layout=("...#.", ".....", ".....", "#...."),
    objects=(ObjectSpec(1.0, 0.3, 0.2), ObjectSpec(-1.0, 0.0, 1.0), ObjectSpec(0.5, 1.0, 0.0)),
    max_steps=5,
    observation="tabular",
  ),
  name="test_grid",
)
STAY, N, S, W, E, NW, NE, SW, SE = range(9)
FAR = (17, 18, 19)  # Object cells out of reach of every move tested below.


def grid_states(agent, object_cell, present=(True, True, True), t=0, seed=0) -> GridState:
  """A batch of B GridStates from k cases (padded); object_cell, present and t may be shared."""
  k = len(agent)
  n = np.shape(object_cell)[-1]
  return GridState(
    key=keys(seed),
    agent_cell=jnp.asarray(pad(agent), jnp.int32),
    object_cell=jnp.asarray(pad(np.broadcast_to(object_cell, (k, n))), jnp.int32),
    present=jnp.asarray(pad(np.broadcast_to(present, (k, n))), bool),
    t=jnp.asarray(pad(np.broadcast_to(t, (k,))), jnp.int32),
  )


def actions(cases) -> jnp.ndarray:
  return jnp.asarray(pad(cases), jnp.int32)


GW_PARAMS = GridParams(object_cell=jnp.asarray([7, 1, 12], jnp.int32), start_cell=jnp.asarray(0, jnp.int32))


def gw_step_env(state, action):
  return to_numpy(batched(GW).step_env(state, action, GW_PARAMS))


def gw_step(state, action):
  return to_numpy(batched(GW).step(state, action, GW_PARAMS))


# ---------------------------------------------------------------------------------------------
# Moves.


MOVE_CASES = [
  # (start cell, action, expected cell)
  # Open centre (1, 1): every move succeeds.
  (6, STAY, 6),
  (6, N, 1),
  (6, S, 11),
  (6, W, 5),
  (6, E, 7),
  (6, NW, 0),
  (6, NE, 2),
  (6, SW, 10),
  (6, SE, 12),
  # Top-left corner: the border blocks N, W, NW, NE and SW.
  (0, STAY, 0),
  (0, N, 0),
  (0, S, 5),
  (0, W, 0),
  (0, E, 1),
  (0, NW, 0),
  (0, NE, 0),
  (0, SW, 0),
  (0, SE, 6),
  # The wall at (0, 3) blocks N from (1, 3) and W from (0, 4); diagonals beside it pass.
  (8, N, 8),
  (8, NW, 2),
  (8, NE, 4),
  (4, W, 4),
  (4, E, 4),
  (4, SW, 8),
  (4, S, 9),
  # The wall at (3, 0) blocks S from (2, 0), SW from (2, 1) and W from (3, 1).
  (10, S, 10),
  (10, SE, 16),
  (10, SW, 10),
  (10, W, 10),
  (11, SW, 11),
  (16, W, 16),
  (16, S, 16),
  (16, SW, 16),
  (14, E, 14),
  (14, NE, 14),
  (14, N, 9),
]


def test_moves_walls_and_border():
  start, action, expected = np.array(MOVE_CASES).T
  k = len(MOVE_CASES)
  state, ts = gw_step_env(grid_states(start, FAR), actions(action))
  np.testing.assert_array_equal(state.agent_cell[:k], expected)
  np.testing.assert_array_equal(ts.observation[:k], expected * 8 + 7)  # Nothing collected.
  np.testing.assert_array_equal(ts.reward[:k], 0.0)
  np.testing.assert_array_equal(ts.step_type[:k], types.MID)
  np.testing.assert_array_equal(state.t[:k], 1)


# ---------------------------------------------------------------------------------------------
# Collection with 9 actions, termination and respawn.


def test_pickup_with_nine_actions():
  # Agent at 6; object 0 east (7), object 1 north (1), object 2 south-east (12).
  cases = [
    # (action, present before, reward, present after, agent cell after)
    (E, (1, 1, 1), 1.0, (0, 1, 1), 7),
    (N, (1, 1, 1), -1.0, (1, 0, 1), 1),
    (SE, (1, 1, 1), 0.5, (1, 1, 0), 12),
    (STAY, (1, 1, 1), 0.0, (1, 1, 1), 6),
    (W, (1, 1, 1), 0.0, (1, 1, 1), 5),
    # Object 1 absent: stepping onto its cell gives nothing, and it respawns there (p = 1).
    (N, (1, 0, 1), 0.0, (1, 1, 1), 1),
  ]
  action = [c[0] for c in cases]
  present = [c[1] for c in cases]
  state, ts = gw_step_env(grid_states([6] * len(cases), (7, 1, 12), present), actions(action))
  for i, (_, _, reward, present_after, cell) in enumerate(cases):
    assert ts.reward[i] == reward, i
    np.testing.assert_array_equal(state.present[i], present_after, err_msg=str(i))
    bits = present_after[0] + 2 * present_after[1] + 4 * present_after[2]
    assert ts.observation[i] == cell * 8 + bits, i
  # Object 1 never terminates; object 2 always does (discount 0); others below.
  assert ts.step_type[1] == types.MID and ts.discount[1] == 1.0
  assert ts.step_type[2] == types.LAST and ts.discount[2] == 0.0
  assert ts.step_type[3] == types.MID


def test_termination_probability():
  # Rows 0-47 collect object 0 (p_term 0.3), 48-55 object 1 (0), 56-63 object 2 (1).
  action = actions([E] * 48 + [N] * 8 + [SE] * 8)
  ended = []
  for seed in range(60):
    _, ts = gw_step_env(grid_states([6] * B, (7, 1, 12), seed=seed), action)
    np.testing.assert_array_equal(ts.reward, [1.0] * 48 + [-1.0] * 8 + [0.5] * 8)
    np.testing.assert_array_equal(ts.discount, np.where(ts.step_type == types.LAST, 0.0, 1.0))
    ended.append(ts.step_type == types.LAST)
  ended = np.array(ended)  # [60, B]
  assert not ended[:, 48:56].any()
  assert ended[:, 56:].all()
  rate = ended[:, :48].mean()
  assert within(rate, 0.3, ended[:, :48].size), rate


def test_respawn_probability_and_no_respawn_on_collection_step():
  # Agent at 6 collects object 1 (p_respawn 1) to the north; object 0 (p_respawn 0.2) and
  # object 2 (p_respawn 0) are absent.
  present_after = []
  for seed in range(60):
    state, ts = gw_step_env(grid_states([6] * B, (7, 1, 12), (0, 1, 0), seed=seed), actions([N]))
    assert (ts.reward == -1.0).all()
    present_after.append(state.present)
  present_after = np.array(present_after)  # [60, B, 3]
  assert not present_after[..., 1].any()  # Not on the step it was collected.
  assert not present_after[..., 2].any()  # p_respawn = 0.
  rate = present_after[..., 0].mean()
  assert within(rate, 0.2, present_after[..., 0].size), rate
  # Object 1 reappears on the next step, at its own cell under the agent (tabular), and is
  # collected by the step after that.
  state = grid_states([1] * B, (7, 1, 12), (0, 0, 0))
  state, ts = gw_step_env(state, actions([STAY]))
  assert (state.present[:, 1]).all() and (ts.reward == 0.0).all()
  np.testing.assert_array_equal(ts.observation, 1 * 8 + 2 + state.present[:, 0])
  state, ts = gw_step_env(state, actions([STAY]))
  assert (ts.reward == -1.0).all() and not state.present[:, 1].any()


# ---------------------------------------------------------------------------------------------
# The 18-action variant: moves never collect, collect actions do.

# 3x3 open grid (cells 0-8, centre 4), objects 0 = [1, 0, 0] and 1 = [2, 0, 0].
# Tabular index = cell * 4 + present_0 + 2 present_1.
GW18 = GridWorld(
  GridWorldSpec(
    layout=("...", "...", "..."),
    objects=(ObjectSpec(1.0, 0.0, 0.0), ObjectSpec(2.0, 0.0, 0.0)),
    max_steps=10,
    observation="tabular",
    num_actions=18,
  ),
  name="test_grid_18",
)
COLLECT = 9  # Collect action = 9 + move index.


def test_eighteen_actions():
  assert GW18.action_spec().num_values == 18
  cases = [
    # (agent, object cells, action, reward, agent after, present after)
    (4, (5, 0), E, 0.0, 5, (1, 1)),  # Moving onto an object does not collect it.
    (4, (5, 0), NW, 0.0, 0, (1, 1)),
    (4, (5, 0), COLLECT + E, 1.0, 4, (0, 1)),  # Collect east: the agent stays.
    (4, (5, 0), COLLECT + NW, 2.0, 4, (1, 0)),
    (4, (5, 0), COLLECT + W, 0.0, 4, (1, 1)),  # Nothing there.
    (4, (5, 0), COLLECT + STAY, 0.0, 4, (1, 1)),
    (5, (5, 0), COLLECT + STAY, 1.0, 5, (0, 1)),  # Collect at the own cell.
    (5, (5, 0), STAY, 0.0, 5, (1, 1)),
    (2, (5, 0), COLLECT + NE, 0.0, 2, (1, 1)),  # Off the grid.
    (1, (5, 0), COLLECT + W, 2.0, 1, (1, 0)),
  ]
  agent, cells, action, reward, agent_after, present_after = zip(*cases)
  state = grid_states(agent, np.array(cells), (1, 1))
  params = GridParams(object_cell=jnp.asarray([5, 0], jnp.int32), start_cell=jnp.asarray(4, jnp.int32))
  state, ts = to_numpy(batched(GW18).step_env(state, actions(action), params))
  k = len(cases)
  np.testing.assert_array_equal(ts.reward[:k], reward)
  np.testing.assert_array_equal(state.agent_cell[:k], agent_after)
  np.testing.assert_array_equal(state.present[:k], present_after)
  bits = np.array(present_after) @ [1, 2]
  np.testing.assert_array_equal(ts.observation[:k], np.array(agent_after) * 4 + bits)


# ---------------------------------------------------------------------------------------------
# Episode ends: truncation, termination, auto-reset.


def test_truncation_after_max_steps():
  state = grid_states([6], FAR)
  step_types, discounts = [], []
  for _ in range(5):
    state, ts = batched(GW).step_env(state, actions([STAY]), GW_PARAMS)
    step_types.append(int(ts.step_type[0]))
    discounts.append(float(ts.discount[0]))
  assert step_types == [types.MID] * 4 + [types.LAST]
  assert discounts == [1.0] * 5
  assert int(state.t[0]) == 5


def test_termination_beats_truncation_on_the_last_step():
  # At t = 4, collecting object 2 (p_term 1) terminates (discount 0); staying truncates.
  state = grid_states([6, 6, 6], (7, 1, 12), t=[4, 4, 2])
  _, ts = gw_step_env(state, actions([SE, STAY, STAY]))
  np.testing.assert_array_equal(ts.step_type[:3], [types.LAST, types.LAST, types.MID])
  np.testing.assert_array_equal(ts.discount[:3], [0.0, 1.0, 1.0])
  np.testing.assert_array_equal(ts.reward[:3], [0.5, 0.0, 0.0])


def test_auto_reset_after_last():
  # Params: start at 0, objects at 7, 1, 12, so a fresh episode observes 0 * 8 + 7 = 7.
  cases = [
    # (agent, object cells, t, action): truncation, termination, an ordinary step.
    (6, FAR, 4, STAY),
    (6, (17, 18, 12), 2, SE),
    (6, FAR, 2, STAY),
  ]
  agent, cells, t, action = zip(*cases)
  state, ts = gw_step(grid_states(agent, np.array(cells), t=t), actions(action))
  np.testing.assert_array_equal(ts.step_type[:3], [types.LAST, types.LAST, types.MID])
  np.testing.assert_array_equal(ts.discount[:3], [1.0, 0.0, 1.0])
  # The LAST step keeps its own reward but shows the next episode's first observation.
  np.testing.assert_array_equal(ts.reward[:3], [0.0, 0.5, 0.0])
  np.testing.assert_array_equal(ts.observation[:3], [7, 7, 6 * 8 + 7])
  np.testing.assert_array_equal(state.t[:3], [0, 0, 3])
  np.testing.assert_array_equal(state.agent_cell[:3], [0, 0, 6])
  np.testing.assert_array_equal(state.object_cell[:2], [[7, 1, 12]] * 2)
  assert state.present[:2].all()


def test_repeated_one_step_episodes():
  # From the start cell 0, object 2 is moved next to the start: every E step collects it,
  # ends the episode (p_term 1) with return 0.5 and restarts at cell 0.
  params = GridParams(object_cell=jnp.asarray([17, 18, 1], jnp.int32), start_cell=jnp.asarray(0, jnp.int32))
  state, ts = batched(GW).reset(keys(1), params)
  first_obs = np.asarray(ts.observation)
  np.testing.assert_array_equal(first_obs, 7)
  for _ in range(3):
    state, ts = to_numpy(batched(GW).step(state, actions([E]), params))
    np.testing.assert_array_equal(ts.step_type, types.LAST)
    np.testing.assert_array_equal(ts.reward, 0.5)
    np.testing.assert_array_equal(ts.discount, 0.0)
    np.testing.assert_array_equal(ts.observation, first_obs)
    np.testing.assert_array_equal(state.t, 0)


# ---------------------------------------------------------------------------------------------
# Observations and layouts.


def test_tabular_index_and_num_states():
  assert GW.num_states == 20 * 2**3
  spec = GW.observation_spec()
  assert spec.dtype == np.int32 and spec.shape == () and spec.maximum == GW.num_states - 1
  # Highest cell with everything present is the highest index.
  _, ts = gw_step_env(grid_states([19], (7, 1, 12)), actions([STAY]))
  assert ts.observation[0] == 19 * 8 + 7 == GW.num_states - 1
  # Reset observes params.start_cell * 8 + 7 (all present).
  params = GridParams(object_cell=GW_PARAMS.object_cell, start_cell=jnp.asarray(13, jnp.int32))
  _, ts = batched(GW).reset(keys(2), params)
  np.testing.assert_array_equal(np.asarray(ts.observation), 13 * 8 + 7)


def _check_cells(spec: GridWorldSpec, agent: np.ndarray, cells: np.ndarray, present: np.ndarray):
  """Agent and present objects are on free cells, all distinct. agent [B], cells/present [B, N]."""
  walls = spec.walls.reshape(-1)
  assert not walls[agent].any()
  assert not walls[cells[present]].any()
  assert not (present & (cells == agent[:, None])).any()
  pairs = present[:, :, None] & present[:, None, :] & ~np.eye(cells.shape[1], dtype=bool)
  assert not (pairs & (cells[:, :, None] == cells[:, None, :])).any()


def test_tabular_layout_fixed_within_a_lifetime():
  env = make_env("tabular_long_dense")  # Has interior walls.
  layouts = set()
  for seed in range(4):
    params = lifetime_params(env, 0, i=seed)
    state, ts = to_numpy(batched(env).reset(keys(10 + seed), params))
    np.testing.assert_array_equal(state.object_cell, np.broadcast_to(params.object_cell, (B, 4)))
    np.testing.assert_array_equal(state.agent_cell, int(params.start_cell))
    _check_cells(env.spec, state.agent_cell, state.object_cell, state.present)
    assert state.present.all()
    np.testing.assert_array_equal(ts.observation, int(params.start_cell) * 16 + 15)
    layouts.add(tuple(np.asarray(params.object_cell)))
  assert len(layouts) == 4  # Re-randomised across lifetimes.


def test_map_layout_random_per_episode():
  env = make_env("random_small")
  params = lifetime_params(env, 0)
  state, _ = to_numpy(batched(env).reset(keys(1), params))
  _check_cells(env.spec, state.agent_cell, state.object_cell, state.present)
  assert len({tuple(c) for c in state.object_cell}) > B // 2
  assert len(set(state.agent_cell)) > 10


def _check_map_observation(env: GridWorld, state, obs: np.ndarray):
  """obs [B, H, W, 1 + types] is the one-hot agent plus one channel per object type."""
  h, w = env.spec.height, env.spec.width
  expected = np.zeros((B, h * w, 1 + len(env.spec.object_types)), np.float32)
  expected[np.arange(B), state.agent_cell, 0] = 1.0
  for i, o in enumerate(env.spec.objects):
    kind = 1 + env.spec.object_types.index(o.as_tuple())
    rows = np.flatnonzero(state.present[:, i])
    expected[rows, state.object_cell[rows, i], kind] = 1.0
  np.testing.assert_array_equal(obs, expected.reshape(B, h, w, -1))
  # Distinct cells, so channel sums count the agent and the present objects of each type.
  np.testing.assert_array_equal(obs[..., 0].sum((1, 2)), 1.0)
  np.testing.assert_array_equal(obs[..., 1:].sum((1, 2, 3)), state.present.sum(1))


def test_map_grid_invariants_over_a_long_run():
  """random_small (interior walls, 9 actions, 4 objects of 2 types): every step keeps the
  agent and present objects on distinct free cells, the observation matches the state, and
  objects respawn at new random cells."""
  env = make_env("random_small")
  assert env.observation_spec().shape == (5, 7, 3)
  params = lifetime_params(env, 0)
  state, ts = batched(env).reset(keys(2), params)
  prev = to_numpy(state)
  _check_map_observation(env, prev, np.asarray(ts.observation))
  moved_respawns = same_cell_respawns = collected = 0
  acts = random_actions(0, 9, (300, B))
  for t in range(300):
    state, ts = batched(env).step(state, acts[t], params)
    now, ts = to_numpy((state, ts))
    _check_cells(env.spec, now.agent_cell, now.object_cell, now.present)
    _check_map_observation(env, now, ts.observation)
    collected += int((ts.reward != 0).sum())
    same_episode = now.t > 0
    respawned = ~prev.present & now.present & same_episode[:, None]
    moved = now.object_cell != prev.object_cell
    moved_respawns += int((respawned & moved).sum())
    same_cell_respawns += int((respawned & ~moved).sum())
    prev = now
  assert collected > 50
  # 33 free cells: a respawn at the old cell is rare (about 1 in 30).
  assert moved_respawns > 10 * same_cell_respawns
  assert moved_respawns > 20


# A map grid with one wall and three free cells (0 is a wall): the agent and two objects fill it.
TIGHT = GridWorld(
  GridWorldSpec(
    layout=("#...",),
    objects=(ObjectSpec(1.0, 0.0, 1.0), ObjectSpec(-1.0, 0.0, 1.0)),
    max_steps=10,
    observation="map",
  ),
  name="test_tight",
)


def test_map_respawn_on_a_full_grid_takes_the_only_free_cell():
  # Agent at 3, object 0 at 1, object 1 absent: it must respawn (p 1) at cell 2, the only
  # free cell not holding the agent or object 0 (whatever the random draw).
  state = grid_states([3], (1, 3), (1, 0))
  params = GridParams(object_cell=np.array([1, 2], np.int32), start_cell=np.int32(3))  # Unused.
  state, ts = to_numpy(batched(TIGHT).step_env(state, actions([STAY]), params))
  assert state.present.all()
  np.testing.assert_array_equal(state.object_cell, [[1, 2]] * B)
  np.testing.assert_array_equal(ts.observation[:, 0, :, 0], [[0, 0, 0, 1]] * B)  # Agent.
  np.testing.assert_array_equal(ts.observation[:, 0, :, 1], [[0, 1, 0, 0]] * B)  # Object 0.
  np.testing.assert_array_equal(ts.observation[:, 0, :, 2], [[0, 0, 1, 0]] * B)  # Object 1.


# ---------------------------------------------------------------------------------------------
# The paper's grid worlds (LPG_FACTS.md section 5).


def _objs(*groups):
  return sorted(values for count, values in groups for _ in range(count))


DENSE = _objs((2, (1, 0, 0.05)), (1, (-1, 0.5, 0.1)), (1, (-1, 0, 0.5)))
LONG_HORIZON = _objs((2, (1, 0, 0.01)), (2, (-1, 0.5, 1)))
PAPER_GRIDS = {
  # name: (height, width, objects, max_steps, observation)
  "tabular_dense": (11, 11, DENSE, 500, "tabular"),
  "tabular_sparse": (13, 13, _objs((1, (1, 1, 0)), (1, (-1, 1, 0))), 50, "tabular"),
  "tabular_long_horizon": (11, 11, LONG_HORIZON, 1000, "tabular"),
  "tabular_longer_horizon": (7, 9, _objs((2, (1, 0.1, 0.01)), (5, (-1, 0.8, 1))), 2000, "tabular"),
  "tabular_long_dense": (11, 11, _objs((4, (1, 0, 0.005))), 2000, "tabular"),
  "random_dense": (11, 11, DENSE, 500, "map"),
  "random_long_horizon": (11, 11, LONG_HORIZON, 1000, "map"),
  "random_small": (5, 7, _objs((2, (1, 0, 0.05)), (2, (-1, 0.5, 0.1))), 500, "map"),
  "random_small_sparse": (5, 7, _objs((1, (1, 1, 1)), (2, (-1, 1, 1))), 50, "map"),
  "random_very_dense": (11, 11, _objs((1, (1, 0, 1))), 2000, "map"),
}


@pytest.mark.parametrize("name", sorted(PAPER_GRIDS))
def test_paper_grid_sizes_and_objects(name):
  height, width, objects, max_steps, observation = PAPER_GRIDS[name]
  spec = make_env(name).spec
  assert (spec.height, spec.width) == (height, width)
  assert sorted(o.as_tuple() for o in spec.objects) == objects
  assert spec.max_steps == max_steps
  assert spec.observation == observation
  assert spec.num_actions == 9


def _wall_cells(name):
  return {tuple(rc) for rc in np.argwhere(make_env(name).spec.walls)}


def test_paper_walls():
  # longer_horizon: column 4 except rows 1 and 5, plus (3, 3) and (3, 5): a plus shape.
  assert _wall_cells("tabular_longer_horizon") == {(r, 4) for r in (0, 2, 3, 4, 6)} | {(3, 3), (3, 5)}
  # long_dense: column 5 except rows 0 and 7, row 4 except columns 2 and 8: four rooms.
  column = {(r, 5) for r in range(11) if r not in (0, 7)}
  row = {(4, c) for c in range(11) if c not in (2, 8)}
  assert _wall_cells("tabular_long_dense") == column | row
  assert _wall_cells("random_small") == {(1, 2), (3, 4)}
  for name in (
    "tabular_dense",
    "tabular_sparse",
    "tabular_long_horizon",
    "random_dense",
    "random_long_horizon",
  ):
    assert _wall_cells(name) == set(), name
  assert _wall_cells("random_very_dense") == set()


# ---------------------------------------------------------------------------------------------
# Specs as data.

BASE = {"size": [3, 4], "objects": [[1, 0, 0.5]], "max_steps": 20, "observation": "tabular"}


def test_from_dict_object_notations():
  spec = GridWorldSpec.from_dict(
    {
      "layout": ["..#.", "...."],
      "objects": [
        [1, 0, 0.05],
        [2, [-1, 0.5, 0.1]],
        {"reward": 0.5, "termination_prob": 1, "respawn_prob": 0},
        {"reward": 2, "termination_prob": 0, "respawn_prob": 1, "count": 2},
      ],
      "max_steps": 100,
      "observation": "map",
      "num_actions": 18,
      "description": "four kinds",
    }
  )
  assert spec.layout == ("..#.", "....")
  assert [o.as_tuple() for o in spec.objects] == [
    (1.0, 0.0, 0.05),
    (-1.0, 0.5, 0.1),
    (-1.0, 0.5, 0.1),
    (0.5, 1.0, 0.0),
    (2.0, 0.0, 1.0),
    (2.0, 0.0, 1.0),
  ]
  assert spec.object_types == ((1.0, 0.0, 0.05), (-1.0, 0.5, 0.1), (0.5, 1.0, 0.0), (2.0, 0.0, 1.0))
  assert (spec.max_steps, spec.observation, spec.num_actions, spec.description) == (
    100,
    "map",
    18,
    "four kinds",
  )
  assert GridWorldSpec.from_dict(spec.to_dict()) == spec


def test_from_dict_size_shorthand_and_defaults():
  spec = GridWorldSpec.from_dict(BASE)
  assert spec.layout == ("....",) * 3
  assert not spec.walls.any() and spec.walls.shape == (3, 4)
  assert spec.num_actions == 9 and spec.description == ""


def test_from_json_file(tmp_path):
  path = tmp_path / "g.json"
  path.write_text(json.dumps(BASE))
  assert GridWorldSpec.from_json_file(path) == GridWorldSpec.from_dict(BASE)
  assert GridWorldSpec.from_json_file(str(path)) == GridWorldSpec.from_dict(BASE)


@pytest.mark.parametrize(
  ("change", "message"),
  [
    ({"colour": "red"}, r"unknown grid-world spec field\(s\) \['colour'\]"),
    ({"objects": [[1, 1.5, 0]]}, r"probabilities must lie in \[0, 1\]"),
    ({"objects": [[1, 0, -0.1]]}, r"probabilities must lie in \[0, 1\]"),
    ({"objects": [[1, float("nan"), 0]]}, "finite numbers"),
    ({"objects": [[1, True, 0]]}, "finite numbers"),
    ({"objects": [[1, 0]]}, "must be \\[reward, termination_prob, respawn_prob\\]"),
    ({"objects": [[2, [1, 0]]]}, "must be \\[reward, termination_prob, respawn_prob\\]"),
    ({"objects": [[0, [1, 0, 0]]]}, "count must be a positive integer"),
    ({"objects": [{"reward": 1, "termination_prob": 0}]}, "missing 'respawn_prob'"),
    (
      {"objects": [{"reward": 1, "termination_prob": 0, "respawn_prob": 0, "colour": 1}]},
      "unknown object field",
    ),
    ({"objects": []}, "at least one object"),
    ({"objects": "[1, 0, 0]"}, "'objects' must be a list"),
    ({"size": None, "layout": ["...", ".."]}, "equal length"),
    ({"size": None, "layout": ["..x", "..."]}, r"only '\.' \(free\) and '#' \(wall\), got \['x'\]"),
    ({"size": None, "layout": "...."}, "list of row strings"),
    ({"size": None, "layout": []}, "non-empty"),
    ({"size": None, "layout": ["#.", "##"]}, "1 free cells, too few for 1 objects and the agent"),
    ({"size": [1, 2], "objects": [[2, [1, 0, 0]]]}, "2 free cells, too few for 2 objects"),
    ({"size": [3]}, r"'size' must be \[height, width\]"),
    ({"size": None}, "needs a 'layout'"),
    ({"observation": "pixels"}, r"observation must be one of \['tabular', 'map'\], got 'pixels'"),
    ({"num_actions": 4}, r"num_actions must be one of \[9, 18\], got 4"),
    ({"num_actions": 9.0}, "'num_actions' must be an integer"),
    ({"max_steps": -1}, "max_steps must be a positive integer, got -1"),
    ({"max_steps": 0}, "max_steps must be a positive integer"),
    ({"max_steps": "10"}, "'max_steps' must be an integer"),
    ({"max_steps": None}, "missing the field 'max_steps'"),
    ({"size": [18, 1], "objects": [[17, [1, 0, 0]]]}, "at most 16 objects"),
  ],
)
def test_malformed_specs(change, message):
  data = {**BASE, **change}
  data = {k: v for k, v in data.items() if v is not None}
  with pytest.raises(SpecError, match=message):
    GridWorldSpec.from_dict(data)


def test_spec_not_a_mapping():
  with pytest.raises(SpecError, match="must be a mapping, got list"):
    GridWorldSpec.from_dict([BASE])


def test_malformed_json_files(tmp_path):
  assert issubclass(SpecError, ValueError)
  bad = tmp_path / "bad.json"
  bad.write_text('{"size": [3, 4], "objects": ')
  with pytest.raises(SpecError, match=r"bad\.json is not valid JSON"):
    GridWorldSpec.from_json_file(bad)
  binary = tmp_path / "binary.json"
  binary.write_bytes(b"\xff\xfe\x00")
  with pytest.raises(SpecError, match=r"binary\.json is not valid JSON"):
    GridWorldSpec.from_json_file(binary)
  with pytest.raises(SpecError, match=r"cannot read grid-world spec .*missing\.json"):
    GridWorldSpec.from_json_file(tmp_path / "missing.json")
  bad.write_text(json.dumps({**BASE, "observation": "pixels"}))
  with pytest.raises(SpecError, match="observation must be one of"):
    GridWorldSpec.from_json_file(bad)


def test_open_layout_and_describe():
  assert grid_world.open_layout(2, 3) == ("...", "...")
  text = make_env("tabular_dense").describe()
  assert (
    text == "tabular grid 11x11, objects 2x[1,0,0.05], 1x[-1,0.5,0.1], 1x[-1,0,0.5], max 500 steps, 9 actions"
  )
