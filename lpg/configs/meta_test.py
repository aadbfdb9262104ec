"""Config of `meta_test.py`: how fresh agents are trained with a rule on test envs.

Override any field on the command line, e.g. `--config.num_envs=32`.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  # Acting: B parallel environments (0: the env's preset, 64 for grid worlds and chains
  # as in meta-training, 30 for Atari as in Table 4), T-step trajectories per update.
  c.num_envs = 0
  c.unroll_length = 20
  # Agent: m, the number of bins of the prediction y (paper: 30).
  c.y_size = 30
  # Hyperparameters. A negative value means "the default": the env's meta-test preset
  # where the paper fixes one (Atari: Adam 5e-4, alpha_y 0.5), else the rule's defaults
  # for the env's optimiser (Table 3: SGD for tables, Adam otherwise).
  c.learning_rate = -1.0
  c.y_cost = 0.5  # alpha_y (paper: searched {0.1, 0.5, 1}).
  c.value_cost = -1.0
  c.entropy_cost = -1.0
  c.discount = -1.0  # Negative: the env's (0.99; Atari 0.995, Table 4).
  # Eq. 7's baseline on pi_hat for LPG rules: -1 the env's (on for Atari), 0 off, 1 on.
  c.pi_hat_baseline = -1
  # Reporting: points on each learning curve (each point is one jitted chunk of updates;
  # env_steps is rounded up to whole chunks).
  c.num_curve_points = 20
  c.seed_offset = 0
  c.lock()
  return c
