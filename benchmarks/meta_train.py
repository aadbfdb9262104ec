"""Meta-training throughput and memory: agent env-steps/s of full meta-steps.

Counts every step of every inner rollout and validation rollout (K + 1 rollouts of T steps
in B envs per lifetime per meta-step), meta-gradient and eta update included. Reference
configuration (issue #3): 8 lifetimes x 64 envs, K = 5, T = 20, tabular_dense, for the
default 32-unit LSTM and the paper's 256 units. Compile time is reported separately, and
resident memory is sampled over the run to check it stays flat (no growth per meta-step).

  python benchmarks/meta_train.py [--steps 30] [--out benchmarks/results/meta_train.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

import jax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.envs import machine_info
from lpg import program as program_lib
from lpg.configs import meta_train as meta_train_config
from lpg.launch import local


def rss_mb() -> float:
  """Current resident set size in MiB (Linux /proc; falls back to the peak)."""
  try:
    with open("/proc/self/statm") as f:
      return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
  except OSError:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(hidden_size: int, steps: int, lifetimes: int, env: str) -> dict:
  config = meta_train_config.get_config()
  with config.unlocked():
    config.train_envs = env
    config.eval_envs = ""
    config.lifetimes_per_env = lifetimes
    config.lpg.hidden_size = hidden_size
  prog = program_lib.build(config)
  state = prog.init(jax.random.PRNGKey(0))

  fused = local.fused_meta_step(prog)

  @jax.jit
  def meta_step(state):
    state, _, norm = fused(state)
    return state, norm

  t = time.perf_counter()
  compiled = meta_step.lower(state).compile()
  compile_s = time.perf_counter() - t
  state, norm = compiled(state)  # warm-up
  jax.block_until_ready(norm)
  rss = [rss_mb()]
  t = time.perf_counter()
  for i in range(steps):
    state, norm = compiled(state)
    if (i + 1) % max(1, steps // 5) == 0:
      jax.block_until_ready(norm)
      rss.append(rss_mb())
  jax.block_until_ready(norm)
  seconds = time.perf_counter() - t
  env_steps = prog.steps_per_meta_step() * steps
  return {
    "env": env,
    "lifetimes": lifetimes,
    "num_envs": config.num_envs,
    "unroll_length": config.unroll_length,
    "num_inner_updates": config.num_inner_updates,
    "lstm_hidden_size": hidden_size,
    "meta_steps": steps,
    "seconds": seconds,
    "meta_steps_per_s": steps / seconds,
    "agent_env_steps_per_s": env_steps / seconds,
    "compile_s": compile_s,
    "rss_mb_samples": rss,
    "rss_growth_mb": rss[-1] - rss[0],
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
  }


TARGETS = {32: 100_000, 256: 20_000}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=30)
  parser.add_argument("--lifetimes", type=int, default=8)
  parser.add_argument("--env", default="tabular_dense")
  parser.add_argument("--sizes", default="32,256")
  parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "meta_train.json"))
  args = parser.parse_args()
  cases = []
  for size in (int(s) for s in args.sizes.split(",")):
    r = measure(size, args.steps, args.lifetimes, args.env)
    r["target_agent_env_steps_per_s"] = TARGETS.get(size)
    r["pass"] = None if size not in TARGETS else r["agent_env_steps_per_s"] >= TARGETS[size]
    cases.append(r)
    print(
      f"LSTM-{size:<4d} {r['agent_env_steps_per_s']:>10,.0f} agent-steps/s  "
      f"({r['meta_steps_per_s']:.2f} meta-steps/s, compile {r['compile_s']:.1f} s, "
      f"RSS {r['rss_mb_samples'][0]:.0f} -> {r['rss_mb_samples'][-1]:.0f} MiB)"
    )
  result = {
    "machine": machine_info(),
    "cases": cases,
  }
  os.makedirs(os.path.dirname(args.out), exist_ok=True)
  with open(args.out, "w") as f:
    json.dump(result, f, indent=2)
  print(f"wrote {args.out}")


if __name__ == "__main__":
  main()
