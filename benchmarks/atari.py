"""Atari throughput: raw ale-py vector env vs the full meta-test training loop.

  python benchmarks/atari.py [--game breakout] [--num-envs 30] [--seconds 20]
                             [--out benchmarks/results/atari.json]

raw: `ale_py.AtariVectorEnv` with the same settings as `environments.atari.AtariConfig`
(84x84 grayscale, frame skip 4 with max-pooling, 4-frame stack, sticky actions 0.25,
life-loss info), stepped with uniformly random actions (batched `step`, no agent).
train: `inner_agents.drivers.host.HostTrainer` on `atari/<game>` with the Table 4 agent
(C32-C64-C64-D512, Adam) and the `a2c` rule, T = 20: acting, env stepping and learning,
with and without overlapping the env step and the update. Env steps/s (agent steps, each
4 frames) are timed over about `--seconds` after a warm-up that compiles everything.
The target: the training loop keeps >= 70% of the raw env throughput.

ceiling: what this machine's arithmetic allows the loop at best. XLA's cost analysis gives
the FLOPs of `act` (per env step) and `learn` (per update, shared by B * T env steps);
divided into the measured peak of a large float32 matmul, that is the env-steps/s the loop
could not exceed even if the envs stepped for free. When the envs and the learner share the
same cores and the raw envs already keep them busy, an env step costs both times and the
bound is ceiling * raw / (ceiling + raw) (`shared_cores_fraction_of_raw`). Where these are
below the target, the target needs faster arithmetic (a GPU), not a better loop.
Results go to `--out` as JSON.
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

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.envs import machine_info
from environments import atari, registry
from harness import config as meta_test_config
from harness import evaluation
from inner_agents.rules import registry as rules
from inner_agents.types import Trajectory

TARGET_FRACTION = 0.7


def bench_raw(game: str, num_envs: int, seconds: float) -> dict:
  """Random-action steps/s of the `ale_py.AtariVectorEnv` behind `AtariEnvironment`."""
  env = atari.AtariEnvironment(game, num_envs)
  vec = env.backend
  vec.reset(seed=0)
  rng = np.random.default_rng(0)
  for _ in range(20):  # Warm-up.
    vec.step(rng.integers(env.num_actions, size=num_envs))
  steps, start = 0, time.perf_counter()
  while time.perf_counter() - start < seconds:
    vec.step(rng.integers(env.num_actions, size=num_envs))
    steps += num_envs
  elapsed = time.perf_counter() - start
  env.close()
  return {"steps_per_s": steps / elapsed, "env_steps": steps, "seconds": elapsed}


def _a2c_trainer(game: str, num_envs: int, overlap: bool = True):
  """(env, trainer, hparams): meta_test's A2C on `atari/<game>` (Table 4's agent and settings)."""
  env_name = f"atari/{game}"
  config = meta_test_config.get_config()
  rule, _ = rules.resolve("a2c")
  env = registry.make_host(env_name, num_envs)
  trainer = evaluation.make_host_trainer(env, "actor_critic", rule, config, overlap=overlap)
  return env, trainer, trainer.agent.hparams(rule)


def bench_train(game: str, num_envs: int, seconds: float, overlap: bool) -> dict:
  """Env steps/s of A2C training through `HostTrainer` (compile excluded)."""
  env, trainer, hp = _a2c_trainer(game, num_envs, overlap)
  start = time.perf_counter()
  trainer.train(0, {}, hp, num_updates=2, num_points=1)  # Compiles act and learn.
  compile_s = time.perf_counter() - start
  # Time one short run to size the timed one to about `seconds`.
  probe = trainer.train(1, {}, hp, num_updates=3, num_points=1)
  updates = max(3, int(seconds * probe.steps_per_s / trainer.steps_per_update))
  run = trainer.train(2, {}, hp, num_updates=updates, num_points=1)
  env.close()
  return {"overlap": overlap, "steps_per_s": run.steps_per_s, "updates": updates, "warmup_s": compile_s}


def matmul_peak_flops(n: int = 2048, repeats: int = 10) -> float:
  """FLOP/s of this machine's best case: a jitted [n, n] @ [n, n] float32 matmul (median)."""
  a = jnp.ones((n, n), jnp.float32)
  f = jax.jit(lambda x: x @ x)
  f(a).block_until_ready()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    f(a).block_until_ready()
    times.append(time.perf_counter() - start)
  return 2 * n**3 / float(np.median(times))


def _flops(fn, *args) -> float:
  return float(fn.lower(*args).compile().cost_analysis()["flops"])


