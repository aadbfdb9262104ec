"""Throughput of every registered environment, and of A2C training on one env per family.

  python benchmarks/envs.py [--batch 4096] [--steps N] [--out benchmarks/results/envs.json]

Environment throughput: one jitted `lax.scan` of `--steps` auto-resetting `env.step`s,
vmapped over `--batch` envs that share one `env.sample_params` draw, with uniformly
random actions drawn inside the scan. The scan sums the rewards and observations so
that nothing is dead-code-eliminated. Compile time (`jit(...).lower(...).compile()`) is
reported separately; steps/s is batch * steps over the best of `--repeats` timed calls,
after one untimed warm-up call.

A2C throughput: `inner_agents.drivers.on_policy.Trainer` with the `a2c` rule and the
actor-critic agent's preset for the env (its Table 3 torso; the learning rate is the
first of meta-training's bandit grid for the env), 64 envs x 20 steps per update, over 3 seeds with `jax.lax.map` (faster
than vmap on CPU). Steps/s counts agent env-steps (acting and the learning update
included) of all seeds, timed over enough 5-update chunks (one jitted call each) to
take about `--a2c-seconds` (at least one chunk); compile_s is the chunk's compile time.

Results go to `--out` as JSON, with pass/fail against the throughput targets.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from environments import registry
from environments.types import Environment
from inner_agents.actor_critic import agent as actor_critic
from inner_agents.drivers.on_policy import Trainer, TrainState
from inner_agents.rules import registry as rules
from lpg import program
from lpg.configs import meta_train as meta_train_config

# Minimum env-steps/s at batch 4096, per registry family.
TARGETS = {"tabular_grid": 5e6, "random_grid": 1e6, "chain": 5e6}
A2C_ENVS = ("tabular_dense", "random_dense", "random_small", "chain_short", "chain_distractor")
A2C_NUM_ENVS, A2C_UNROLL, A2C_SEEDS = 64, 20, 3
A2C_CHUNK = 5  # Updates per jitted call of the timed A2C runs.
Y_SIZE = 30  # m, the LPG paper's size of y (as lpg/configs).


def _time_best(fn: Callable[[], Any], repeats: int) -> float:
  """Best seconds of `repeats` calls of `fn`, after one untimed warm-up call."""
  jax.block_until_ready(fn())
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    best = min(best, time.perf_counter() - start)
  return best


def env_runner(env: Environment, batch: int, steps: int) -> Callable[[jax.Array], jax.Array]:
  """A jitted key -> checksum running `steps` random-action steps of `batch` envs."""
  step = jax.vmap(env.step, in_axes=(0, 0, None))

  @jax.jit
  def run(key: jax.Array) -> jax.Array:
    params_key, reset_key, action_key = jax.random.split(key, 3)
    params = env.sample_params(params_key)
    state, _ = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(reset_key, batch), params)

    def body(carry, key):
      state, total = carry
      action = jax.random.randint(key, (batch,), 0, env.num_actions)
      state, ts = step(state, action, params)
      total = total + jnp.sum(ts.reward) + jnp.sum(ts.observation.astype(jnp.float32))
      return (state, total), None

    keys = jax.random.split(action_key, steps)
    (_, total), _ = jax.lax.scan(body, (state, jnp.zeros((), jnp.float32)), keys)
    return total

  return run


def bench_env(name: str, batch: int, steps: int, repeats: int) -> dict[str, Any]:
  entry = registry.entry(name)
  run = env_runner(entry.factory(), batch, steps)
  key = jax.random.key(0)
  # Compile separately from the first run so that compile_s is compilation only.
  start = time.perf_counter()
  compiled = run.lower(key).compile()
  compile_s = time.perf_counter() - start
  keys = iter(jax.random.split(jax.random.key(1), repeats + 1))
  best = _time_best(lambda: compiled(next(keys)), repeats)
  steps_per_s = batch * steps / best
  target = TARGETS.get(entry.family)
  return {
    "env": name,
    "family": entry.family,
    "batch": batch,
    "steps": steps,
    "seconds": best,
    "steps_per_s": steps_per_s,
    "compile_s": compile_s,
    "target_steps_per_s": target,
    "pass": None if target is None else bool(steps_per_s >= target),
  }


def a2c_runner(name: str, chunk_updates: int) -> tuple[Callable, Callable, Trainer]:
  """Jitted (init: key -> states, chunk: states -> states) for A2C_SEEDS lifetimes.

  `chunk` runs `chunk_updates` updates of every lifetime, the seeds one after the other
  with `lax.map`.
  """
  env = registry.make(name)
  rule, _ = rules.resolve("a2c")
  config = actor_critic.ActorCriticConfig(y_size=Y_SIZE)
  agent = actor_critic.make(name, env.observation_spec(), env.num_actions, config)
  trainer = Trainer(env, agent, rule, num_envs=A2C_NUM_ENVS, unroll_length=A2C_UNROLL)
  hparams = actor_critic.HParams(
    learning_rate=program.env_settings(meta_train_config.get_config(), name).learning_rates[0],
    y_cost=0.0,
    value_cost=rule.hparam_defaults["value_cost"],
    entropy_cost=rule.hparam_defaults["entropy_cost"],
    discount=0.99,
  )
  meta_params = rule.init_meta_params(jax.random.key(0))

  @jax.jit
  def init(key: jax.Array) -> TrainState:
    return jax.lax.map(trainer.init, jax.random.split(key, A2C_SEEDS))

  @jax.jit
  def chunk(states: TrainState) -> TrainState:
    return jax.lax.map(lambda s: trainer.run(s, meta_params, hparams, chunk_updates)[0], states)

  return init, chunk, trainer


def bench_a2c(name: str, target_s: float, repeats: int, chunk_updates: int = A2C_CHUNK) -> dict[str, Any]:
  init, chunk, trainer = a2c_runner(name, chunk_updates)
  states = jax.block_until_ready(init(jax.random.key(0)))
  start = time.perf_counter()
  compiled = chunk.lower(states).compile()
  compile_s = time.perf_counter() - start
  # One warm-up chunk sizes the timed runs to ~target_s.
  start = time.perf_counter()
  states = jax.block_until_ready(compiled(states))
  num_chunks = max(1, round(target_s / (time.perf_counter() - start)))
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    for _ in range(num_chunks):
      states = compiled(states)
    jax.block_until_ready(states)
    best = min(best, time.perf_counter() - start)
  num_updates = num_chunks * chunk_updates
  env_steps = A2C_SEEDS * trainer.steps_per_update * num_updates
  return {
    "env": name,
    "family": registry.entry(name).family,
    "seeds": A2C_SEEDS,
    "num_envs": A2C_NUM_ENVS,
    "unroll_length": A2C_UNROLL,
    "updates": num_updates,
    "env_steps": env_steps,
    "seconds": best,
    "steps_per_s": env_steps / best,
    "compile_s": compile_s,
  }


def machine_info() -> dict[str, Any]:
  device = jax.devices()[0]
  return {
    "jax_version": jax.__version__,
    "backend": jax.default_backend(),
    "device": str(device),
    "device_kind": device.device_kind,
    "cpu_count": os.cpu_count(),
    "processor": platform.processor() or platform.machine(),
    "python": platform.python_version(),
    # The timings are wall-clock: other processes on the machine lower them.
    "load_average_1m": os.getloadavg()[0],
    "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
  }


def write_result(path: str, result: dict[str, Any]) -> None:
  """Writes a benchmark's machine-readable result as JSON at `path` and says so."""
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  with open(path, "w") as f:
    json.dump(result, f, indent=2)
  print(f"wrote {path}")


