"""Sharded meta-steps (what the Ray launcher's workers compute) equal the fused one-process
meta-step: shards that split a population and span two envs, run separately and combined
by the meta-learner node, give the same eta, bandits and lifetimes."""

import jax
import numpy as np
from test_meta_train_resume import _leaves, tiny_config

from lpg import meta_learner, program
from lpg.launch import local

SHARDS = 3


def test_shard_parts_cover_every_lifetime_once_in_order():
  sizes = [5, 5]
  parts = [meta_learner.shard_parts(sizes, i, SHARDS) for i in range(SHARDS)]
  assert parts[1] == (meta_learner.Part(0, 3, 5), meta_learner.Part(1, 0, 1))  # split, two envs
  flat = [(p.env, lt) for shard in parts for p in shard for lt in range(p.start, p.stop)]
  assert flat == [(e, lt) for e in range(2) for lt in range(5)]
  assert meta_learner.shard_parts([5], 2, 2) == ()  # an empty shard (the launcher refuses those)


def test_sharded_meta_steps_equal_the_fused_meta_step():
  config = tiny_config(train_envs="chain_short,chain_long", lifetimes_per_env=5)
  prog = program.build(config)
  state = prog.init(jax.random.PRNGKey(0))
  fused = jax.jit(local.fused_meta_step(prog))
  shards = [prog.worker.shard(i, SHARDS) for i in range(SHARDS)]
  assert [len(s.parts) for s in shards] == [1, 2, 1]
  steps = [jax.jit(s.step) for s in shards]
  apply = jax.jit(lambda st, b, outs: prog.learner.apply(st, b, outs, [s.parts for s in shards]))

  want, got = state, state
  lifetimes = [meta_learner.slice_lifetimes(state["lifetimes"], s.parts) for s in shards]
  ended = 0
  for _ in range(3):
    want, want_metrics, _ = fused(want)
    ended += int(want_metrics.lifetimes_ended)
    eta = got["learner"].eta
    results = [step(eta, got["bandits"], lts) for step, lts in zip(steps, lifetimes)]
    lifetimes = [lts for _, lts in results]
    learner, bandits, _, _ = apply(got["learner"], got["bandits"], [out for out, _ in results])
    merged = meta_learner.merge_lifetimes(lifetimes, [s.parts for s in shards], prog.learner.num_envs)
    got = {"learner": learner, "bandits": bandits, "lifetimes": merged}
  assert ended > 0  # restarts (and the bandit) are part of what must match
  for x, y in zip(_leaves(want), _leaves(got)):
    if np.issubdtype(x.dtype, np.floating):
      # Only the order of float sums differs (per-shard sums, then across shards).
      np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5)
    else:
      np.testing.assert_array_equal(x, y)  # steps, arms, ended flags, bandit counts, keys