def compute_ceiling(game: str, num_envs: int, peak_flops: float) -> dict:
  """XLA's FLOPs per env step of the training loop, and the env-steps/s they allow at `peak_flops`."""
  env, trainer, hp = _a2c_trainer(game, num_envs)
  agent, unroll = trainer.agent, trainer.unroll_length
  obs = jnp.asarray(env.reset(0).observation)
  env.close()
  state = agent.init(jax.random.PRNGKey(0), obs)
  key = jax.random.PRNGKey(1)
  act_flops = _flops(trainer._act, state, obs, key)
  _, out = trainer._act(state, obs, key)
  observation = jnp.stack([obs] * (unroll + 1))
  trajectory = Trajectory(
    observation=observation,
    action=jnp.zeros((unroll, num_envs), jnp.int32),
    reward=jnp.zeros((unroll, num_envs), jnp.float32),
    discount=jnp.ones((unroll, num_envs), jnp.float32),
    end=jnp.zeros((unroll, num_envs), jnp.float32),
    final_observation=observation[1:],
  )
  outputs = jax.tree.map(lambda x: jnp.stack([x] * (unroll + 1)), out)
  learn_flops = _flops(trainer._learn, state, {}, hp, trajectory, outputs)
  per_step = act_flops / num_envs + learn_flops / trainer.steps_per_update
  return {
    "act_flops_per_call": act_flops,
    "learn_flops_per_update": learn_flops,
    "flops_per_env_step": per_step,
    "peak_flops_per_s": peak_flops,
    "steps_per_s": peak_flops / per_step,
  }


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--game", default="Breakout")
  parser.add_argument("--num-envs", type=int, default=30, help="Table 4: 30")
  parser.add_argument("--seconds", type=float, default=20.0, help="length of each timed run")
  parser.add_argument("--out", default="benchmarks/results/atari.json", help="JSON output ('' for none)")
  args = parser.parse_args()
  info = machine_info()
  print(f"jax {info['jax_version']} on {info['device_kind']} ({info['cpu_count']} CPUs), {info['date']}")
  raw = bench_raw(args.game, args.num_envs, args.seconds)
  print(
    f"raw AtariVectorEnv ({args.game}, {args.num_envs} envs): {raw['steps_per_s']:.0f} env-steps/s",
    flush=True,
  )
  train = [bench_train(args.game, args.num_envs, args.seconds, overlap) for overlap in (True, False)]
  for t in train:
    t["fraction_of_raw"] = t["steps_per_s"] / raw["steps_per_s"]
    print(
      f"A2C training, overlap={t['overlap']}: {t['steps_per_s']:.0f} env-steps/s "
      f"({100 * t['fraction_of_raw']:.0f}% of raw; warm-up {t['warmup_s']:.1f} s)",
      flush=True,
    )
  ceiling = compute_ceiling(args.game, args.num_envs, matmul_peak_flops())
  ceiling["fraction_of_raw"] = min(1.0, ceiling["steps_per_s"] / raw["steps_per_s"])
  ceiling["shared_cores_fraction_of_raw"] = ceiling["steps_per_s"] / (
    ceiling["steps_per_s"] + raw["steps_per_s"]
  )
  print(
    f"compute ceiling: {ceiling['flops_per_env_step'] / 1e6:.1f} MFLOP per env step at "
    f"{ceiling['peak_flops_per_s'] / 1e9:.0f} GFLOP/s (matmul peak) -> at most "
    f"{ceiling['steps_per_s']:.0f} env-steps/s ({100 * ceiling['fraction_of_raw']:.0f}% of raw; "
    f"{100 * ceiling['shared_cores_fraction_of_raw']:.0f}% if the envs share the learner's cores)",
    flush=True,
  )
  best = max(t["fraction_of_raw"] for t in train)
  print(f"target {100 * TARGET_FRACTION:.0f}% of raw: {'met' if best >= TARGET_FRACTION else 'NOT met'}")
  if args.out:
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
      json.dump(
        {
          "machine": info,
          "settings": {
            "game": args.game,
            "num_envs": args.num_envs,
            "unroll_length": meta_test_config.get_config().unroll_length,
            "seconds": args.seconds,
          },
          "raw": raw,
          "train": train,
          "ceiling": ceiling,
          "target_fraction_of_raw": TARGET_FRACTION,
          "target_met": best >= TARGET_FRACTION,
        },
        f,
        indent=2,
      )
    print(f"Wrote {args.out}")


if __name__ == "__main__":
  main()
