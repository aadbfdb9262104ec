"""Meta-training throughput of the local launcher vs the Ray launcher, same population.

  python benchmarks/launchers.py                      # writes benchmarks/results/launchers.json

Agent env-steps/s (every inner and validation rollout step of every lifetime, meta-gradient
and Adam step included) of the local launcher (one jitted call per meta-step) and of the Ray
launcher in sync mode with 1..W workers on a local Ray cluster, the same total population
(default: the meta-train benchmark's 8 lifetimes x 64 envs on tabular_dense, LSTM-32). Ray's
overhead is 1 - ray / local at 1 worker (target <= 15%); the JSON also records how throughput
scales with workers on this machine and the bytes moved per meta-step.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.envs import machine_info
from lpg import program as program_lib
from lpg.configs import meta_train as meta_train_config
from lpg.launch import driver, local
from lpg.launch import ray as ray_launch

TARGET_OVERHEAD = 0.15


def config(lifetimes: int, env: str, workers: int = 1):
  c = meta_train_config.get_config()
  with c.unlocked():
    c.train_envs = env
    c.eval_envs = ""
    c.lifetimes_per_env = lifetimes
    c.num_workers = workers
  return c


def measure(backend: driver.Backend, prog: program_lib.Program, steps: int, warmup: int) -> dict:
  """env-steps/s over `steps` meta-steps after `warmup` (compiling) ones."""
  t = time.perf_counter()
  backend.start(None)
  for _ in range(warmup):
    float(backend.step().grad_norm)
  startup_s = time.perf_counter() - t
  t = time.perf_counter()
  for _ in range(steps):
    float(backend.step().grad_norm)  # waits for the step
  seconds = time.perf_counter() - t
  return {
    "meta_steps": steps,
    "seconds": seconds,
    "meta_steps_per_s": steps / seconds,
    "agent_env_steps_per_s": steps * prog.steps_per_meta_step() / seconds,
    "startup_and_compile_s": startup_s,
  }


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=30)
  parser.add_argument("--warmup", type=int, default=2)
  parser.add_argument("--lifetimes", type=int, default=8)
  parser.add_argument("--env", default="tabular_dense")
  parser.add_argument("--workers", default="1,2", help="worker counts to measure")
  parser.add_argument("--ray_address", default=None, help="a running cluster (default: start one)")
  parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "launchers.json"))
  args = parser.parse_args()

  prog = program_lib.build(config(args.lifetimes, args.env))
  local_result = measure(local.LocalBackend(prog), prog, args.steps, args.warmup)
  print(f"local      {local_result['agent_env_steps_per_s']:>10,.0f} agent-steps/s")
  cases = []
  for workers in (int(w) for w in args.workers.split(",")):
    prog = program_lib.build(config(args.lifetimes, args.env, workers))
    backend = ray_launch.RayBackend(prog, args.ray_address)
    try:
      r = measure(backend, prog, args.steps, args.warmup)
      traffic = backend.traffic()
    finally:
      backend.close()
    r.update(
      workers=workers,
      relative_to_local=r["agent_env_steps_per_s"] / local_result["agent_env_steps_per_s"],
      bytes_to_workers_per_meta_step=traffic["to_workers"],
      bytes_from_workers_per_meta_step=traffic["from_workers"],
    )
    cases.append(r)
    print(
      f"ray x{workers:<3d}  {r['agent_env_steps_per_s']:>10,.0f} agent-steps/s "
      f"({r['relative_to_local']:.0%} of local; {traffic['to_workers'] + traffic['from_workers']:,} bytes/meta-step)"
    )
  one = next((c for c in cases if c["workers"] == 1), None)
  overhead = None if one is None else 1 - one["relative_to_local"]
  result = {
    "machine": machine_info(),
    "population": {
      "env": args.env,
      "lifetimes": args.lifetimes,
      "num_envs": prog.config.num_envs,
      "unroll_length": prog.config.unroll_length,
      "num_inner_updates": prog.config.num_inner_updates,
      "lstm_hidden_size": prog.config.lpg.hidden_size,
      "agent_env_steps_per_meta_step": prog.steps_per_meta_step(),
    },
    "local": local_result,
    "ray": cases,
    "ray_overhead_1_worker": overhead,
    "target_overhead": TARGET_OVERHEAD,
    "pass": None if overhead is None else overhead <= TARGET_OVERHEAD,
  }
  os.makedirs(os.path.dirname(args.out), exist_ok=True)
  with open(args.out, "w") as f:
    json.dump(result, f, indent=2)
  print(f"ray overhead at 1 worker: {overhead:.1%} (target <= {TARGET_OVERHEAD:.0%}); wrote {args.out}")


if __name__ == "__main__":
  main()
