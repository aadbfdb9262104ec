"""Config of `meta_test.py`: how fresh agents are trained with a rule on test envs.

Override any field on the command line, e.g. `--config.num_envs=32`.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  # Acting: B parallel environments, T-step trajectories per update (paper: 64 x 20).
  c.num_envs = 64
  c.unroll_length = 20
  # Agent: m, the number of bins of the prediction y (paper: 30).
  c.y_size = 30
  # Hyperparameters. A negative value means "the default": the learning rate from the
  # rule's defaults for the env's optimiser (Table 3 optimiser: SGD for tables, Adam
  # otherwise), the costs from the rule's defaults.
  c.learning_rate = -1.0
  c.y_cost = 0.5  # alpha_y (paper: searched {0.1, 0.5, 1}).
  c.value_cost = -1.0
  c.entropy_cost = -1.0
  c.discount = 0.99
  # Reporting: points on each learning curve (each point is one jitted chunk of updates;
  # env_steps is rounded up to whole chunks).
  c.num_curve_points = 20
  c.seed_offset = 0
  c.lock()
  return c
