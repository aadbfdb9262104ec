"""Grid worlds of the LPG paper (Oh et al. 2020, Appendix A), JAX-native.

Mechanics (paper): the agent moves on a walled grid holding objects, each described by
[reward, termination probability, respawn probability]. Collecting an object gives its
reward; the episode then terminates with the object's termination probability; the
object vanishes and, on every later step, reappears with its respawn probability. An
episode is truncated after `max_steps` steps.

Two observation kinds (paper):
  * tabular: objects sit at fixed cells for a whole lifetime (drawn by `sample_params`)
    and the observation is the integer state index
      cell(agent) * 2**N + sum_i present_i * 2**i      (N objects),
    so there are H*W*2**N states (wall cells are simply never visited).
  * map ("random" grid worlds): objects are placed at random free cells at the start of
    each episode and respawn at random free cells. The observation is a binary
    float32 tensor [H, W, 1 + num_types]: channel 0 is the agent's position, channel
    1 + k marks present objects of the k-th distinct [reward, term, respawn] type.

Actions (paper): a lifetime uses one of two action sets.
  * 9 actions: stay or move to one of the 8 neighbours; stepping onto an object collects
    it.
  * 18 actions: the same 9 moves, which here do *not* collect, plus 9 "collect" actions
    that collect the object at the own cell or one of the 8 neighbours.
  The action set is static per environment instance (it fixes the policy's size), so a
  population draws it per lifetime by grouping lifetimes by action set.

Choices where the paper is silent (documented here, tested in tests/):
  * Move offsets are ordered stay, N, S, W, E, NW, NE, SW, SE. A move into a wall or off
    the grid leaves the agent in place; diagonal moves only check the target cell.
  * Tabular grids: the agent's start cell is drawn once per lifetime with the object
    cells (all distinct). Map grids: agent and objects get distinct random free cells
    at every episode start.
  * An object can respawn only on steps after the one it was collected on. In map grids
    it respawns at a random free cell not holding the agent or a present object; in
    tabular grids at its own cell.
  * Rewards are only from collecting; there is no step cost.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
from dm_env import specs

from environments import types

# (d_row, d_col) of the 9 moves: stay, N, S, W, E, NW, NE, SW, SE.
MOVES = np.array(
  [[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1], [-1, -1], [-1, 1], [1, -1], [1, 1]],
  dtype=np.int32,
)
# MOVES[:, 0] + 1 and MOVES[:, 1] + 1 as base-4 digits (move i at bits 2i, 2i + 1).
_MOVE_ROW_DIGITS = sum(int(d + 1) << (2 * i) for i, d in enumerate(MOVES[:, 0]))
_MOVE_COL_DIGITS = sum(int(d + 1) << (2 * i) for i, d in enumerate(MOVES[:, 1]))
# Padding of rank lists, above any rank.
_PAD = 1 << 24
# Up to this many walls, wall lookups are comparisons; beyond it, gathers.
_MAX_WALL_COMPARES = 32
OBSERVATION_KINDS = ("tabular", "map")
ACTION_SET_SIZES = (9, 18)


class SpecError(ValueError):
  """A grid-world spec that does not describe a valid grid world."""


@dataclasses.dataclass(frozen=True)
class ObjectSpec:
  """One object: reward on collection, termination and respawn probabilities."""

  reward: float
  termination_prob: float
  respawn_prob: float

  def as_tuple(self) -> tuple[float, float, float]:
    return (self.reward, self.termination_prob, self.respawn_prob)


@dataclasses.dataclass(frozen=True)
class GridWorldSpec:
  """A grid world as data.

  Attributes:
    layout: interior rows, top to bottom; '#' is a wall cell, '.' a free cell. The border
      wall is implicit.
    objects: one ObjectSpec per object instance.
    max_steps: episode length limit (truncation).
    observation: 'tabular' (state index, fixed object cells) or 'map' (random cells,
      binary map observation).
    num_actions: 9 (moves, auto-collect) or 18 (moves + collect actions).
    description: one line for listings.
  """

  layout: tuple[str, ...]
  objects: tuple[ObjectSpec, ...]
  max_steps: int
  observation: str
  num_actions: int = 9
  description: str = ""

  def __post_init__(self):
    _validate(self)

  @property
  def height(self) -> int:
    return len(self.layout)

  @property
  def width(self) -> int:
    return len(self.layout[0])

  @property
  def walls(self) -> np.ndarray:
    """bool [H, W], True at wall cells."""
    return np.array([[c == "#" for c in row] for row in self.layout], dtype=bool)

  @property
  def object_types(self) -> tuple[tuple[float, float, float], ...]:
    """Distinct (reward, term, respawn) triples in order of first appearance."""
    seen: list[tuple[float, float, float]] = []
    for o in self.objects:
      if o.as_tuple() not in seen:
        seen.append(o.as_tuple())
    return tuple(seen)

  def to_dict(self) -> dict[str, Any]:
    return {
      "layout": list(self.layout),
      "objects": [dataclasses.asdict(o) for o in self.objects],
      "max_steps": self.max_steps,
      "observation": self.observation,
      "num_actions": self.num_actions,
      "description": self.description,
    }

  @classmethod
  def from_dict(cls, data: Mapping[str, Any]) -> GridWorldSpec:
    """Builds a spec from plain data (e.g. parsed JSON).

    Objects may be given as dicts {reward, termination_prob, respawn_prob, count?} or in
    the paper's notation as lists [reward, term, respawn] or [count, [reward, term,
    respawn]]. The layout may be a list of row strings, or omitted in favour of
    `size: [H, W]` for an open grid.
    """
    if not isinstance(data, Mapping):
      raise SpecError(f"a grid-world spec must be a mapping, got {type(data).__name__}")
    known = {"layout", "size", "objects", "max_steps", "observation", "num_actions", "description"}
    unknown = sorted(set(data) - known)
    if unknown:
      raise SpecError(f"unknown grid-world spec field(s) {unknown}; valid fields: {sorted(known)}")
    for field in ("objects", "max_steps", "observation"):
      if field not in data:
        raise SpecError(f"grid-world spec is missing the field '{field}'")
    if "layout" in data:
      layout = data["layout"]
      if isinstance(layout, str) or not isinstance(layout, Sequence):
        raise SpecError("grid-world 'layout' must be a list of row strings")
      layout = tuple(str(row) for row in layout)
    elif "size" in data:
      size = data["size"]
      if not (isinstance(size, Sequence) and len(size) == 2 and all(_is_int(s) for s in size)):
        raise SpecError(f"grid-world 'size' must be [height, width], got {size!r}")
      layout = open_layout(int(size[0]), int(size[1]))
    else:
      raise SpecError("grid-world spec needs a 'layout' (rows) or a 'size' [height, width]")
    objects = tuple(_parse_objects(data["objects"]))
    for field in ("max_steps", "num_actions"):
      if field in data and not _is_int(data[field]):
        raise SpecError(f"grid-world '{field}' must be an integer, got {data[field]!r}")
    return cls(
      layout=layout,
      objects=objects,
      max_steps=int(data["max_steps"]),
      observation=str(data["observation"]),
      num_actions=int(data.get("num_actions", 9)),
      description=str(data.get("description", "")),
    )

  @classmethod
  def from_json_file(cls, path: str | os.PathLike[str]) -> GridWorldSpec:
    try:
      with open(path) as f:
        data = json.load(f)
    except OSError as e:
      raise SpecError(f"cannot read grid-world spec {path}: {e.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
      raise SpecError(f"grid-world spec {path} is not valid JSON: {e}") from None
    return cls.from_dict(data)


def open_layout(height: int, width: int) -> tuple[str, ...]:
  """An open height x width interior (no interior walls)."""
  return tuple("." * width for _ in range(height))


def _is_int(x: Any) -> bool:
  return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
  return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _parse_objects(raw: Any) -> list[ObjectSpec]:
  if isinstance(raw, (str, Mapping)) or not isinstance(raw, Sequence):
    raise SpecError("grid-world 'objects' must be a list")
  objects = []
  for item in raw:
    count = 1
    if isinstance(item, Mapping):
      extra = sorted(set(item) - {"reward", "termination_prob", "respawn_prob", "count"})
      if extra:
        raise SpecError(f"unknown object field(s) {extra}")
      try:
        values = [item["reward"], item["termination_prob"], item["respawn_prob"]]
      except KeyError as e:
        raise SpecError(f"object {dict(item)} is missing {e.args[0]!r}") from None
      count = item.get("count", 1)
    elif (
      isinstance(item, Sequence) and len(item) == 2 and isinstance(item[1], Sequence) and len(item[1]) == 3
    ):
      count, values = item[0], list(item[1])
    elif isinstance(item, Sequence) and len(item) == 3:
      values = list(item)
    else:
      raise SpecError(
        f"object {item!r} must be [reward, termination_prob, respawn_prob], "
        "[count, [reward, termination_prob, respawn_prob]] or a dict"
      )
    if not _is_int(count) or count < 1:
      raise SpecError(f"object count must be a positive integer, got {count!r}")
    if not all(_is_number(v) for v in values):
      raise SpecError(f"object values must be finite numbers, got {values!r}")
    objects += [ObjectSpec(*(float(v) for v in values))] * count
  return objects


def _validate(spec: GridWorldSpec) -> None:
  if not spec.layout or not all(isinstance(r, str) for r in spec.layout):
    raise SpecError("grid-world layout must be a non-empty list of row strings")
  if len({len(r) for r in spec.layout}) != 1 or not spec.layout[0]:
    raise SpecError("grid-world layout rows must be non-empty and of equal length")
  bad = sorted({c for r in spec.layout for c in r} - {".", "#"})
  if bad:
    raise SpecError(f"grid-world layout may hold only '.' (free) and '#' (wall), got {bad}")
  if not spec.objects:
    raise SpecError("grid-world spec needs at least one object")
  for o in spec.objects:
    if not (0.0 <= o.termination_prob <= 1.0 and 0.0 <= o.respawn_prob <= 1.0):
      raise SpecError(f"object probabilities must lie in [0, 1], got {o.as_tuple()}")
  if not _is_int(spec.max_steps) or spec.max_steps < 1:
    raise SpecError(f"grid-world max_steps must be a positive integer, got {spec.max_steps!r}")
  if spec.observation not in OBSERVATION_KINDS:
    raise SpecError(
      f"grid-world observation must be one of {list(OBSERVATION_KINDS)}, got {spec.observation!r}"
    )
  if spec.num_actions not in ACTION_SET_SIZES:
    raise SpecError(
      f"grid-world num_actions must be one of {list(ACTION_SET_SIZES)}, got {spec.num_actions!r}"
    )
  free = int((~spec.walls).sum())
  if free < len(spec.objects) + 1:
    raise SpecError(
      f"grid-world has {free} free cells, too few for {len(spec.objects)} objects and the agent"
    )
  if spec.observation == "tabular" and len(spec.objects) > 16:
    raise SpecError("tabular grid worlds support at most 16 objects (2**N states per cell)")


@chex.dataclass(frozen=True)
class GridParams:
  """Per-lifetime draw. Used by tabular grids; map grids redraw cells each episode.

  object_cell: int32 [N], flat cell index (row * W + col) of each object.
  start_cell: int32 [], flat cell index of the agent's start.
  """

  object_cell: chex.Array
  start_cell: chex.Array


@chex.dataclass(frozen=True)
class GridState:
  """key: PRNG key; agent_cell: int32 []; object_cell: int32 [N]; present: bool [N];
  t: int32 [], steps taken in this episode."""

  key: chex.PRNGKey
  agent_cell: chex.Array
  object_cell: chex.Array
  present: chex.Array
  t: chex.Array


@dataclasses.dataclass(frozen=True, eq=False)
class GridWorld(types.Environment):
  """A grid world built from a GridWorldSpec (see module docstring)."""

  spec: GridWorldSpec
  name: str = "grid_world"

  # Static numpy arrays derived from the spec, closed over by jit (eq=False: hash by id).
  def __post_init__(self):
    walls = self.spec.walls.reshape(-1)
    object_type = [self.spec.object_types.index(o.as_tuple()) for o in self.spec.objects]
    object.__setattr__(self, "_walls_flat", walls)
    object.__setattr__(self, "_wall_cells", np.flatnonzero(walls).astype(np.int32))
    # Free cells in increasing order, and each cell's rank among them (cell <-> rank).
    object.__setattr__(self, "_free_cells", np.flatnonzero(~walls).astype(np.int32))
    object.__setattr__(self, "_free_rank", (np.cumsum(~walls) - 1).astype(np.int32))
    if (~walls).sum() > 2**16:  # The limit of `_uniform_int`.
      raise SpecError("grid worlds support at most 65536 free cells")
    object.__setattr__(
      self, "_object_values", np.array([o.as_tuple() for o in self.spec.objects], np.float32)
    )
    object.__setattr__(self, "_object_type", np.array(object_type, np.int32))

  @property
  def num_actions(self) -> int:
    return self.spec.num_actions

  @property
  def max_episode_steps(self) -> int:
    return self.spec.max_steps

  @property
  def num_objects(self) -> int:
    return len(self.spec.objects)

  @property
  def num_cells(self) -> int:
    return self.spec.height * self.spec.width

  @property
  def num_states(self) -> int:
    """Number of tabular states, H * W * 2**N (tabular grids only)."""
    return self.num_cells * 2**self.num_objects

  def describe(self) -> str:
    s = self.spec
    kind = "tabular grid" if s.observation == "tabular" else "random grid (map obs)"
    objs = ", ".join(f"{n}x[{r:g},{t:g},{p:g}]" for (r, t, p), n in _count_objects(s.objects).items())
    text = f"{kind} {s.height}x{s.width}, objects {objs}, max {s.max_steps} steps, {s.num_actions} actions"
    return f"{text}; {s.description}" if s.description else text

  def observation_spec(self) -> specs.Array:
    if self.spec.observation == "tabular":
      return specs.BoundedArray((), jnp.int32, 0, self.num_states - 1, name="observation")
    shape = (self.spec.height, self.spec.width, 1 + len(self.spec.object_types))
    return specs.BoundedArray(shape, jnp.float32, 0.0, 1.0, name="observation")

  # Randomness, tuned for batched steps on XLA:CPU. Each function makes one PRNG call
  # (`types.random_words`; threefry was most of a step's cost) and uses each uint32 word
  # for one draw. Cells are drawn by rank (`_distinct_free_cells`), with O(k * m) scalar
  # ops instead of H*W random scores and k masked argmaxes; lax.top_k (a full sort on
  # XLA:CPU), variadic argmax reductions, scatters and gathers are all slow under vmap.
  # Keep the rank arithmetic as small array ops: long chains of dependent scalar ops
  # that end in one jnp.stack got fused into a single loop that recomputed every chain
  # for every element of the stack (4x slower steps on random_small).

  @property
  def _num_cell_words(self) -> int:
    """Random words per step for cells (reset and respawn share them; map grids only)."""
    return self.num_objects + 1 if self.spec.observation == "map" else 0

  def _distinct_free_cells(
    self,
    words: chex.Array,
    occupied: chex.Array | None = None,
    active: chex.Array | None = None,
  ) -> chex.Array:
    """Distinct uniformly random free cells, not in `occupied`, one per random word.

    Args:
      words: uint32 [k], one random word per draw.
      occupied: int32 [m] cells to avoid, -1 for none (duplicates allowed).
      active: bool [k]; draw j is made only where active[j] (default all): an inactive
        draw returns an arbitrary cell and does not exclude it from later draws.
    Returns:
      int32 [k] flat cell indices.

    Sequential sampling without replacement, by rank: draw j takes a uniform r (by
    multiply-shift on its word) below the number of cells still available and picks the
    r-th (from 0) of them. With `excluded` cells e_i, distinct, let s_i = e_i - #{e_j <
    e_i}, the number of non-excluded cells below e_i; then the r-th non-excluded cell is
    r + #{i: s_i <= r}, with no sort or search. The draws first pick positions among the
    available cells (excluding earlier draws), which then map past the occupied cells
    and the walls. Only small [k] and [m] arrays: no argmax or scatter, no H*W arrays.
    """
    num_free = len(self._free_cells)
    # Ranks (among the free cells) of the occupied cells, counting duplicates once.
    num_occupied, occupied_s = 0, None
    if occupied is not None:
      rank = jnp.where(occupied >= 0, self._rank(occupied), _PAD)
      earlier = np.tri(len(occupied), k=-1, dtype=bool)  # [i, j]: j < i.
      rank = jnp.where(jnp.any((rank[:, None] == rank[None, :]) & earlier, axis=1), _PAD, rank)
      occupied_s = rank - jnp.sum(rank[None, :] < rank[:, None], axis=1)
      num_occupied = jnp.sum(rank < _PAD)
    available = num_free - num_occupied

    # Positions p_j among the available cells, distinct over the active draws; s-values
    # of the drawn positions as above (a new one's is its r; later ones below it lower
    # those above it by one).
    positions: list[chex.Array] = []
    drawn_s: list[chex.Array] = []
    num_drawn = jnp.int32(0)
    for j in range(words.shape[0]):
      r = _uniform_int(words[j], jnp.maximum(available - num_drawn, 1).astype(jnp.uint32))
      p = r + sum(((s <= r).astype(jnp.int32) for s in drawn_s), jnp.int32(0))
      if j + 1 < words.shape[0]:
        on = jnp.bool_(True) if active is None else active[j]
        drawn_s = [s - ((q > p) & on).astype(jnp.int32) for s, q in zip(drawn_s, positions)]
        drawn_s.append(jnp.where(on, r, _PAD))
        num_drawn += on.astype(jnp.int32)
      positions.append(p)
    ranks = jnp.stack(positions)
    if occupied_s is not None:
      ranks += jnp.sum(occupied_s[None, :] <= ranks[:, None], axis=1)
    ranks = jnp.minimum(ranks, num_free - 1)  # Only matters when nothing is available.
    return self._cell(ranks)

  # Wall lookups compare against the few wall cells: gathers are slow in a vmapped step
  # on CPU (a layout with many walls falls back to them).

  def _rank(self, cell: chex.Array) -> chex.Array:
    """Rank of a free cell among the free cells."""
    if len(self._wall_cells) > _MAX_WALL_COMPARES:
      return jnp.asarray(self._free_rank)[cell]
    return cell - sum((cell > int(w)).astype(jnp.int32) for w in self._wall_cells)

  def _cell(self, rank: chex.Array) -> chex.Array:
    """The free cell of a given rank."""
    if len(self._wall_cells) > _MAX_WALL_COMPARES:
      return jnp.asarray(self._free_cells)[rank]
    for w in self._wall_cells:  # Ascending: each wall at or below the cell moves it up.
      rank = rank + (rank >= int(w)).astype(jnp.int32)
    return rank

  def _is_wall(self, cell: chex.Array) -> chex.Array:
    if len(self._wall_cells) > _MAX_WALL_COMPARES:
      return jnp.asarray(self._walls_flat)[cell]
    return functools.reduce(jnp.logical_or, (cell == int(w) for w in self._wall_cells), jnp.bool_(False))

  def sample_params(self, key: chex.PRNGKey) -> GridParams:
    words = jax.random.bits(key, (self.num_objects + 1,), jnp.uint32)
    cells = self._distinct_free_cells(words)
    return GridParams(object_cell=cells[1:], start_cell=cells[0])

  def reset(self, key: chex.PRNGKey, params: GridParams) -> tuple[GridState, types.TimeStep]:
    state_key, cell_words = types.random_words(key, self._num_cell_words)
    state = self._initial_state(state_key, cell_words, params)
    return state, types.first_timestep(self._observe(state))

  def _initial_state(self, key: chex.PRNGKey, cell_words: chex.Array, params: GridParams) -> GridState:
    if self.spec.observation == "tabular":
      agent_cell, object_cell = params.start_cell, params.object_cell
    else:
      cells = self._distinct_free_cells(cell_words)
      agent_cell, object_cell = cells[0], cells[1:]
    return GridState(
      key=key,
      agent_cell=jnp.asarray(agent_cell, jnp.int32),
      object_cell=jnp.asarray(object_cell, jnp.int32),
      present=jnp.ones(self.num_objects, bool),
      t=jnp.zeros((), jnp.int32),
    )

  def _neighbour(self, cell: chex.Array, move: chex.Array) -> tuple[chex.Array, chex.Array]:
    """Cell reached by `move` (index into MOVES) from `cell`, and whether it is enterable."""
    h, w = self.spec.height, self.spec.width
    row, col = cell // w, cell % w
    # MOVES[move] without a gather: each offset + 1 is a 2-bit digit of a constant.
    shift = 2 * move
    r = row + ((_MOVE_ROW_DIGITS >> shift) & 3) - 1
    c = col + ((_MOVE_COL_DIGITS >> shift) & 3) - 1
    inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
    target = jnp.clip(r, 0, h - 1) * w + jnp.clip(c, 0, w - 1)
    ok = inside & ~self._is_wall(target)
    return target.astype(jnp.int32), ok

  def _transition(self, state: GridState, action: chex.Array):
    """The next state (before any reset), reward, terminated and truncated flags, and
    the step's random words for cells (shared with a reset by `step`)."""
    n = self.num_objects
    key, words = types.random_words(state.key, 1 + n + self._num_cell_words)
    u_term, u_respawn, cell_words = _uniform(words[0]), _uniform(words[1 : n + 1]), words[n + 1 :]
    action = jnp.asarray(action, jnp.int32)
    move = action % 9
    target, ok = self._neighbour(state.agent_cell, move)
    if self.spec.num_actions == 9:
      agent_cell = jnp.where(ok, target, state.agent_cell)
      collect_cell, collecting = agent_cell, jnp.bool_(True)
    else:
      is_move = action < 9
      agent_cell = jnp.where(is_move & ok, target, state.agent_cell)
      collect_cell, collecting = target, ~is_move & ok
    values = jnp.asarray(self._object_values)  # [N, 3]
    hit = state.present & (state.object_cell == collect_cell) & collecting  # [N]
    reward = jnp.sum(jnp.where(hit, values[:, 0], 0.0))
    # One draw decides termination: present objects sit on distinct cells, so at most one
    # is collected per step.
    terminated = jnp.any(hit & (u_term < values[:, 1]))
    # Objects absent before this step may respawn now; those collected now may not.
    respawn = ~state.present & (u_respawn < values[:, 2])
    present = (state.present & ~hit) | respawn
    object_cell = state.object_cell
    if self.spec.observation == "map":
      # New cells avoid the agent and the objects still present (not those respawning).
      staying = state.present & ~hit
      occupied = jnp.concatenate([agent_cell[None], jnp.where(staying, object_cell, -1)])
      new_cells = self._distinct_free_cells(cell_words[:n], occupied, respawn)
      object_cell = jnp.where(respawn, new_cells, object_cell).astype(jnp.int32)
    t = state.t + 1
    truncated = (t >= self.spec.max_steps) & ~terminated
    next_state = GridState(key=key, agent_cell=agent_cell, object_cell=object_cell, present=present, t=t)
    return next_state, reward, terminated, truncated, cell_words

  def step_env(
    self, state: GridState, action: chex.Array, params: GridParams
  ) -> tuple[GridState, types.TimeStep]:
    del params  # The layout lives in the state.
    next_state, reward, terminated, truncated, _ = self._transition(state, action)
    ts = types.transition_timestep(self._observe(next_state), reward, terminated, truncated)
    return next_state, ts

  def step_autoreset(
    self, state: GridState, action: chex.Array, params: GridParams
  ) -> tuple[GridState, types.TimeStep, chex.Array]:
    """`Environment.step_autoreset`, specialised to draw randomness once: the respawn draw
    and the reset draw share random words, and the next episode's state the next key
    (only one of each pair is ever used). Without a reset the transition is exactly
    `step_env`'s. `step` observes once: the final observation is dead code there."""
    reached, reward, terminated, truncated, cell_words = self._transition(state, action)
    reset_state = self._initial_state(reached.key, cell_words, params)
    last = terminated | truncated
    next_state = jax.tree.map(lambda r, n: jnp.where(last, r, n), reset_state, reached)
    ts = types.transition_timestep(self._observe(next_state), reward, terminated, truncated)
    return next_state, ts, self._observe(reached)

  def _observe(self, state: GridState) -> chex.Array:
    if self.spec.observation == "tabular":
      bits = jnp.sum(state.present.astype(jnp.int32) << jnp.arange(self.num_objects))
      return (state.agent_cell * 2**self.num_objects + bits).astype(jnp.int32)
    h, w = self.spec.height, self.spec.width
    agent = self._one_hot_cells(state.agent_cell).astype(jnp.float32)  # [H*W]
    objects = self._one_hot_cells(state.object_cell) & state.present[:, None]  # [N, H*W]
    channels = [agent]
    for kind in range(len(self.spec.object_types)):
      of_kind = [objects[i] for i in np.flatnonzero(self._object_type == kind)]  # No gather.
      channels.append(functools.reduce(jnp.logical_or, of_kind).astype(jnp.float32))
    return jnp.stack(channels, axis=-1).reshape(h, w, -1)

  def _one_hot_cells(self, cells: chex.Array) -> chex.Array:
    """bool [..., H*W]: one-hot of flat cell indices [...]."""
    return cells[..., None] == jnp.arange(self.num_cells)


def _uniform(words: chex.Array) -> chex.Array:
  """float32 uniform in [0, 1) from uint32 words (as `jax.random.uniform` makes them)."""
  mantissa = (words >> 9) | np.uint32(0x3F800000)
  return jax.lax.bitcast_convert_type(mantissa, jnp.float32) - 1.0


def _uniform_int(word: chex.Array, n: chex.Array) -> chex.Array:
  """floor(word * n / 2**32), uniform in [0, n) up to n / 2**32, for uint32 n < 2**16.

  Multiply-shift in 16-bit halves, as uint32 has no high-half multiply and there is no
  vectorised integer division on CPU.
  """
  high = (word >> 16) * n
  low = ((word & np.uint32(0xFFFF)) * n) >> 16
  return ((high + low) >> 16).astype(jnp.int32)


def _count_objects(objects: Sequence[ObjectSpec]) -> dict[tuple[float, float, float], int]:
  counts: dict[tuple[float, float, float], int] = {}
  for o in objects:
    counts[o.as_tuple()] = counts.get(o.as_tuple(), 0) + 1
  return counts
