"""Registry of environments by name: `make(name)` builds one, `family(name)` says its kind.

A path to a JSON grid-world spec (see `environments.grid_world.GridWorldSpec.from_dict`) is
accepted wherever a name is, so new grid worlds need no code; it belongs to the
`tabular_grid` or `random_grid` family by its observation.

Host-side environments, used for meta-testing only, are named by prefix:
`atari/<Game>` (any ROM ale-py bundles, `environments.atari`) and `gym/<id>` (any
Gymnasium env with discrete actions, `environments.gym_env`); `make_host(name, B)` builds
B of them. The registry holds environments only: which agent, optimiser and settings an
environment gets is the agent's business (`inner_agents/<agent>/presets.py`), and
meta-training's bandit grids and lifetime budgets are meta-training's
(`lpg/configs/meta_train.py`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

from environments import chain, grid_world, types
from environments.errors import UnknownEnvironmentError

FAMILIES = ("tabular_grid", "random_grid", "chain", "atari", "gym")


@dataclasses.dataclass(frozen=True)
class Entry:
  name: str
  family: str  # one of FAMILIES
  factory: Callable[[], types.Environment]


_REGISTRY: dict[str, Entry] = {}


def register(name: str, family: str, factory: Callable[[], types.Environment]) -> None:
  """Adds an environment under `name` (overwriting is an error)."""
  if name in _REGISTRY:
    raise ValueError(f"environment {name!r} is already registered")
  if family not in FAMILIES:
    raise ValueError(f"unknown environment family {family!r}; valid: {', '.join(FAMILIES)}")
  _REGISTRY[name] = Entry(name, family, factory)


def _grid(name: str, spec: grid_world.GridWorldSpec) -> Callable[[], types.Environment]:
  return lambda: grid_world.GridWorld(spec=spec, name=name)


def _chain(name: str, spec: chain.ChainSpec) -> Callable[[], types.Environment]:
  return lambda: chain.DelayedChain(spec=spec, name=name)


def _objects(*groups: tuple[int, tuple[float, float, float]]) -> tuple[grid_world.ObjectSpec, ...]:
  return tuple(grid_world.ObjectSpec(*values) for count, values in groups for _ in range(count))


_open = grid_world.open_layout
# Interior walls read from the paper's figures (LPG_FACTS.md, section 5).
LONGER_HORIZON_LAYOUT = (
  "....#....",
  ".........",
  "....#....",
  "...###...",
  "....#....",
  ".........",
  "....#....",
)
LONG_DENSE_LAYOUT = (
  "...........",
  ".....#.....",
  ".....#.....",
  ".....#.....",
  "##.#####.##",
  ".....#.....",
  ".....#.....",
  "...........",
  ".....#.....",
  ".....#.....",
  ".....#.....",
)
SMALL_LAYOUT = (
  ".......",
  "..#....",
  ".......",
  "....#..",
  ".......",
)

_DENSE = _objects((2, (1, 0, 0.05)), (1, (-1, 0.5, 0.1)), (1, (-1, 0, 0.5)))
_LONG_HORIZON = _objects((2, (1, 0, 0.01)), (2, (-1, 0.5, 1)))

_TABULAR = {
  "tabular_dense": (_open(11, 11), _DENSE, 500),
  "tabular_sparse": (_open(13, 13), _objects((1, (1, 1, 0)), (1, (-1, 1, 0))), 50),
  "tabular_long_horizon": (_open(11, 11), _LONG_HORIZON, 1000),
  "tabular_longer_horizon": (
    LONGER_HORIZON_LAYOUT,
    _objects((2, (1, 0.1, 0.01)), (5, (-1, 0.8, 1))),
    2000,
  ),
  "tabular_long_dense": (LONG_DENSE_LAYOUT, _objects((4, (1, 0, 0.005))), 2000),
}
_RANDOM = {
  "random_dense": (_open(11, 11), _DENSE, 500),
  "random_long_horizon": (_open(11, 11), _LONG_HORIZON, 1000),
  "random_small": (SMALL_LAYOUT, _objects((2, (1, 0, 0.05)), (2, (-1, 0.5, 0.1))), 500),
  "random_small_sparse": (SMALL_LAYOUT, _objects((1, (1, 1, 1)), (2, (-1, 1, 1))), 50),
  "random_very_dense": (_open(11, 11), _objects((1, (1, 0, 1))), 2000),
}
_CHAINS = {
  "chain_short": chain.ChainSpec(5, 30),
  "chain_short_noisy": chain.ChainSpec(5, 30, noisy=True),
  "chain_long": chain.ChainSpec(5, 50),
  "chain_long_noisy": chain.ChainSpec(5, 50, noisy=True),
  "chain_distractor": chain.ChainSpec(5, 30, observation="distractor"),
}

for _name, (_layout, _objs, _max_steps) in _TABULAR.items():
  register(
    _name, "tabular_grid", _grid(_name, grid_world.GridWorldSpec(_layout, _objs, _max_steps, "tabular"))
  )
for _name, (_layout, _objs, _max_steps) in _RANDOM.items():
  register(_name, "random_grid", _grid(_name, grid_world.GridWorldSpec(_layout, _objs, _max_steps, "map")))
for _name, _spec in _CHAINS.items():
  register(_name, "chain", _chain(_name, _spec))


def names(family: str | None = None) -> list[str]:
  """Registered environment names (of one family, if given), in registration order."""
  return [n for n, e in _REGISTRY.items() if family is None or e.family == family]


def _is_spec_file(name: str) -> bool:
  return name.endswith(".json")


def _custom_entry(path: str) -> Entry:
  spec = grid_world.GridWorldSpec.from_json_file(path)
  env_name = os.path.splitext(os.path.basename(path))[0]
  family = "tabular_grid" if spec.observation == "tabular" else "random_grid"
  return Entry(env_name, family, _grid(env_name, spec))


# Host-side environments (meta-test only).
ATARI_PREFIX, GYM_PREFIX = "atari/", "gym/"


def is_host(name: str) -> bool:
  """Whether `name` is a host-side (numpy) environment: atari/<Game> or gym/<id>."""
  return name.startswith((ATARI_PREFIX, GYM_PREFIX))


def entry(name: str) -> Entry:
  """The registry entry for `name`, or for a grid-world JSON spec file (JAX envs only)."""
  if name in _REGISTRY:
    return _REGISTRY[name]
  if _is_spec_file(name):
    return _custom_entry(name)
  raise UnknownEnvironmentError(
    f"unknown environment {name!r}; valid: {', '.join(names())}, or a grid-world spec file *.json, "
    "atari/<Game>, gym/<id>"
  )


def family(name: str) -> str:
  """The family of any environment name: a registered env, a spec file or a host env."""
  if name.startswith(ATARI_PREFIX):
    return "atari"
  if name.startswith(GYM_PREFIX):
    return "gym"
  return entry(name).family


def make(name: str) -> types.Environment:
  """Builds the JAX environment registered as `name` (or described by a JSON spec file)."""
  return entry(name).factory()


def make_host(name: str, num_envs: int, **options):
  """B = num_envs host-side environments `name` (an `environments.host.HostEnvironment`).

  options go to the backend (`AtariConfig` fields for Atari, `gymnasium.make` kwargs).
  """
  if name.startswith(ATARI_PREFIX):
    from environments import atari  # Imported late: ale-py is an optional dependency.

    return atari.AtariEnvironment(name[len(ATARI_PREFIX) :], num_envs, atari.AtariConfig(**options))
  if name.startswith(GYM_PREFIX):
    from environments import gym_env

    return gym_env.GymEnvironment(name[len(GYM_PREFIX) :], num_envs, **options)
  raise UnknownEnvironmentError(f"{name!r} is not a host environment (atari/<Game> or gym/<id>)")


def validate(name: str) -> None:
  """Raises UnknownEnvironmentError (or the backend's one-line error) for a bad name."""
  if is_host(name):
    make_host(name, 1).close()
  else:
    make(name)


def describe_all() -> list[tuple[str, str]]:
  """(name, one-line description) for every registered environment."""
  return [(n, e.factory().describe()) for n, e in _REGISTRY.items()]
