"""Acting: B environments stepped T times with the agent's policy, as one `lax.scan`."""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import haiku as hk
import jax
import jax.numpy as jnp

from environments.types import Environment
from inner_agents.agent import ActorCriticAgent
from inner_agents.types import AgentOutput, Trajectory


class ActorState(NamedTuple):
  """The acting side of one lifetime, batched over its B environments.

  env_state: the envs' states [B].
  observation: [B, ...] current observations.
  episode_return: float32 [B] return so far of the running episodes.
  last_return: float32 [B] return of each env's latest completed episode (NaN if none).
  """

  env_state: Any
  observation: chex.Array
  episode_return: chex.Array
  last_return: chex.Array


class RolloutStats(NamedTuple):
  """return_sum: summed returns of the episodes completed in the rollout; episode_count:
  how many completed."""

  return_sum: chex.Array
  episode_count: chex.Array


def init_actor(env: Environment, env_params: Any, key: chex.PRNGKey, num_envs: int) -> ActorState:
  """Resets `num_envs` environments that share the lifetime's `env_params`."""
  keys = jax.random.split(key, num_envs)
  env_state, ts = jax.vmap(env.reset, in_axes=(0, None))(keys, env_params)
  return ActorState(
    env_state=env_state,
    observation=ts.observation,
    episode_return=jnp.zeros(num_envs, jnp.float32),
    last_return=jnp.full(num_envs, jnp.nan, jnp.float32),
  )


def rollout(
  env: Environment,
  agent: ActorCriticAgent,
  params: hk.Params,
  env_params: Any,
  actor: ActorState,
  key: chex.PRNGKey,
  unroll_length: int,
) -> tuple[ActorState, Trajectory, AgentOutput, RolloutStats]:
  """Acts for T = unroll_length steps in B envs, sampling a_t ~ pi(.|s_t).

  Returns:
    The new ActorState, the Trajectory [T, B] (observations [T+1, B]), the agent's
    outputs on those T+1 observations (with `params`, so on-policy rules need no second
    forward pass), and RolloutStats.
  """
  step_env = jax.vmap(env.step, in_axes=(0, 0, None))

  def step(actor: ActorState, key):
    out = agent.apply(params, actor.observation)  # [B, ...]
    action = jax.random.categorical(key, out.logits).astype(jnp.int32)  # [B]
    env_state, ts = step_env(actor.env_state, action, env_params)
    done = ts.last()
    episode_return = actor.episode_return + ts.reward
    next_actor = ActorState(
      env_state=env_state,
      observation=ts.observation,
      episode_return=jnp.where(done, 0.0, episode_return),
      last_return=jnp.where(done, episode_return, actor.last_return),
    )
    record = (actor.observation, action, ts.reward, done.astype(jnp.float32), out)
    completed = (jnp.sum(jnp.where(done, episode_return, 0.0)), jnp.sum(done))
    return next_actor, (record, completed)

  keys = jax.random.split(key, unroll_length)
  actor, ((obs, action, reward, done, out), (ret, count)) = jax.lax.scan(step, actor, keys)
  last_out = agent.apply(params, actor.observation)
  outputs = jax.tree.map(lambda xs, x: jnp.concatenate([xs, x[None]]), out, last_out)
  trajectory = Trajectory(
    observation=jnp.concatenate([obs, actor.observation[None]]),
    action=action,
    reward=reward,
    done=done,
  )
  stats = RolloutStats(return_sum=jnp.sum(ret), episode_count=jnp.sum(count).astype(jnp.int32))
  return actor, trajectory, outputs, stats
