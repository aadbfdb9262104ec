"""Registry of environments by name, with the paper's per-environment agent settings.

`make(name)` builds an environment; `preset(name)` gives the agent architecture and the
hyperparameter grids of the LPG paper's Table 3 for it. A path to a JSON grid-world spec
(see `environments.grid_world.GridWorldSpec.from_dict`) is accepted wherever a name is,
so new grid worlds need no code.

Host-side environments, used for meta-testing only, are named by prefix:
`atari/<Game>` (any ROM ale-py bundles, `environments.atari`) and `gym/<id>` (any
Gymnasium env with discrete actions, `environments.gym_env`); `make_host(name, B)` builds
B of them, `host_preset(env)` gives their agent (Table 4's for Atari) and `test_preset(name)`
the meta-test settings the paper fixes for them.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

from environments import chain, grid_world, types


class UnknownEnvironmentError(ValueError):
  """An environment name that is neither registered nor a grid-world spec file."""


@dataclasses.dataclass(frozen=True)
class AgentPreset:
  """The paper's agent settings for an environment (Table 3).

  Attributes:
    conv_channels: conv layers of the torso (grid worlds: kernel sizes are unspecified in
      the paper; 3x3 stride-1 'SAME' is our choice).
    mlp_sizes: dense layers after the conv layers (or on a vector observation).
    conv_kernels, conv_strides, conv_padding: per conv layer; empty means 3x3, stride 1.
    optimizer: 'sgd' (tables) or 'adam'.
    learning_rates: the bandit's grid for the agent learning rate alpha_lr.
    y_costs: the bandit's grid for the KL cost alpha_y.
    lifetime_steps: environment steps in one lifetime during meta-training.
  Tabular observations (integer index) always get a table, whatever the sizes say.
  """

  conv_channels: tuple[int, ...] = ()
  mlp_sizes: tuple[int, ...] = ()
  optimizer: str = "sgd"
  learning_rates: tuple[float, ...] = (20.0, 40.0, 80.0)
  y_costs: tuple[float, ...] = (0.1, 0.5, 1.0)
  lifetime_steps: int = 3_000_000
  conv_kernels: tuple[int, ...] = ()
  conv_strides: tuple[int, ...] = ()
  conv_padding: str = "SAME"

  def torso_kwargs(self) -> dict:
    """The torso arguments of `inner_agents.agent.make_agent`."""
    return dict(
      conv_channels=self.conv_channels,
      mlp_sizes=self.mlp_sizes,
      conv_kernels=self.conv_kernels,
      conv_strides=self.conv_strides,
      conv_padding=self.conv_padding,
    )


@dataclasses.dataclass(frozen=True)
class TestPreset:
  """Meta-test settings the paper fixes for an environment family (None: the rule's).

  The grid worlds and chains follow meta-training (64 envs, T = 20); Atari follows Table 4
  (30 envs, gamma 0.995, Adam 5e-4, alpha_y 0.5) and the Eq. 7 baseline on pi_hat.
  """

  num_envs: int = 64
  discount: float = 0.99
  learning_rate: float | None = None
  y_cost: float | None = None
  pi_hat_baseline: bool = False


TABLE = AgentPreset()
CHAIN_TABLE = AgentPreset(lifetime_steps=1_000_000)
_RANDOM_LRS = (5e-4, 1e-3, 2e-3, 5e-3)


@dataclasses.dataclass(frozen=True)
class Entry:
  name: str
  family: str  # 'tabular_grid' | 'random_grid' | 'chain' | 'custom'
  factory: Callable[[], types.Environment]
  preset: AgentPreset


_REGISTRY: dict[str, Entry] = {}


def register(name: str, family: str, factory: Callable[[], types.Environment], preset: AgentPreset):
  """Adds an environment under `name` (overwriting is an error)."""
  if name in _REGISTRY:
    raise ValueError(f"environment {name!r} is already registered")
  _REGISTRY[name] = Entry(name, family, factory, preset)


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
  "random_dense": (_open(11, 11), _DENSE, 500, AgentPreset((16,), (32,), "adam", _RANDOM_LRS)),
  "random_long_horizon": (
    _open(11, 11),
    _LONG_HORIZON,
    1000,
    AgentPreset((16,), (32,), "adam", _RANDOM_LRS),
  ),
  "random_small": (
    SMALL_LAYOUT,
    _objects((2, (1, 0, 0.05)), (2, (-1, 0.5, 0.1))),
    500,
    AgentPreset((), (32,), "adam", _RANDOM_LRS),
  ),
  "random_small_sparse": (
    SMALL_LAYOUT,
    _objects((1, (1, 1, 1)), (2, (-1, 1, 1))),
    50,
    AgentPreset((), (32,), "adam", _RANDOM_LRS),
  ),
  "random_very_dense": (
    _open(11, 11),
    _objects((1, (1, 0, 1))),
    2000,
    AgentPreset((32, 16, 16), (256,), "adam", _RANDOM_LRS),
  ),
}
_CHAINS = {
  "chain_short": (chain.ChainSpec(5, 30), CHAIN_TABLE),
  "chain_short_noisy": (chain.ChainSpec(5, 30, noisy=True), CHAIN_TABLE),
  "chain_long": (chain.ChainSpec(5, 50), CHAIN_TABLE),
  "chain_long_noisy": (chain.ChainSpec(5, 50, noisy=True), CHAIN_TABLE),
  "chain_distractor": (
    chain.ChainSpec(5, 30, observation="distractor"),
    AgentPreset((), (16,), "adam", (2e-3, 5e-3, 1e-2), lifetime_steps=2_000_000),
  ),
}

for _name, (_layout, _objs, _max_steps) in _TABULAR.items():
  _spec = grid_world.GridWorldSpec(_layout, _objs, _max_steps, "tabular")
  register(_name, "tabular_grid", _grid(_name, _spec), TABLE)
for _name, (_layout, _objs, _max_steps, _preset) in _RANDOM.items():
  _spec = grid_world.GridWorldSpec(_layout, _objs, _max_steps, "map")
  register(_name, "random_grid", _grid(_name, _spec), dataclasses.replace(_preset, lifetime_steps=30_000_000))
for _name, (_spec, _preset) in _CHAINS.items():
  register(_name, "chain", _chain(_name, _spec), _preset)


def names(family: str | None = None) -> list[str]:
  """Registered environment names (of one family, if given), in registration order."""
  return [n for n, e in _REGISTRY.items() if family is None or e.family == family]


def _is_spec_file(name: str) -> bool:
  return name.endswith(".json")


def _custom_entry(path: str) -> Entry:
  spec = grid_world.GridWorldSpec.from_json_file(path)
  env_name = os.path.splitext(os.path.basename(path))[0]
  if spec.observation == "tabular":
    preset = TABLE
  else:
    preset = AgentPreset((16,), (32,), "adam", _RANDOM_LRS, lifetime_steps=30_000_000)
  return Entry(env_name, "custom", _grid(env_name, spec), preset)


def entry(name: str) -> Entry:
  """The registry entry for `name`, or for a grid-world JSON spec file."""
  if name in _REGISTRY:
    return _REGISTRY[name]
  if _is_spec_file(name):
    return _custom_entry(name)
  raise UnknownEnvironmentError(
    f"unknown environment {name!r}; valid: {', '.join(names())}, or a grid-world spec file *.json"
  )


def make(name: str) -> types.Environment:
  """Builds the environment registered as `name` (or described by a JSON spec file)."""
  return entry(name).factory()


def preset(name: str) -> AgentPreset:
  """The paper's agent settings for `name` (Table 3)."""
  return entry(name).preset


# Host-side environments (meta-test only).
ATARI_PREFIX, GYM_PREFIX = "atari/", "gym/"
# Table 4: C(32)-C(64)-C(64)-D(512); kernels and strides are Nature DQN's (unspecified).
NATURE_TORSO = dict(conv_channels=(32, 64, 64), conv_kernels=(8, 4, 3), conv_strides=(4, 2, 1))
ATARI = AgentPreset(
  mlp_sizes=(512,),
  optimizer="adam",
  learning_rates=(1e-3, 5e-4, 3e-4),
  y_costs=(1.0, 0.5, 0.1),
  lifetime_steps=0,
  conv_padding="VALID",
  **NATURE_TORSO,
)
ATARI_TEST = TestPreset(num_envs=30, discount=0.995, learning_rate=5e-4, y_cost=0.5, pi_hat_baseline=True)
# Gymnasium: vector observations get a D(64)-D(64) MLP, images the Atari torso.
GYM_VECTOR = AgentPreset(
  mlp_sizes=(64, 64), optimizer="adam", learning_rates=(1e-3, 2e-3, 5e-3), lifetime_steps=0
)
GYM_TEST = TestPreset(num_envs=16)


def is_host(name: str) -> bool:
  """Whether `name` is a host-side (numpy) environment: atari/<Game> or gym/<id>."""
  return name.startswith((ATARI_PREFIX, GYM_PREFIX))


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


def host_preset(env) -> AgentPreset:
  """The agent for a host env: Table 4's for images (Atari), an MLP for vectors."""
  return ATARI if len(env.observation_spec().shape) == 3 else GYM_VECTOR


def test_preset(name: str) -> TestPreset:
  """Meta-test settings for `name` (see TestPreset)."""
  if name.startswith(ATARI_PREFIX):
    return ATARI_TEST
  if name.startswith(GYM_PREFIX):
    return GYM_TEST
  return TestPreset()


def validate(name: str) -> None:
  """Raises UnknownEnvironmentError (or the backend's one-line error) for a bad name."""
  if is_host(name):
    make_host(name, 1).close()
  else:
    make(name)


def describe_all() -> list[tuple[str, str]]:
  """(name, one-line description) for every registered environment."""
  return [(n, e.factory().describe()) for n, e in _REGISTRY.items()]
