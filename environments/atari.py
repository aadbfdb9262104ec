"""Any Atari 2600 game that ale-py bundles, as a `HostEnvironment` (ale-py's AtariVectorEnv).

Preprocessing (`AtariConfig`) is the standard one of the Atari literature; every choice
is a field:
  - Observations (Mnih et al. 2015, "Human-level control through deep RL"): frames
    converted to grayscale and resized to 84x84 (area interpolation); each agent step
    repeats the action for `frameskip` = 4 frames and observes the pixel-wise max of the
    last two of them (removes the flicker of sprites drawn on alternate frames); the last
    `stack_num` = 4 such frames are stacked. ale-py returns [B, 4, 84, 84]; the stack is
    moved to the channels: uint8 [B, 84, 84, 4].
  - Sticky actions (Machado et al. 2018, "Revisiting the ALE"; the `-v5` ids): with
    probability `repeat_action_probability` = 0.25 the emulator repeats the previous
    action on each frame instead of the agent's, so that a policy cannot memorise an
    open-loop action sequence.
  - No-op starts (Mnih et al. 2015): each game starts with a random number of no-op
    frames below `noop_max` = 30 (ale-py draws 0..noop_max-1, counting the FIRE of
    `use_fire_reset`). Machado et al. propose sticky actions in place of no-op starts;
    like several later works, we keep both.
  - `use_fire_reset` (ale-py's default, from the DQN baselines): press FIRE on reset in
    games that need it to start (e.g. Breakout).
  - Episodic life (Mnih et al. 2015): for learning, a lost life ends the episode: the
    step is LAST with discount 0, but the game goes on (it is not reset). Scores count
    whole games: `Scores.done` is set on game over (or the time limit) only, with the
    return summed over all the game's lives.
  - Reward clipping (Mnih et al. 2015): the learning reward is clipped to [-1, 1];
    `Scores.score` is the unclipped game score.
  - `full_action_space` = False: the game's minimal action set (4 actions in Breakout).
  - `max_num_frames_per_episode` = 108000 frames (30 minutes of play at 60 Hz): the game
    is truncated there (LAST with discount 1; it counts as a scored game).

How the ale-py flags are used (ale-py 0.12): its own `episodic_life=True` resets the
whole game at every lost life (so a "game" would last one life), so episodic life here is
its `life_loss_info=True` (terminated on a lost life, no reset), and a game over is told
apart from a lost life by the reset that follows it (lives and the episode frame counter
restart). Its `info` has no unclipped reward, so ale-py returns raw rewards and they are
clipped here for the TimeStep. Auto-reset is `SAME_STEP`, as in the JAX envs.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re

import numpy as np
from dm_env import specs

from environments import host
from environments.errors import UnknownEnvironmentError
from environments.types import TimeStep

# Spellings of games that the separator-free lowercase key does not unify.
_ALIASES = {"montezumasrevenge": "montezumarevenge"}
_PREFIXES = ("atari/", "ale/")


def game_key(name: str) -> str:
  """A spelling-independent key for a game name.

  'Breakout', 'breakout', 'atari/SpaceInvaders', 'space_invaders', 'ALE/SpaceInvaders-v5'
  and 'MontezumasRevenge' give 'breakout', 'spaceinvaders', ..., 'montezumarevenge'.
  """
  key = name.strip().lower()
  for prefix in _PREFIXES:
    if key.startswith(prefix):
      key = key[len(prefix) :]
  key = re.sub(r"-v\d+$", "", key)
  key = re.sub(r"[\s_\-.']", "", key)
  return _ALIASES.get(key, key)


def camel_case(rom_id: str) -> str:
  """'space_invaders' -> 'SpaceInvaders', 'tic_tac_toe_3d' -> 'TicTacToe3D'."""
  return "".join(part.upper() if part[:1].isdigit() else part.capitalize() for part in rom_id.split("_"))


@functools.cache
def rom_ids() -> tuple[str, ...]:
  """The snake_case ROM ids ale-py bundles (`ale_py.roms.get_all_rom_ids()`), sorted."""
  from ale_py import roms  # Imported late: ale-py is an optional dependency ([atari]).

  return tuple(sorted(roms.get_all_rom_ids()))


@functools.cache
def _rom_by_key() -> dict[str, str]:
  return {game_key(rom_id): rom_id for rom_id in rom_ids()}


def atari_game_names() -> tuple[str, ...]:
  """Every game ale-py bundles, in CamelCase ('Alien', ..., 'Zaxxon')."""
  return tuple(camel_case(rom_id) for rom_id in rom_ids())


def unknown_game_message(name: str, known_keys: dict[str, str], what: str) -> str:
  """One line: `name` is not among `known_keys` (key -> rom id), with a suggestion."""
  close = difflib.get_close_matches(game_key(name), list(known_keys), n=1, cutoff=0.6)
  hint = f"; did you mean {camel_case(known_keys[close[0]])}?" if close else ""
  return f"{what} {name!r}{hint}"


def rom_id(name: str) -> str:
  """The ale-py ROM id ('space_invaders') of a game name in any accepted spelling.

  Raises:
    UnknownEnvironmentError: (one line) for a game ale-py does not bundle.
  """
  by_key = _rom_by_key()
  key = game_key(name)
  if key in by_key:
    return by_key[key]
  names = atari_game_names()
  listed = ", ".join(f"atari/{n}" for n in names[:3])
  message = unknown_game_message(name, by_key, "unknown Atari game")
  raise UnknownEnvironmentError(f"{message} ({len(names)} games: {listed}, ...; see meta_test.py --list)")


@dataclasses.dataclass(frozen=True)
class AtariConfig:
  """Atari preprocessing (see the module docstring for where each choice comes from).

  Attributes:
    img_height, img_width: size of the resized frame.
    grayscale: grayscale frames (else RGB, giving 3 * stack_num channels).
    frameskip: emulator frames per agent step (the action is repeated).
    maxpool: observe the max over the last two frames of each step.
    stack_num: frames stacked into one observation (the channels).
    repeat_action_probability: sticky actions' per-frame repeat probability.
    noop_max: up to this many no-op frames start each game.
    use_fire_reset: press FIRE on reset in games that have it.
    episodic_life: a lost life is a LAST step with discount 0 (the game goes on).
    reward_clipping: clip the TimeStep reward to [-1, 1] (Scores stay unclipped).
    full_action_space: all 18 actions instead of the game's minimal set.
    max_num_frames_per_episode: truncate a game after this many frames.
    num_threads: ale-py worker threads; 0 for min(num_envs, CPU count).
  """

  img_height: int = 84
  img_width: int = 84
  grayscale: bool = True
  frameskip: int = 4
  maxpool: bool = True
  stack_num: int = 4
  repeat_action_probability: float = 0.25
  noop_max: int = 30
  use_fire_reset: bool = True
  episodic_life: bool = True
  reward_clipping: bool = True
  full_action_space: bool = False
  max_num_frames_per_episode: int = 108_000
  num_threads: int = 0

  def __post_init__(self):
    for field in ("img_height", "img_width", "frameskip", "stack_num", "max_num_frames_per_episode"):
      if getattr(self, field) < 1:
        raise ValueError(f"AtariConfig.{field} must be positive, got {getattr(self, field)}")
    if self.noop_max < 0 or self.num_threads < 0:
      raise ValueError("AtariConfig.noop_max and num_threads must be non-negative")
    if not 0.0 <= self.repeat_action_probability <= 1.0:
      raise ValueError(
        f"AtariConfig.repeat_action_probability must lie in [0, 1], got {self.repeat_action_probability}"
      )


class AtariEnvironment(host.HostEnvironment):
  """B copies of one Atari game, stepped in parallel C++ threads by ale-py.

  Observations are uint8 [B, H, W, stack_num] (grayscale) or [B, H, W, 3 * stack_num].
  """

  def __init__(self, game: str, num_envs: int, config: AtariConfig = AtariConfig()):
    """Builds the vector env; no game runs until `reset`.

    Args:
      game: a ROM ale-py bundles, e.g. 'Breakout', 'breakout', 'SpaceInvaders', 'space_invaders'.
      num_envs: B.
      config: preprocessing.
    """
    if num_envs < 1:
      raise ValueError(f"num_envs must be positive, got {num_envs}")
    self.rom_id = rom_id(game)
    self.name = f"atari/{camel_case(self.rom_id)}"
    self.num_envs = num_envs
    self.config = config
    from ale_py import AtariVectorEnv
    from gymnasium.vector import AutoresetMode

    self._env = AtariVectorEnv(
      self.rom_id,
      num_envs,
      num_threads=config.num_threads,
      max_num_frames_per_episode=config.max_num_frames_per_episode,
      repeat_action_probability=config.repeat_action_probability,
      full_action_space=config.full_action_space,
      autoreset_mode=AutoresetMode.SAME_STEP,
      img_height=config.img_height,
      img_width=config.img_width,
      grayscale=config.grayscale,
      stack_num=config.stack_num,
      frameskip=config.frameskip,
      maxpool=config.maxpool,
      noop_max=config.noop_max,
      # ale-py's episodic_life resets the whole game on a lost life; see the module docstring.
      episodic_life=False,
      life_loss_info=config.episodic_life,
      reward_clipping=False,
      use_fire_reset=config.use_fire_reset,
    )
    self._num_actions = int(self._env.single_action_space.n)
    channels = config.stack_num * (1 if config.grayscale else 3)
    self._obs_shape = (config.img_height, config.img_width, channels)
    self._env_ids = np.arange(num_envs)  # Env order of the last batch ale-py returned.
    self._lives = np.zeros(num_envs, np.int64)
    self._episode_frame = np.zeros(num_envs, np.int64)
    self._game_return = np.zeros(num_envs, np.float64)
    self._started = False
    self._pending = False

  @property
  def num_actions(self) -> int:
    return self._num_actions

  @property
  def backend(self):
    """The underlying `ale_py.AtariVectorEnv` (benchmarks step it raw)."""
    return self._env

  def observation_spec(self) -> specs.BoundedArray:
    return specs.BoundedArray(self._obs_shape, np.uint8, 0, 255, name="observation")

  def describe(self) -> str:
    c = self.config
    frames = f"{'gray' if c.grayscale else 'RGB'} {c.img_height}x{c.img_width}x{c.stack_num}"
    return (
      f"Atari {camel_case(self.rom_id)} (ale-py): {frames}, {self.num_actions} actions, frameskip {c.frameskip}, "
      f"sticky {c.repeat_action_probability}, episodic life {c.episodic_life}, clip {c.reward_clipping}"
    )

  def _batch(self, obs: np.ndarray, info: dict, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Puts ale-py's batch in env order, the observation channels-last; updates env ids."""
    env_ids = np.asarray(info["env_id"])
    self._env_ids = env_ids
    order = None if np.array_equal(env_ids, np.arange(self.num_envs)) else np.argsort(env_ids)
    if order is not None:
      obs = obs[order]
      arrays = tuple(a[order] for a in arrays)
    if self.config.grayscale:  # [B, S, H, W] -> [B, H, W, S]
      obs = obs.transpose(0, 2, 3, 1)
    else:  # [B, S, H, W, 3] -> [B, H, W, S * 3]
      obs = obs.transpose(0, 2, 3, 1, 4).reshape((self.num_envs, *self._obs_shape))
    return (np.ascontiguousarray(obs), *arrays)

  def reset(self, seed: int) -> TimeStep:
    if self._pending:
      self._env.recv()  # Drains the step in flight before resetting.
      self._pending = False
    obs, info = self._env.reset(seed=host.env_seeds(seed, self.num_envs))
    obs, lives, frame = self._batch(obs, info, info["lives"], info["episode_frame_number"])
    self._lives = lives.astype(np.int64)
    self._episode_frame = frame.astype(np.int64)
    self._game_return[:] = 0.0
    self._started = True
    return host.first_timestep(obs)

  def send(self, action: np.ndarray) -> None:
    if not self._started:
      raise RuntimeError(f"{self.name}: call reset() before send()")
    if self._pending:
      raise RuntimeError(f"{self.name}: send() twice without recv()")
    action = self._check_action(action)
    self._env.send(action[self._env_ids])  # ale-py maps the i-th action to env_ids[i].
    self._pending = True

  def recv(self) -> host.HostStep:
    if not self._pending:
      raise RuntimeError(f"{self.name}: recv() without send()")
    obs, reward, terminated, truncated, info = self._env.recv()
    self._pending = False
    raw_final = info.get("final_obs")  # ale-py's same-step auto-reset: the reset games' last frames
    obs, reward, terminated, truncated, lives, frame = self._batch(
      obs, info, reward, terminated, truncated, info["lives"], info["episode_frame_number"]
    )
    raw_reward = reward.astype(np.float64)
    self._game_return += raw_reward
    # Without a reset the episode frame counter only grows; a game over or the time limit
    # resets the game in this same step, which restarts it (and the lives).
    life_lost = terminated & (lives < self._lives) & (frame > self._episode_frame)
    game_over = (terminated & ~life_lost) | truncated
    score = np.where(game_over, self._game_return, 0.0)
    self._game_return[game_over] = 0.0
    self._lives = lives.astype(np.int64)
    self._episode_frame = frame.astype(np.int64)
    if self.config.reward_clipping:
      reward = np.clip(raw_reward, -1.0, 1.0)
    timestep = host.transition_timestep(obs, reward, terminated, truncated)
    final = obs
    if raw_final is not None and game_over.any():  # A lost life goes on: only a reset game has a final frame.
      (reset_frames,) = self._batch(raw_final, {"env_id": self._env_ids})
      final = np.where(game_over.reshape(-1, 1, 1, 1), reset_frames, obs)
    return host.HostStep(timestep, host.Scores(done=game_over, score=score), final)

  def close(self) -> None:
    if getattr(self, "_env", None) is not None:
      self._env.close()
      self._env = None
