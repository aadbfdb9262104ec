"""The actor-critic agent's settings per environment: the LPG paper's Table 3 (grid worlds
and chains) and Table 4 (Atari).

A `Preset` fixes the network (tables for integer observations whatever the sizes say;
conv/MLP torsos otherwise), the optimiser, and the meta-test settings the paper fixes for a
family (Atari: 30 envs, gamma 0.995, Adam 5e-4, alpha_y 0.5 and Eq. 7's baseline; None
means the rule's default). Grid worlds: the conv kernels are unspecified in the paper;
3x3 stride-1 'SAME' is our choice. Atari: C32-C64-C64-D512 with Nature-DQN kernels and
strides (unspecified in the paper). Gymnasium: vector observations get a D64-D64 MLP,
images the Atari torso.
"""

from __future__ import annotations

import dataclasses

from dm_env import specs

from environments import registry


@dataclasses.dataclass(frozen=True)
class Preset:
  """Network, optimiser and meta-test settings of the actor-critic agent for an env.

  Attributes:
    conv_channels, conv_kernels, conv_strides, conv_padding: conv layers of the torso
      (empty kernels / strides mean 3x3, stride 1).
    mlp_sizes: dense layers after the conv layers (or on a vector observation).
    optimizer: 'sgd' (tables) or 'adam'.
    num_envs: B, parallel environments at meta-test.
    discount: gamma at meta-test.
    learning_rate, y_cost: meta-test values the paper fixes (None: the rule's defaults).
    pi_hat_baseline: whether learned rules get the Eq. 7 baseline at meta-test.
  """

  conv_channels: tuple[int, ...] = ()
  mlp_sizes: tuple[int, ...] = ()
  optimizer: str = "sgd"
  conv_kernels: tuple[int, ...] = ()
  conv_strides: tuple[int, ...] = ()
  conv_padding: str = "SAME"
  num_envs: int = 64
  discount: float = 0.99
  learning_rate: float | None = None
  y_cost: float | None = None
  pi_hat_baseline: bool = False

  def torso_kwargs(self) -> dict:
    """The torso arguments of `inner_agents.networks.make_network`."""
    return dict(
      conv_channels=self.conv_channels,
      mlp_sizes=self.mlp_sizes,
      conv_kernels=self.conv_kernels,
      conv_strides=self.conv_strides,
      conv_padding=self.conv_padding,
    )


TABLE = Preset()
RANDOM_GRID = Preset((16,), (32,), "adam")  # Table 3: C(16)-D(32)
# Table 4: C(32)-C(64)-C(64)-D(512), Nature-DQN kernels and strides.
NATURE = dict(
  conv_channels=(32, 64, 64), conv_kernels=(8, 4, 3), conv_strides=(4, 2, 1), conv_padding="VALID"
)
ATARI = Preset(
  mlp_sizes=(512,),
  optimizer="adam",
  num_envs=30,
  discount=0.995,
  learning_rate=5e-4,
  y_cost=0.5,
  pi_hat_baseline=True,
  **NATURE,
)
GYM_VECTOR = Preset(mlp_sizes=(64, 64), optimizer="adam", num_envs=16)
GYM_IMAGE = Preset(mlp_sizes=(512,), optimizer="adam", num_envs=16, **NATURE)

# Table 3, by environment where it differs from the family's.
BY_ENV = {
  "random_small": Preset((), (32,), "adam"),  # D(32)
  "random_small_sparse": Preset((), (32,), "adam"),
  "random_very_dense": Preset((32, 16, 16), (256,), "adam"),  # C(32-16-16)-D(256)
  "chain_distractor": Preset((), (16,), "adam"),  # D(16)
}
BY_FAMILY = {"tabular_grid": TABLE, "random_grid": RANDOM_GRID, "chain": TABLE, "atari": ATARI}


def preset(env_name: str, obs_spec: specs.Array | None = None) -> Preset:
  """The preset for `env_name` (any registered, spec-file, Atari or Gymnasium name).

  A Gymnasium env's torso depends on its observations (`obs_spec`; without it, the vector
  one); nothing else needs the environment built.
  """
  family = registry.family(env_name)
  if family == "gym":
    return GYM_IMAGE if obs_spec is not None and len(obs_spec.shape) == 3 else GYM_VECTOR
  return BY_ENV.get(env_name, BY_FAMILY[family])
