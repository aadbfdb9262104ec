"""What did y learn? A linear read-out of the agent's prediction y to true discounted returns.

The paper (Section 5.3, Fig. 5) finds that the y an LPG-trained agent learns carries
value-like information: a linear regression from y recovers the values of the agent's policy
at several discount factors. This module reproduces that analysis in spirit:

  1. train a fresh agent with a rule on an environment (as `meta_test.py` does);
  2. freeze it and act with its policy for `rollout_steps` steps in B envs, recording
     y(s_t) = softmax(y_logits) and the rewards and episode ends;
  3. compute the Monte-Carlo discounted return G_t^gamma = r_{t+1} + gamma (1 - d_t) G_{t+1}
     for several gamma, keeping only steps whose return is determined to within gamma^k <
     1e-3 by the recorded future (or whose episode ended within it);
  4. fit G ~ w . y + b by least squares on the first half of the envs, and report the
     Pearson correlation and R^2 on the other half (held-out envs, so fitting noise does not
     count).

The untrained LPG network (`lpg_init`) is the control: it trains y too, with targets that
mean nothing, so whatever its read-out recovers is what any y trained on these states
would give.

  python -m lpg.y_analysis --rule=pretrained:default_cpu --env=tabular_dense --out=docs/y_analysis
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from environments import registry
from environments.errors import UnknownEnvironmentError
from harness import config as meta_test_config
from harness import evaluation
from inner_agents.drivers.runs import final_return
from inner_agents.rules import registry as rule_registry
from inner_agents.rules.base import UpdateRule
from lpg.program import AGENT

GAMMAS = (0.5, 0.9, 0.95, 0.99)
SCATTER_GAMMA = 0.9  # the discount of the scatter plots
TOLERANCE = 1e-3  # a kept step's return is determined by the recorded future to within this


def discounted_returns(rewards: np.ndarray, dones: np.ndarray, gamma: float) -> tuple[np.ndarray, np.ndarray]:
  """Monte-Carlo returns G [T, B] and a mask [T, B] of steps where G is (nearly) exact.

  rewards, dones: [T, B]; dones[t] = 1 where the step after a_t ended the episode.
  G_t = r_{t+1} + gamma (1 - d_t) G_{t+1}, with G_T = 0 past the recording; a step is kept
  if its episode ends within the recording or gamma^(T - t) < TOLERANCE.
  """
  steps = rewards.shape[0]

  def step(g, x):
    reward, done = x
    g = reward + gamma * (1.0 - done) * g
    return g, g

  _, returns = jax.lax.scan(step, jnp.zeros(rewards.shape[1:]), (rewards, dones), reverse=True)
  # An episode end at some step in [t, T): G_t does not depend on the unrecorded future.
  ends_ahead = np.flip(np.maximum.accumulate(np.flip(dones > 0, 0), axis=0), 0)
  tail = gamma ** (steps - np.arange(steps)) < TOLERANCE  # [T]
  return np.asarray(returns, np.float64), ends_ahead | tail.reshape((steps,) + (1,) * (rewards.ndim - 1))


class Readout(NamedTuple):
  """A linear read-out fitted on train rows and scored on test rows."""

  weights: np.ndarray  # [m + 1], the last entry is the bias
  pearson_r: float
  r2: float
  predicted: np.ndarray  # [n_test]
  target: np.ndarray  # [n_test]


def linear_readout(
  x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray
) -> Readout:
  """Least squares y ~ x . w + b (minimum-norm, so collinear features such as the m
  probabilities of y that sum to one are fine); scored on the test rows."""
  design = np.concatenate([x_train, np.ones((len(x_train), 1))], axis=1)
  weights, *_ = np.linalg.lstsq(design, y_train, rcond=None)
  predicted = np.concatenate([x_test, np.ones((len(x_test), 1))], axis=1) @ weights
  residual = np.sum((y_test - predicted) ** 2)
  total = np.sum((y_test - y_test.mean()) ** 2)
  r2 = float(1 - residual / total) if total > 0 else math.nan
  r = (
    float(np.corrcoef(predicted, y_test)[0, 1]) if np.std(predicted) > 0 and np.std(y_test) > 0 else math.nan
  )
  return Readout(weights, r, r2, predicted, y_test)


def tabular_ceiling(
  s_train: np.ndarray, g_train: np.ndarray, s_test: np.ndarray, g_test: np.ndarray
) -> tuple[float, float]:
  """(R^2, fraction of test rows scored) of the best any function of a tabular state can
  do: predict G by its mean over the train rows in the same state (V^pi(s), estimated).

  The returns are noisy given the state (the policy and the objects are stochastic), so
  this bounds the R^2 any read-out of a per-state y can reach.
  """
  states, inverse = np.unique(s_train, return_inverse=True)
  means = np.bincount(inverse, weights=g_train) / np.bincount(inverse)
  pos = np.searchsorted(states, s_test).clip(0, len(states) - 1)
  seen = states[pos] == s_test
  if not seen.any():
    return math.nan, 0.0
  predicted, target = means[pos[seen]], g_test[seen]
  total = np.sum((target - target.mean()) ** 2)
  r2 = float(1 - np.sum((target - predicted) ** 2) / total) if total > 0 else math.nan
  return r2, float(seen.mean())


def train_and_record(
  rule: UpdateRule,
  meta_params: Any,
  env_name: str,
  env_steps: int,
  rollout_steps: int,
  seed: int = 0,
) -> dict[str, Any]:
  """Trains a fresh agent with the rule, then records its frozen policy's rollouts.

  Returns {'y': [T, B, m] y probabilities, 'observation': [T, B, ...], 'reward': [T, B],
  'done': [T, B], 'final_return': []}.
  """
  trainer = evaluation.make_trainer(env_name, AGENT, rule, meta_test_config.get_config())
  hparams = trainer.agent.hparams(rule)
  num_updates = max(1, math.ceil(env_steps / trainer.steps_per_update))
  state = jax.jit(trainer.init)(jax.random.PRNGKey(seed))
  state, _ = jax.jit(trainer.run, static_argnums=3)(state, meta_params, hparams, num_updates)
  num_rollouts = max(1, math.ceil(rollout_steps / trainer.unroll_length))

  @jax.jit
  def record(state):
    def body(state, _):
      state, traj, outputs, _ = trainer.act(state)
      y = jax.nn.softmax(outputs.y_logits[:-1], axis=-1)  # y(s_t) for t < T
      return state, (y, traj.observation[:-1], traj.reward, traj.end)

    _, recorded = jax.lax.scan(body, state, None, length=num_rollouts)
    return [x.reshape((-1, *x.shape[2:])) for x in recorded]  # [R, T, B, ...] -> [R*T, B, ...]

  y, observation, reward, done = (np.asarray(x) for x in record(state))
  return {
    "y": y,
    "observation": observation,
    "reward": reward,
    "done": done,
    "final_return": float(final_return(state.actor.last_return)),
  }


def analyse(recording: dict[str, Any], gammas=GAMMAS) -> dict[float, tuple[Readout, float, float]]:
  """{gamma: (read-out of G^gamma from y, tabular ceiling R^2, its coverage)}, fitted on the
  first half of the envs and scored on the rest (ceiling NaN for non-tabular observations)."""
  y, obs, reward, done = recording["y"], recording["observation"], recording["reward"], recording["done"]
  half = y.shape[1] // 2
  tabular = obs.ndim == 2 and np.issubdtype(obs.dtype, np.integer)
  out = {}
  for gamma in gammas:
    g, exact = discounted_returns(reward, done, gamma)
    train, test = np.zeros_like(exact), np.zeros_like(exact)
    train[:, :half], test[:, half:] = exact[:, :half], exact[:, half:]
    readout = linear_readout(y[train], g[train], y[test], g[test])
    ceiling = tabular_ceiling(obs[train], g[train], obs[test], g[test]) if tabular else (math.nan, 0.0)
    out[gamma] = (readout, *ceiling)
  return out


def run(
  rules: list[str], env_name: str, env_steps: int, rollout_steps: int, out_dir: str, seed: int = 0
) -> dict:
  """The analysis for each rule; writes OUT/y_analysis.json and OUT/y_analysis.png."""
  registry.entry(env_name)
  results: dict[str, Any] = {
    "env": env_name,
    "env_steps": env_steps,
    "rollout_steps": rollout_steps,
    "seed": seed,
    "rules": {},
  }
  readouts = {}
  for spec, (rule, meta_params) in zip(rules, rule_registry.resolve_all(rules)):
    recording = train_and_record(rule, meta_params, env_name, env_steps, rollout_steps, seed)
    readouts[spec] = analyse(recording)
    results["rules"][spec] = {
      "final_return": recording["final_return"],
      "y_entropy": float(np.mean(-np.sum(recording["y"] * np.log(recording["y"] + 1e-12), axis=-1))),
      "readout": {
        str(g): {
          "pearson_r": r.pearson_r,
          "r2": r.r2,
          "n_test": len(r.target),
          "tabular_ceiling_r2": ceiling,
          "ceiling_coverage": coverage,
        }
        for g, (r, ceiling, coverage) in readouts[spec].items()
      },
    }
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, "y_analysis.json"), "w") as f:
    json.dump(results, f, indent=2)
  _plot(readouts, results, os.path.join(out_dir, "y_analysis.png"))
  return results


def _plot(readouts: dict[str, dict[float, Readout]], results: dict, path: str) -> None:
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  rules = list(readouts)
  gamma = SCATTER_GAMMA
  fig, axes = plt.subplots(1, len(rules) + 1, figsize=(4.2 * (len(rules) + 1), 3.8))
  rng = np.random.default_rng(0)
  for ax, spec in zip(axes, rules):
    r = readouts[spec][gamma][0]
    idx = rng.choice(len(r.target), size=min(3000, len(r.target)), replace=False)
    ax.scatter(r.target[idx], r.predicted[idx], s=3, alpha=0.3)
    lo, hi = float(np.min(r.target)), float(np.max(r.target))
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set_title(f"{spec}\nr = {r.pearson_r:.2f}, R² = {r.r2:.2f} (gamma = {gamma})", fontsize=9)
    ax.set_xlabel(f"true discounted return G (gamma = {gamma})")
    ax.set_ylabel("linear read-out of y")
  ax = axes[-1]
  for spec in rules:
    ax.plot(GAMMAS, [readouts[spec][g][0].r2 for g in GAMMAS], "o-", label=spec)
  ceiling = [readouts[rules[0]][g][1] for g in GAMMAS]
  if np.isfinite(ceiling).any():
    ax.plot(GAMMAS, ceiling, "k:", label=f"ceiling: V(s) of {rules[0]}'s policy")
  ax.set_xlabel("gamma")
  ax.set_ylabel("held-out R²")
  ax.set_title(f"{results['env']}: y -> G^gamma", fontsize=9)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def summary_line(spec: str, result: dict[str, Any]) -> str:
  """One rule's line of `run`'s results: final return, then r and R² per gamma (or why
  there are none: every recorded return equal, so R² is undefined)."""
  readout = result["readout"]
  if all(math.isnan(v["r2"]) for v in readout.values()):
    cells = "every recorded return is the same: nothing to explain"
  else:
    cells = ", ".join(
      f"gamma {g}: r {v['pearson_r']:.2f} R² {v['r2']:.2f} (ceiling {v['tabular_ceiling_r2']:.2f})"
      for g, v in readout.items()
    )
  return f"{spec:<24s} final return {result['final_return']:.2f}; {cells}"


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m lpg.y_analysis", description=__doc__.splitlines()[0])
  parser.add_argument("--rule", default="pretrained:default_cpu,lpg_init", help="comma-separated rules")
  parser.add_argument("--env", default="tabular_dense")
  parser.add_argument("--env_steps", type=int, default=1_000_000, help="training steps of the agent")
  parser.add_argument("--rollout_steps", type=int, default=2000, help="recorded steps per env")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--out", default="runs/y_analysis")
  args = parser.parse_args(argv)
  try:
    results = run(args.rule.split(","), args.env, args.env_steps, args.rollout_steps, args.out, args.seed)
  except (rule_registry.RuleError, UnknownEnvironmentError) as e:
    print(f"y_analysis: error: {e}", file=sys.stderr)
    return 2
  for spec, r in results["rules"].items():
    print(summary_line(spec, r))
  print(f"wrote {args.out}/y_analysis.json, {args.out}/y_analysis.png")
  return 0


if __name__ == "__main__":
  sys.exit(main())
