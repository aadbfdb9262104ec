"""What a swapped-in rule's pi_hat looks like on offline windows, against CRR's own weights.

  python benchmarks/crr_swap_diagnosis.py [--datasets lpg/gym-CartPole-v1/mixed-v0,...]
      [--rule pretrained:reference_cpu] [--updates 5000] [--out benchmarks/results/crr_swap_diagnosis.json]

For each dataset: a CRR agent is trained with the rule for `--updates` updates (seed 0,
the meta-test settings, `--allow_off_policy`'s pair), then on 512 fresh windows of 20 steps
the rule's pi_hat is compared with what CRR would weigh the same dataset actions by: its
mean, spread and sign, its correlation with CRR's advantage A = Q(s,a) - E_pi Q(s,.) (the
critic trained alongside) and with A2C's advantage on the window, and the policy's
probability pi(a_t|s_t) of the dataset's actions (an input LPG was meta-trained to see
only for its own, sampled actions).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import lpg  # noqa: F401  Registers the LPG rules.
from benchmarks.envs import machine_info, write_result
from environments import offline_data
from harness import config as meta_test_config
from harness import evaluation, offline
from inner_agents import registry as agent_registry
from inner_agents.drivers import offline as offline_driver
from inner_agents.rules import crr
from inner_agents.rules import registry as rule_registry

DATASETS = "lpg/tabular_dense/mixed-v0,lpg/random_small/mixed-v0,lpg/gym-CartPole-v1/mixed-v0,lpg/gym-CartPole-v1/noisy-v0"


def diagnose(dataset_id: str, rule_spec: str, updates: int, root: str | None) -> dict:
  dataset = offline_data.load(dataset_id, root)
  env_name = offline.dataset_env(dataset)
  config = meta_test_config.get_config()
  agent_config = evaluation.agent_config(config, "crr")
  rule, meta_params = rule_registry.resolve(rule_spec)
  a2c, _ = rule_registry.resolve("a2c")
  windows = agent_registry.entry("crr").num_envs(env_name)
  with offline.offline_trainer(
    env_name, "crr", rule, agent_config, dataset, windows, config.unroll_length
  ) as t:
    hparams = t.agent.hparams(rule)
    state = jax.jit(lambda key: t.run(t.init(key), meta_params, hparams, updates)[0])(jax.random.PRNGKey(0))
    w = offline_driver.sample_windows(t.data, jax.random.PRNGKey(1), 512, config.unroll_length)
    out = t.agent.policy.apply(state.agent.policy, w.observation)
    q = t.agent.q_values(state.agent.critic, w.observation)
    inputs = t.agent.rule_inputs(state.agent, w, out, q, hparams.discount, frozenset({"pi", "y", "v", "q"}))
    pi_hat = np.asarray(rule.targets(meta_params, inputs).pi_hat).ravel()
    adv = np.asarray(crr.advantage(inputs.q_t[:-1], inputs.pi_t[:-1], inputs.a_t)).ravel()
    a2c_adv = np.asarray(a2c.targets({}, inputs).pi_hat).ravel()
    pi_a = np.asarray(inputs.pi_a_t).ravel()
  return {
    "dataset": dataset_id,
    "rule": rule.name,
    "updates": updates,
    "pi_hat_mean": float(pi_hat.mean()),
    "pi_hat_std": float(pi_hat.std()),
    "pi_hat_positive_fraction": float((pi_hat > 0).mean()),
    "corr_pi_hat_crr_advantage": float(np.corrcoef(pi_hat, adv)[0, 1]),
    "corr_pi_hat_a2c_advantage": float(np.corrcoef(pi_hat, a2c_adv)[0, 1]),
    "crr_advantage_std": float(adv.std()),
    "crr_exp_weight_mean": float(np.asarray(crr.weight(adv)).mean()),
    "pi_a_mean": float(pi_a.mean()),
    "pi_a_below_0.1_fraction": float((pi_a < 0.1).mean()),
  }


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--datasets", default=DATASETS)
  parser.add_argument("--root", default=None)
  parser.add_argument("--rule", default="pretrained:reference_cpu")
  parser.add_argument("--updates", type=int, default=5000)
  parser.add_argument("--out", default="benchmarks/results/crr_swap_diagnosis.json")
  args = parser.parse_args()
  rows = []
  for dataset_id in args.datasets.split(","):
    rows.append(diagnose(dataset_id, args.rule, args.updates, args.root))
    print(json.dumps(rows[-1]))
  result = {"machine": machine_info(), "command": "python " + " ".join(sys.argv), "results": rows}
  write_result(args.out, result)


if __name__ == "__main__":
  main()
