"""Inner-agent networks: a torso chosen by the observation, and pi / y / value heads.

* Integer observations (a state index) get a table (the paper's tabular agents): separate
  per-state entries for the policy logits, the y logits and the value.
* Vector observations get an MLP torso, image-like [H, W, C] observations a conv torso
  followed by an MLP, sizes from the paper's Table 3 (grid worlds: 3x3, stride 1, 'SAME',
  ReLU) or Table 4 (Atari: C32-C64-C64-D512 with the Nature-DQN kernels 8/4/3 and strides
  4/2/1, 'VALID'; the paper gives no kernels). uint8 images are scaled to [0, 1]. The
  three heads share the torso (the paper does not say; sharing is the common A2C choice).

Convolutions: XLA:CPU runs a convolution whose kernel differs per vmapped agent (every
lifetime and seed has its own parameters) as a grouped convolution, which is slow, and the
meta-gradient differentiates it twice. On a CPU the conv layers are therefore computed as
image patches @ kernel (`PatchConv2D`: k * k strided slices, then a matmul, batched under
vmap), which benchmarks/conv.py measures 2.2-3.5x faster for vmapped grid-world agents
(first and second order) and 2.4x for one Atari agent on the 2-core CPU; elsewhere (GPU,
TPU) the native convolution (not measured). Both have hk.Conv2D's parameters (names, shapes,
initialisation), so either reads the other's checkpoints; `conv_impl` forces one.

With `baseline=True` the network also has the LPG paper's Eq. 7 head f(s) (a table entry
or a linear head on the torso, made after the others so that their initial values do not
change), which regresses onto pi_hat at meta-test.

Initialisation (p(theta_0) is unspecified in the paper): the policy head starts at zero,
so every agent starts from the uniform policy (and the `random` rule stays uniform); the
value head of a table starts at zero; y-table entries start N(0, 0.1^2) so that predictions
of different states differ from the start; dense layers use haiku's defaults.
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
from dm_env import specs

from inner_agents.types import AgentOutput

Y_TABLE_INIT_STD = 0.1


def is_tabular(obs_spec: specs.Array) -> bool:
  """Whether an observation is a state index (scalar integer with a known maximum)."""
  return obs_spec.shape == () and np.issubdtype(obs_spec.dtype, np.integer)


def num_states(obs_spec: specs.Array) -> int:
  if not isinstance(obs_spec, specs.BoundedArray):
    raise ValueError("a tabular observation needs a BoundedArray spec with its maximum")
  return int(obs_spec.maximum) + 1


class TableNet(hk.Module):
  """Per-state tables: obs int32 [...] -> AgentOutput with leading dims [...]."""

  def __init__(self, num_states: int, num_actions: int, y_size: int, baseline: bool = False):
    super().__init__(name="table")
    self._shape = (num_states, num_actions, y_size)
    self._baseline = baseline

  def __call__(self, obs: chex.Array) -> AgentOutput:
    n, a, m = self._shape
    pi = hk.get_parameter("logits", (n, a), init=jnp.zeros)
    y = hk.get_parameter("y_logits", (n, m), init=hk.initializers.RandomNormal(Y_TABLE_INIT_STD))
    v = hk.get_parameter("value", (n,), init=jnp.zeros)
    f = hk.get_parameter("baseline", (n,), init=jnp.zeros)[obs] if self._baseline else None
    return AgentOutput(logits=pi[obs], y_logits=y[obs], value=v[obs], baseline=f)


class ConvLayer(NamedTuple):
  """One conv layer of a torso: `channels` filters of kernel x kernel, moving by `stride`."""

  channels: int
  kernel: int = 3
  stride: int = 1


def conv_layers(
  channels: tuple[int, ...], kernels: tuple[int, ...] = (), strides: tuple[int, ...] = ()
) -> tuple[ConvLayer, ...]:
  """Layers from per-layer tuples; empty kernels / strides mean 3x3, stride 1."""
  kernels = kernels or (3,) * len(channels)
  strides = strides or (1,) * len(channels)
  if not len(channels) == len(kernels) == len(strides):
    raise ValueError(f"conv channels {channels}, kernels {kernels}, strides {strides} differ in length")
  return tuple(ConvLayer(c, k, s) for c, k, s in zip(channels, kernels, strides))


CONV_IMPLS = ("auto", "native", "patches")


def resolve_conv_impl(conv_impl: str, backend: str) -> str:
  """ "native" or "patches" for `conv_impl` on `backend` (auto: patches on a CPU; module doc)."""
  if conv_impl not in CONV_IMPLS:
    raise ValueError(f"conv_impl={conv_impl!r}; valid: {', '.join(CONV_IMPLS)}")
  if conv_impl == "auto":
    return "patches" if backend == "cpu" else "native"
  return conv_impl


class PatchConv2D(hk.Module):
  """hk.Conv2D (NHWC, same parameters) as image patches @ kernel: x [N, H, W, C] -> [N, H', W', O]."""

  def __init__(self, output_channels: int, kernel_shape: int, stride: int, padding: str):
    super().__init__(name="conv2_d")  # hk.Conv2D's name, so the parameter trees match
    self._out, self._kernel, self._stride, self._padding = output_channels, kernel_shape, stride, padding

  def __call__(self, x: chex.Array) -> chex.Array:
    k, s, c = self._kernel, self._stride, x.shape[-1]
    w_init = hk.initializers.TruncatedNormal(stddev=1.0 / np.sqrt(k * k * c))  # as hk.ConvND
    w = hk.get_parameter("w", (k, k, c, self._out), x.dtype, init=w_init)
    b = hk.get_parameter("b", (self._out,), x.dtype, init=jnp.zeros)
    pads = jax.lax.padtype_to_pads(x.shape[1:3], (k, k), (s, s), self._padding)
    x = jnp.pad(x, ((0, 0), *pads, (0, 0)))
    out_h = (x.shape[1] - k) // s + 1
    out_w = (x.shape[2] - k) // s + 1
    # k * k strided slices, one per kernel offset: [N, H', W', k * k * C] in w's (kh, kw, C) order.
    patches = jnp.concatenate(
      [
        x[:, i : i + s * (out_h - 1) + 1 : s, j : j + s * (out_w - 1) + 1 : s]
        for i in range(k)
        for j in range(k)
      ],
      axis=-1,
    )
    return patches @ w.reshape(k * k * c, self._out) + b


class TorsoNet(hk.Module):
  """Conv/MLP torso with linear heads: obs [..., *obs_shape] -> AgentOutput [...]."""

  def __init__(
    self,
    obs_rank: int,
    num_actions: int,
    y_size: int,
    convs: tuple[ConvLayer, ...],
    mlp_sizes: tuple[int, ...],
    padding: str = "SAME",
    conv_impl: str = "auto",
    baseline: bool = False,
  ):
    super().__init__(name="torso_net")
    self._baseline = baseline
    self._conv_impl = resolve_conv_impl(conv_impl, jax.default_backend())
    self._obs_rank = obs_rank
    self._num_actions = num_actions
    self._y_size = y_size
    self._convs = convs
    self._mlp_sizes = mlp_sizes
    self._padding = padding

  def __call__(self, obs: chex.Array) -> AgentOutput:
    batch_shape = obs.shape[: obs.ndim - self._obs_rank]
    x = obs.reshape((-1, *obs.shape[len(batch_shape) :]))
    x = x.astype(jnp.float32) / 255.0 if x.dtype == jnp.uint8 else x.astype(jnp.float32)
    if self._obs_rank == 3:
      conv_module = PatchConv2D if self._conv_impl == "patches" else hk.Conv2D
      for layer in self._convs:
        conv = conv_module(
          layer.channels, kernel_shape=layer.kernel, stride=layer.stride, padding=self._padding
        )
        x = jax.nn.relu(conv(x))
    x = x.reshape(x.shape[0], -1)
    for size in self._mlp_sizes:
      x = jax.nn.relu(hk.Linear(size)(x))
    logits = hk.Linear(self._num_actions, w_init=jnp.zeros, name="policy")(x)
    y_logits = hk.Linear(self._y_size, name="y")(x)
    value = hk.Linear(1, name="value")(x)[:, 0]
    f = hk.Linear(1, name="baseline")(x)[:, 0] if self._baseline else None
    out = AgentOutput(logits=logits, y_logits=y_logits, value=value, baseline=f)
    return jax.tree.map(lambda t: t.reshape(batch_shape + t.shape[1:]), out)


def make_network(
  obs_spec: specs.Array,
  num_actions: int,
  y_size: int,
  conv_channels: tuple[int, ...] = (),
  mlp_sizes: tuple[int, ...] = (),
  conv_kernels: tuple[int, ...] = (),
  conv_strides: tuple[int, ...] = (),
  conv_padding: str = "SAME",
  conv_impl: str = "auto",
  baseline: bool = False,
) -> hk.Transformed:
  """The agent network for `obs_spec`; apply(params, obs [..., *obs_shape]) -> AgentOutput.

  conv_impl: how conv layers compute (module doc): auto, native (lax conv) or patches.
  baseline: also the Eq. 7 head f(s) (module doc).
  """
  if is_tabular(obs_spec):
    n = num_states(obs_spec)

    def forward(obs):
      return TableNet(n, num_actions, y_size, baseline)(obs)

  else:
    rank = len(obs_spec.shape)
    if rank not in (1, 3):
      raise ValueError(f"no torso for observations of shape {obs_spec.shape}: need [D] or [H, W, C]")
    if rank == 1 and conv_channels:
      raise ValueError("conv layers need image observations [H, W, C]")
    convs = conv_layers(tuple(conv_channels), tuple(conv_kernels), tuple(conv_strides))

    def forward(obs):
      return TorsoNet(rank, num_actions, y_size, convs, tuple(mlp_sizes), conv_padding, conv_impl, baseline)(
        obs
      )

  return hk.without_apply_rng(hk.transform(forward))
