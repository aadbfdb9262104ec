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
    except json.JSONDecodeError as e:
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
    elif isinstance(item, Sequence) and len(item) == 2 and isinstance(item[1], Sequence):
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
    walls = self.spec.walls
    object_type = [self.spec.object_types.index(o.as_tuple()) for o in self.spec.objects]
    object.__setattr__(self, "_walls_flat", walls.reshape(-1))
    object.__setattr__(self, "_free_flat", ~walls.reshape(-1))
    object.__setattr__(
      self, "_object_values", np.array([o.as_tuple() for o in self.spec.objects], np.float32)
    )
    object.__setattr__(self, "_object_type", np.array(object_type, np.int32))

  @property
  def num_actions(self) -> int:
    return self.spec.num_actions

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

  def _distinct_free_cells(self, key: chex.PRNGKey, occupied: chex.Array, k: int) -> chex.Array:
    """k distinct uniformly random free cells not in `occupied` (bool [H*W]) -> int32 [k]."""
    # k successive argmaxes of random scores (k is small). Not lax.top_k: XLA:CPU lowers a
    # top_k whose result is sliced to a full sort, ~15x slower in a batched env step. No
    # scatters either: one-hot comparisons vectorise far better under vmap.
    cell_ids = jnp.arange(self.num_cells)
    scores = jax.random.uniform(key, (self.num_cells,))
    scores = jnp.where(jnp.asarray(self._free_flat) & ~occupied, scores, -1.0)
    cells = []
    for _ in range(k):
      # argmax as max + min-index (a variadic argmax reduce is slow on CPU).
      cell = jnp.min(jnp.where(scores == jnp.max(scores), cell_ids, self.num_cells))
      cells.append(cell)
      scores = jnp.where(cell_ids == cell, -2.0, scores)
    return jnp.stack(cells).astype(jnp.int32)

  def sample_params(self, key: chex.PRNGKey) -> GridParams:
    cells = self._distinct_free_cells(key, jnp.zeros(self.num_cells, bool), self.num_objects + 1)
    return GridParams(object_cell=cells[1:], start_cell=cells[0])

  def reset(self, key: chex.PRNGKey, params: GridParams) -> tuple[GridState, types.TimeStep]:
    state_key, cells_key = jax.random.split(key)
    state = self._initial_state(state_key, cells_key, params)
    return state, types.first_timestep(self._observe(state))

  def _initial_state(self, state_key: chex.PRNGKey, cells_key: chex.PRNGKey, params: GridParams) -> GridState:
    if self.spec.observation == "tabular":
      agent_cell, object_cell = params.start_cell, params.object_cell
    else:
      occupied = jnp.zeros(self.num_cells, bool)
      cells = self._distinct_free_cells(cells_key, occupied, self.num_objects + 1)
      agent_cell, object_cell = cells[0], cells[1:]
    return GridState(
      key=state_key,
      agent_cell=jnp.asarray(agent_cell, jnp.int32),
      object_cell=jnp.asarray(object_cell, jnp.int32),
      present=jnp.ones(self.num_objects, bool),
      t=jnp.zeros((), jnp.int32),
    )

  def _neighbour(self, cell: chex.Array, move: chex.Array) -> tuple[chex.Array, chex.Array]:
    """Cell reached by `move` (index into MOVES) from `cell`, and whether it is enterable."""
    h, w = self.spec.height, self.spec.width
    row, col = cell // w, cell % w
    d = jnp.asarray(MOVES)[move]
    r, c = row + d[0], col + d[1]
    inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
    target = jnp.clip(r, 0, h - 1) * w + jnp.clip(c, 0, w - 1)
    ok = inside & ~jnp.asarray(self._walls_flat)[target]
    return target.astype(jnp.int32), ok

  def _transition(self, state: GridState, action: chex.Array, cells_key: chex.PRNGKey):
    """The next state (before any reset), reward, terminated and truncated flags."""
    key, term_key, respawn_key = jax.random.split(state.key, 3)
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
    u_term = jax.random.uniform(term_key, (self.num_objects,))
    terminated = jnp.any(hit & (u_term < values[:, 1]))
    # Objects absent before this step may respawn now; those collected now may not.
    u_respawn = jax.random.uniform(respawn_key, (self.num_objects,))
    respawn = ~state.present & (u_respawn < values[:, 2])
    present = (state.present & ~hit) | respawn
    object_cell = state.object_cell
    if self.spec.observation == "map":
      occupied = self._one_hot_cells(agent_cell) | jnp.any(
        self._one_hot_cells(object_cell) & (state.present & ~hit)[:, None], axis=0
      )
      new_cells = self._distinct_free_cells(cells_key, occupied, self.num_objects)
      object_cell = jnp.where(respawn, new_cells, object_cell)
    t = state.t + 1
    truncated = (t >= self.spec.max_steps) & ~terminated
    next_state = GridState(key=key, agent_cell=agent_cell, object_cell=object_cell, present=present, t=t)
    return next_state, reward, terminated, truncated

  def step_env(
    self, state: GridState, action: chex.Array, params: GridParams
  ) -> tuple[GridState, types.TimeStep]:
    del params  # The layout lives in the state.
    cells_key = jax.random.fold_in(state.key, 1)
    next_state, reward, terminated, truncated = self._transition(state, action, cells_key)
    ts = types.transition_timestep(self._observe(next_state), reward, terminated, truncated)
    return next_state, ts

  def step(
    self, state: GridState, action: chex.Array, params: GridParams
  ) -> tuple[GridState, types.TimeStep]:
    """`Environment.step`, specialised: the respawn draw and the reset draw share random
    cell scores (only one of the two is ever used) and the observation is computed once,
    which halves the cost of a batched auto-resetting step."""
    cells_key = jax.random.fold_in(state.key, 1)
    next_state, reward, terminated, truncated = self._transition(state, action, cells_key)
    key, reset_key = jax.random.split(next_state.key)
    reset_state = self._initial_state(reset_key, cells_key, params)
    last = terminated | truncated
    next_state = jax.tree.map(lambda r, n: jnp.where(last, r, n), reset_state, next_state.replace(key=key))
    ts = types.transition_timestep(self._observe(next_state), reward, terminated, truncated)
    return next_state, ts

  def _observe(self, state: GridState) -> chex.Array:
    if self.spec.observation == "tabular":
      bits = jnp.sum(state.present.astype(jnp.int32) << jnp.arange(self.num_objects))
      return (state.agent_cell * 2**self.num_objects + bits).astype(jnp.int32)
    h, w = self.spec.height, self.spec.width
    agent = self._one_hot_cells(state.agent_cell).astype(jnp.float32)  # [H*W]
    objects = self._one_hot_cells(state.object_cell) & state.present[:, None]  # [N, H*W]
    channels = [agent]
    for kind in range(len(self.spec.object_types)):
      of_kind = np.flatnonzero(self._object_type == kind)
      channels.append(jnp.any(objects[of_kind], axis=0).astype(jnp.float32))
    return jnp.stack(channels, axis=-1).reshape(h, w, -1)

  def _one_hot_cells(self, cells: chex.Array) -> chex.Array:
    """bool [..., H*W]: one-hot of flat cell indices [...]."""
    return cells[..., None] == jnp.arange(self.num_cells)


def _count_objects(objects: Sequence[ObjectSpec]) -> dict[tuple[float, float, float], int]:
  counts: dict[tuple[float, float, float], int] = {}
  for o in objects:
    counts[o.as_tuple()] = counts.get(o.as_tuple(), 0) + 1
  return counts