def _fmt_rate(x: float) -> str:
  return f"{x / 1e6:.2f}M" if x >= 1e6 else f"{x / 1e3:.1f}k"


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--batch", type=int, default=4096, help="envs stepped in parallel")
  parser.add_argument("--steps", type=int, default=200, help="scan length of one timed env run")
  parser.add_argument("--repeats", type=int, default=5, help="timed calls; the best counts")
  parser.add_argument("--envs", nargs="*", default=None, help="only these envs (default: all)")
  parser.add_argument("--a2c-envs", nargs="*", default=list(A2C_ENVS), help="envs for the A2C runs")
  parser.add_argument("--a2c-seconds", type=float, default=3.0, help="target length of a timed A2C run")
  parser.add_argument("--a2c-repeats", type=int, default=2, help="timed A2C runs; the best counts")
  parser.add_argument("--out", default="benchmarks/results/envs.json", help="JSON output ('' for none)")
  args = parser.parse_args(argv)

  info = machine_info()
  print(
    f"jax {info['jax_version']} on {info['device_kind']} ({info['cpu_count']} CPUs), {info['date']}, "
    f"load average {info['load_average_1m']:.2f}"
  )
  print(f"\nEnvironment steps (batch {args.batch}, {args.steps}-step scan, best of {args.repeats})")
  print(f"{'env':<24} {'family':<13} {'steps/s':>9} {'target':>7} {'compile_s':>9}")
  env_results = []
  for name in args.envs or registry.names():
    r = bench_env(name, args.batch, args.steps, args.repeats)
    env_results.append(r)
    target = "" if r["target_steps_per_s"] is None else _fmt_rate(r["target_steps_per_s"])
    verdict = "" if r["pass"] is None else ("pass" if r["pass"] else "FAIL")
    print(
      f"{name:<24} {r['family']:<13} {_fmt_rate(r['steps_per_s']):>9} {target:>7} {r['compile_s']:>9.2f}  {verdict}",
      flush=True,
    )

  print(f"\nA2C training ({A2C_SEEDS} seeds x {A2C_NUM_ENVS} envs x {A2C_UNROLL} steps/update, lax.map)")
  print(f"{'env':<24} {'steps/s':>9} {'updates':>8} {'seconds':>8} {'compile_s':>9}")
  a2c_results = []
  for name in args.a2c_envs:
    r = bench_a2c(name, args.a2c_seconds, args.a2c_repeats)
    a2c_results.append(r)
    print(
      f"{name:<24} {_fmt_rate(r['steps_per_s']):>9} {r['updates']:>8} {r['seconds']:>8.2f} {r['compile_s']:>9.2f}",
      flush=True,
    )

  failed = [r["env"] for r in env_results if r["pass"] is False]
  print(f"\nTargets: {'all met' if not failed else 'not met by ' + ', '.join(failed)}")
  if args.out:
    result = {
      "machine": info,
      "settings": {
        "batch": args.batch,
        "steps": args.steps,
        "repeats": args.repeats,
        "a2c_num_envs": A2C_NUM_ENVS,
        "a2c_unroll_length": A2C_UNROLL,
        "a2c_seeds": A2C_SEEDS,
        "a2c_chunk_updates": A2C_CHUNK,
        "a2c_seconds": args.a2c_seconds,
        "a2c_repeats": args.a2c_repeats,
      },
      "targets_steps_per_s": TARGETS,
      "all_targets_met": not failed,
      "envs": env_results,
      "a2c": a2c_results,
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
      json.dump(result, f, indent=2)
    print(f"Wrote {args.out}")


if __name__ == "__main__":
  main()
