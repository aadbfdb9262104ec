"""Conv torsos: native convolution vs image patches @ kernel (`inner_agents.networks`).

  python benchmarks/conv.py [--repeats 5] [--out benchmarks/results/conv.json]

Times, after compiling, the three ways conv agents are differentiated, for both
`conv_impl`s (same parameters, same results to float tolerance):

* first_order: value and gradient of a loss of L agents, each with its own parameters
  (vmapped, as meta-test seeds and meta-training lifetimes are), on B x T observations.
* second_order: the gradient, with respect to a scale on the gradient step (standing in
  for eta), of a loss after one SGD step of each agent: a gradient through a gradient, as
  the meta-gradient takes it.
* atari_single: value and gradient of one agent (no vmap) on 600 Atari frames (84x84x4,
  the Nature torso), the meta-test update on Atari.

`auto` takes patches on a CPU and the native conv elsewhere; this benchmark is the
evidence for the CPU half (run it on a GPU to check the other).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from dm_env import specs

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.envs import machine_info
from environments import registry
from inner_agents import networks
from inner_agents.actor_critic import presets

IMPLS = ("native", "patches")


def _time(fn, args, repeats: int) -> dict:
  start = time.perf_counter()
  jax.block_until_ready(fn(*args))
  compile_s = time.perf_counter() - start
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return {"seconds": float(np.median(times)), "compile_s": compile_s}


def _setup(obs_shape, torso: dict, lead: tuple[int, ...], impl: str, vmapped: int):
  net = networks.make_network(specs.Array(obs_shape, np.float32), 4, 30, conv_impl=impl, **torso)
  rng = np.random.default_rng(0)
  obs = rng.uniform(size=(*lead, *obs_shape)).astype(np.float32)
  params = jax.jit(net.init)(jax.random.PRNGKey(0), obs[0] if vmapped else obs)
  if vmapped:  # every agent starts from the same parameters: [vmapped, ...]
    params = jax.tree.map(lambda w: np.broadcast_to(w, (vmapped, *w.shape)).copy(), params)

  def loss(p, o):
    out = net.apply(p, o)
    return (
      jnp.mean(jax.nn.log_softmax(out.logits)[..., 0]) + jnp.mean(out.value**2) + jnp.mean(out.y_logits**2)
    )

  return loss, params, obs


def first_order(obs_shape, torso, lifetimes, batch, impl, repeats):
  loss, params, obs = _setup(obs_shape, torso, (lifetimes, batch), impl, lifetimes)
  return _time(jax.jit(jax.vmap(jax.value_and_grad(loss))), (params, obs), repeats)


def second_order(obs_shape, torso, lifetimes, batch, impl, repeats):
  loss, params, obs = _setup(obs_shape, torso, (lifetimes, batch), impl, lifetimes)

  def meta_loss(scale, p, o):
    g = jax.grad(loss)(p, o)
    p = jax.tree.map(lambda w, d: w - scale * d, p, g)
    return loss(p, o)

  fn = jax.jit(jax.vmap(jax.grad(meta_loss), in_axes=(None, 0, 0)))
  return _time(fn, (jnp.float32(0.1), params, obs), repeats)


def atari_single(impl, repeats, samples=600):
  torso = {
    "conv_channels": (32, 64, 64),
    "mlp_sizes": (512,),
    "conv_kernels": (8, 4, 3),
    "conv_strides": (4, 2, 1),
    "conv_padding": "VALID",
  }
  loss, params, obs = _setup((84, 84, 4), torso, (samples,), impl, 0)
  return _time(jax.jit(jax.value_and_grad(loss)), (params, obs), repeats)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--lifetimes", type=int, default=4)
  parser.add_argument("--batch", type=int, default=640, help="B x T observations per agent (64 x 10)")
  parser.add_argument("--out", default="benchmarks/results/conv.json", help="JSON output ('' for none)")
  args = parser.parse_args()
  info = machine_info()
  print(f"jax {info['jax_version']} on {info['device_kind']} ({info['cpu_count']} CPUs), {info['date']}")
  results = []
  for env in ("random_dense", "random_very_dense"):
    obs_shape = registry.make(env).observation_spec().shape
    preset = presets.preset(env, registry.make(env).observation_spec())
    torso = {"conv_channels": preset.conv_channels, "mlp_sizes": preset.mlp_sizes}
    for case, fn in (("first_order", first_order), ("second_order", second_order)):
      row = {"case": case, "env": env, "obs_shape": list(obs_shape), "lifetimes": args.lifetimes}
      for impl in IMPLS:
        row[impl] = fn(obs_shape, torso, args.lifetimes, args.batch, impl, args.repeats)
      results.append(row)
  row = {"case": "atari_single", "env": "atari (84x84x4, C32-C64-C64-D512)", "samples": 600}
  for impl in IMPLS:
    row[impl] = atari_single(impl, args.repeats)
  results.append(row)
  for row in results:
    row["speedup_of_patches"] = row["native"]["seconds"] / row["patches"]["seconds"]
    print(
      f"{row['case']:13s} {row['env']:34s} native {row['native']['seconds'] * 1e3:8.1f} ms  "
      f"patches {row['patches']['seconds'] * 1e3:8.1f} ms  ({row['speedup_of_patches']:.2f}x)",
      flush=True,
    )
  if args.out:
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
      json.dump({"machine": info, "settings": vars(args), "results": results}, f, indent=2)
    print(f"Wrote {args.out}")


if __name__ == "__main__":
  main()
