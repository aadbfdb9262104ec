"""Meta-training configs: `default` (CPU, minutes), `reference` (a GPU job) and `paper`.

python meta_train.py                               # default
python meta_train.py --config=reference --workdir=runs/reference
python meta_train.py --config=lpg/configs/meta_train.py:paper
python meta_train.py --config.lpg.hidden_size=64   # override any field

`reference` is the run meant for the rule the package is to ship as `pretrained:reference`:
the paper's training set of grid worlds and chains with one environment of each family held
out for testing (REFERENCE_HELD_OUT). It resumes from its checkpoints after an interruption.
It is a GPU job: the random grids' conv agents make it days long on a 2-core CPU (README,
Meta-training). `pretrained:reference_cpu` was trained on a CPU with the same config minus
the three conv-agent grids (REFERENCE_CPU_TRAIN; the command is in the README).
"""

import ml_collections

from environments import registry

# The paper's 15 training environments: every registered grid world and chain.
ALL_TRAIN = tuple(n for f in ("tabular_grid", "random_grid", "chain") for n in registry.names(f))
# The CPU default trains on the tabular grids and holds tabular_sparse out.
TABULAR_TRAIN = tuple(n for n in registry.names("tabular_grid") if n != "tabular_sparse")
# `reference` holds out the sparse or noisy variant of each family, so the held-out envs
# test what the training envs only show in milder form: a sparse-reward tabular grid (no
# training grid ends an episode at a goal), a sparse random grid with an MLP agent, and a
# long chain with noisy rewards (credit assignment over a delay, through noise).
REFERENCE_HELD_OUT = ("tabular_sparse", "random_small_sparse", "chain_long_noisy")
REFERENCE_TRAIN = tuple(n for n in ALL_TRAIN if n not in REFERENCE_HELD_OUT)
# The random grids whose agents have conv torsos, the costly part of `reference` on a CPU.
CONV_AGENT_GRIDS = ("random_dense", "random_long_horizon", "random_very_dense")
REFERENCE_CPU_TRAIN = tuple(n for n in REFERENCE_TRAIN if n not in CONV_AGENT_GRIDS)
VARIANTS = ("default", "reference", "paper")
# Table 3: per training environment, the bandit's grid of agent learning rates (alpha_lr)
# and KL costs (alpha_y), and the lifetime budget in env steps; keyed by env family, or by
# env name where an env differs from its family. Grid-world spec files take their family's.
ENV_SETTINGS = {
  "tabular_grid": dict(learning_rates=(20.0, 40.0, 80.0), y_costs=(0.1, 0.5, 1.0), lifetime_steps=3_000_000),
  "random_grid": dict(
    learning_rates=(5e-4, 1e-3, 2e-3, 5e-3), y_costs=(0.1, 0.5, 1.0), lifetime_steps=30_000_000
  ),
  "chain": dict(learning_rates=(20.0, 40.0, 80.0), y_costs=(0.1, 0.5, 1.0), lifetime_steps=1_000_000),
  "chain_distractor": dict(
    learning_rates=(2e-3, 5e-3, 1e-2), y_costs=(0.1, 0.5, 1.0), lifetime_steps=2_000_000
  ),
}


def get_config(variant: str = "default") -> ml_collections.ConfigDict:
  if variant not in VARIANTS:
    raise ValueError(f"unknown config variant {variant!r}; valid: {', '.join(VARIANTS)}")
  paper = variant == "paper"
  c = ml_collections.ConfigDict()
  c.variant = variant
  c.seed = 0
  # Training set and lifetimes. Default: the tabular grid worlds except tabular_sparse,
  # which is held out for evaluation.
  c.train_envs = ",".join(ALL_TRAIN if paper else TABULAR_TRAIN)
  c.eval_envs = "tabular_sparse" if not paper else ""
  c.lifetimes_per_env = 64 if paper else 2  # paper: 960 lifetimes over 15 envs
  c.num_envs = 64  # B, environments per lifetime
  c.unroll_length = 20  # T
  c.num_inner_updates = 5  # K
  c.lifetime_steps = 0 if paper else 1_000_000  # 0: the env's budget in env_settings (Table 3)
  c.env_settings = ml_collections.ConfigDict(ENV_SETTINGS)
  c.entropy_collapse = 1e-3
  c.use_bandit = True
  c.bandit_tau = 0.1
  c.bandit_rho = 0.2
  # Tables: a state many samples share moves by ~lr * (its share) per step; > 2 diverges.
  c.critic_learning_rate_sgd = 1.0
  c.critic_learning_rate_adam = 2e-3
  # LPG network (paper: LSTM 256, phi 16, m 30).
  c.lpg = ml_collections.ConfigDict()
  c.lpg.hidden_size = 256 if paper else 32
  c.lpg.phi_size = 16
  c.lpg.y_size = 30
  # Meta-objective (Table 2).
  c.y_entropy_cost = 1e-3
  c.pi_hat_l2_cost = 1e-3
  c.y_hat_l2_cost = 1e-3
  c.critic_lambda = 0.95
  c.normalize_advantages = True
  # Meta-optimiser (paper: Adam 1e-4; the CPU default takes larger steps to learn in minutes).
  c.meta_learning_rate = 1e-4 if paper else 1e-3
  c.max_grad_norm = 1.0
  c.num_meta_steps = 200_000 if paper else 1000
  # Bookkeeping.
  c.log_every = 10 if not paper else 100
  c.checkpoint_every_s = 60.0
  c.keep_checkpoints = 3
  c.eval_every = 0  # meta-steps between evaluations; 0: only at the end
  c.eval_env_steps = 300_000
  c.eval_seeds = 3
  # The Ray launcher (meta_train.py --launcher=ray); ignored by the local one.
  c.num_workers = 2  # population-worker actors, each owning a shard of the lifetimes
  c.ray_mode = "sync"  # sync: average all shards' meta-gradients per step; async: apply each
  c.max_staleness = 1  # async: drop a meta-gradient computed with eta older than this many updates
  c.ray_timeout_s = 900.0  # the longest any wait on an actor may take (the first includes compiling)
  c.ray_cpus_per_worker = 1.0  # CPUs Ray reserves for each worker actor
  c.ray_max_restarts = 3  # times a dead worker actor is restarted before the run fails
  if variant == "reference":
    _reference(c)
  c.lock()
  return c


def _reference(c: ml_collections.ConfigDict) -> None:
  """12 training envs, 4 lifetimes each (48, vs the paper's 960), the paper's per-env
  lifetime budgets, the default's LSTM-32 and meta learning rate (smaller and faster than
  `paper`); evaluated on the 3 held-out envs every 1000 meta-steps."""
  c.train_envs = ",".join(REFERENCE_TRAIN)
  c.eval_envs = ",".join(REFERENCE_HELD_OUT)
  c.lifetimes_per_env = 4
  c.lifetime_steps = 0  # the paper's per-env budgets (Table 3)
  c.num_meta_steps = 20_000
  c.log_every = 10
  c.checkpoint_every_s = 300.0
  c.eval_every = 1000
  c.eval_seeds = 3
  c.eval_env_steps = 300_000
