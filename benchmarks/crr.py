"""Learner throughput of the CRR agent (offline driver) on a dataset.

  python benchmarks/crr.py [--dataset lpg/gym-CartPole-v1/mixed-v0] [--rules crr,bc,pretrained:reference_cpu]
                           [--seconds 10] [--out benchmarks/results/crr.json]

Per rule: one jitted `lax.scan` of `--chunk` updates (B = 13 windows x T = 20 transitions
sampled per update, the meta-test defaults; a policy and a critic Adam step each), timed
over as many chunks as fill about `--seconds`, after one untimed warm-up call. Reports
learner updates/s and samples/s (dataset transitions consumed per second), and the chunk's
compile time. One seed, no evaluation rollouts (the meta-test's evaluation cost is extra).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import lpg  # noqa: F401  Registers the LPG rules.
from benchmarks.envs import machine_info, write_result
from environments import offline_data
from harness import config as meta_test_config
from harness import evaluation, offline
from inner_agents import registry as agent_registry
from inner_agents.rules import registry as rule_registry


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--dataset", default="lpg/gym-CartPole-v1/mixed-v0")
  parser.add_argument("--root", default=None)
  parser.add_argument("--rules", default="crr,bc,a2c,pretrained:reference_cpu")
  parser.add_argument("--chunk", type=int, default=200)
  parser.add_argument("--seconds", type=float, default=10.0)
  parser.add_argument("--out", default="benchmarks/results/crr.json")
  args = parser.parse_args()

  dataset = offline_data.load(args.dataset, args.root)
  env_name = offline.dataset_env(dataset)
  config = meta_test_config.get_config()
  agent_config = evaluation.agent_config(config, "crr")
  windows = agent_registry.entry("crr").num_envs(env_name)
  rows = []
  for spec in args.rules.split(","):
    rule, meta_params = rule_registry.resolve(spec)
    with offline.offline_trainer(
      env_name, "crr", rule, agent_config, dataset, windows, config.unroll_length
    ) as t:
      hparams = t.agent.hparams(rule)
      run = jax.jit(
        lambda s, t=t, hparams=hparams, meta_params=meta_params: t.run(s, meta_params, hparams, args.chunk)[0]
      )
      state = t.init(jax.random.PRNGKey(0))
      start = time.perf_counter()
      compiled = run.lower(state).compile()
      compile_s = time.perf_counter() - start
      state = jax.block_until_ready(compiled(state))
      chunks, start = 0, time.perf_counter()
      while chunks == 0 or time.perf_counter() - start < args.seconds:
        state = jax.block_until_ready(compiled(state))
        chunks += 1
      elapsed = time.perf_counter() - start
      updates = chunks * args.chunk
      row = {
        "rule": rule.name,
        "updates_per_s": updates / elapsed,
        "samples_per_s": updates * t.steps_per_update / elapsed,
        "samples_per_update": t.steps_per_update,
        "compile_s": compile_s,
        "timed_updates": updates,
      }
      rows.append(row)
      print(f"{rule.name:20s} {row['updates_per_s']:9.0f} updates/s {row['samples_per_s']:12.0f} samples/s")
  result = {
    "benchmark": "crr_learner",
    "dataset": dataset.dataset_id,
    "env": env_name,
    "transitions": dataset.num_transitions,
    "agent": t.agent.description,
    "windows": windows,
    "window": config.unroll_length,
    "machine": machine_info(),
    "command": "python " + " ".join(sys.argv),
    "results": rows,
  }
  write_result(args.out, result)


if __name__ == "__main__":
  main()
