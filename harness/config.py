"""Config of `meta_test.py`: how fresh agents are trained with a rule on test envs.

Override any field on the command line, e.g. `--config.num_envs=32`; each registered agent
has a sub-tree of its own typed config (`--config.actor_critic.learning_rate=5e-4`; the
fields and their meaning are the agent's config dataclass, e.g.
`inner_agents.actor_critic.agent.ActorCriticConfig`).
"""

import ml_collections

from inner_agents import registry


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  # Acting: B parallel environments (0: the agent's preset for the env, 64 for grid worlds
  # and chains as in meta-training, 30 for Atari as in Table 4), T-step trajectories.
  # Offline agents (CRR) sample B windows of T consecutive dataset transitions per update
  # (0: the agent's, 13 x 20 = 260 transitions).
  c.num_envs = 0
  c.unroll_length = 20
  # Reporting: points on each learning curve (each point is one jitted chunk of updates;
  # env_steps is rounded up to whole chunks).
  c.num_curve_points = 20
  c.seed_offset = 0
  for name in registry.names():
    c[name] = ml_collections.ConfigDict(registry.default_config(name))
  c.lock()
  return c
