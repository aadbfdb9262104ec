"""AtariEnvironment (ale-py): specs, TimeStep semantics with episodic life, full-game
unclipped scores, truncation, game names, seeding."""

import numpy as np
import pytest

pytest.importorskip("ale_py")

from environments import atari, host, types
from environments.errors import UnknownEnvironmentError

B = 2


def _rollout(env, seed, num_steps=None, actions_seed=0, until_games=None):
  """Random actions; returns the reset TimeStep and per-step lists of (TimeStep, Scores, action)."""
  rng = np.random.default_rng(actions_seed)
  first = env.reset(seed)
  steps, games = [], np.zeros(env.num_envs, int)
  for _ in range(num_steps or 3000):
    action = rng.integers(0, env.num_actions, env.num_envs)
    ts, scores, _ = env.step(action)
    steps.append((ts, scores, action))
    games += scores.done
    if until_games is not None and (games >= until_games).all():
      break
  return first, steps


@pytest.fixture(scope="module")
def breakout():
  with atari.AtariEnvironment("Breakout", B) as env:
    first, steps = _rollout(env, seed=0, until_games=1)
    yield env, first, steps


def test_specs_and_first_timestep(breakout):
  env, first, _ = breakout
  assert env.name == "atari/Breakout"
  assert env.num_envs == B and env.num_actions == 4
  spec = env.observation_spec()
  assert spec.shape == (84, 84, 4) and spec.dtype == np.uint8
  assert env.action_spec().num_values == 4
  assert first.observation.shape == (B, 84, 84, 4) and first.observation.dtype == np.uint8
  assert first.observation.flags["C_CONTIGUOUS"]
  np.testing.assert_array_equal(first.step_type, [types.FIRST] * B)
  assert first.step_type.dtype == np.int8
  assert first.reward.dtype == np.float32 and not first.reward.any()
  assert first.discount.dtype == np.float32 and (first.discount == 1).all()
  assert "Breakout" in env.describe() and "\n" not in env.describe()


def test_step_types_discounts_and_clipped_rewards(breakout):
  _, _, steps = breakout
  assert len(steps) > 50
  for ts, scores, _ in steps:
    assert ts.observation.shape == (B, 84, 84, 4) and ts.observation.dtype == np.uint8
    assert ts.step_type.dtype == np.int8 and ts.reward.dtype == np.float32 and ts.discount.dtype == np.float32
    assert set(ts.step_type.tolist()) <= {types.MID, types.LAST}
    # No time limit is reached here: every LAST is a termination (a life or the game).
    np.testing.assert_array_equal(ts.discount, np.where(ts.step_type == types.LAST, 0.0, 1.0))
    assert ((ts.reward >= -1) & (ts.reward <= 1)).all()
    assert scores.done.dtype == bool and scores.score.dtype == np.float64
    assert (scores.done <= (ts.step_type == types.LAST)).all()  # A game ends on a LAST step.
    assert not scores.score[~scores.done].any()


def test_a_game_spans_several_lives(breakout):
  """Breakout has 5 lives: 4 LAST steps for lost lives (no Scores.done), then the game over."""
  _, _, steps = breakout
  for i in range(B):
    lasts, rewards = 0, 0.0
    for ts, scores, _ in steps:
      lasts += ts.step_type[i] == types.LAST
      rewards += ts.reward[i]
      if scores.done[i]:
        assert lasts == 5
        # Breakout's random-play rewards are the bottom rows' 1s, so clipping changes nothing.
        assert scores.score[i] == rewards
        break
    else:
      pytest.fail(f"env {i} finished no game")


def test_scores_are_unclipped_full_games():
  """SpaceInvaders rewards are 5 to 30: the learning reward is clipped, the score is not."""
  config = atari.AtariConfig(reward_clipping=False)
  with (
    atari.AtariEnvironment("space_invaders", 1) as clipped,
    atari.AtariEnvironment("SpaceInvaders", 1, config) as raw,
  ):
    _, clipped_steps = _rollout(clipped, seed=1, until_games=1)
    _, raw_steps = _rollout(raw, seed=1, num_steps=len(clipped_steps))
  clipped_r = np.array([ts.reward[0] for ts, _, _ in clipped_steps])
  raw_r = np.array([ts.reward[0] for ts, _, _ in raw_steps])
  np.testing.assert_array_equal(clipped_r, np.clip(raw_r, -1, 1))
  assert raw_r.max() > 1
  done = [scores.done[0] for _, scores, _ in clipped_steps]
  assert done == [scores.done[0] for _, scores, _ in raw_steps]
  assert done[-1] and sum(done) == 1
  assert clipped_steps[-1][1].score[0] == raw_r.sum() > clipped_r.sum()
  # SpaceInvaders has 3 lives: the game spans 3 LAST steps, all terminations.
  lasts = [ts.discount[0] for ts, _, _ in clipped_steps if ts.step_type[0] == types.LAST]
  assert lasts == [0.0, 0.0, 0.0]


def test_pong_has_no_lives_and_truncates():
  """Pong has no lives (every LAST ends a game); a frame limit truncates with discount 1."""
  config = atari.AtariConfig(max_num_frames_per_episode=400)  # 100 agent steps.
  with atari.AtariEnvironment("Pong", 1, config) as env:
    _, steps = _rollout(env, seed=0, num_steps=250)
  lasts = [t for t, (ts, _, _) in enumerate(steps) if ts.step_type[0] == types.LAST]
  assert lasts == [99, 199]
  for t in lasts:
    ts, scores, _ = steps[t]
    assert ts.discount[0] == 1.0 and scores.done[0]
  game = [ts.reward[0] for ts, _, _ in steps[100:200]]
  assert steps[199][1].score[0] == sum(game)


def test_truncated_game_keeps_its_final_frames():
  """At a truncation the TimeStep holds the next game's first frames (a fresh stack, three
  frames zero) and `final_observation` the frames the game reached (a full stack)."""
  config = atari.AtariConfig(max_num_frames_per_episode=40)  # 10 agent steps.
  with atari.AtariEnvironment("Pong", 2, config) as env:
    env.reset(0)
    for t in range(10):
      ts, _, final = env.step(np.zeros(2, np.int32))
      if t < 9:
        np.testing.assert_array_equal(final, ts.observation)
  assert (ts.step_type == types.LAST).all() and (ts.discount == 1.0).all()
  assert not ts.observation[..., :3].any() and ts.observation[..., 3].any()
  assert all(final[..., c].any() for c in range(4))


def test_last_observation_starts_the_next_life_or_game(breakout):
  """The observation at a LAST step is the next episode's first: fresh after a game over."""
  _, _, steps = breakout
  for ts, scores, _ in steps:
    for i in np.flatnonzero(scores.done):
      # After a reset the frame stack holds one frame and zeros (ale-py clears it).
      assert not ts.observation[i, ..., :3].any() and ts.observation[i, ..., 3].any()


def test_send_recv_equals_step_and_errors():
  with atari.AtariEnvironment("Breakout", B) as a, atari.AtariEnvironment("Breakout", B) as b:
    with pytest.raises(RuntimeError):
      a.send(np.zeros(B, np.int32))
    ts_a, ts_b = a.reset(5), b.reset(5)
    np.testing.assert_array_equal(ts_a.observation, ts_b.observation)
    for t in range(30):
      action = np.array([t % 4, (t + 1) % 4], np.int32)
      a.send(action)
      ts_a, scores_a, final_a = a.recv()
      ts_b, scores_b, final_b = b.step(action)
      for x, y in zip((*ts_a, *scores_a, final_a), (*ts_b, *scores_b, final_b)):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(RuntimeError):
      a.recv()
    with pytest.raises(ValueError):
      a.send(np.zeros(B + 1, np.int32))
    with pytest.raises(ValueError):
      a.send(np.full(B, 4, np.int32))


def test_seeds_reproducible():
  with atari.AtariEnvironment("Breakout", B) as env:
    first_a, steps_a = _rollout(env, seed=7, num_steps=150)
    first_b, steps_b = _rollout(env, seed=7, num_steps=150)
    first_c, steps_c = _rollout(env, seed=8, num_steps=150)
  obs = lambda first, steps: np.stack([first.observation] + [ts.observation for ts, _, _ in steps])  # noqa: E731
  np.testing.assert_array_equal(obs(first_a, steps_a), obs(first_b, steps_b))
  assert not np.array_equal(obs(first_a, steps_a), obs(first_c, steps_c))


@pytest.mark.parametrize(
  "name, rom",
  [
    ("Breakout", "breakout"),
    ("breakout", "breakout"),
    ("SpaceInvaders", "space_invaders"),
    ("space_invaders", "space_invaders"),
    ("SPACE_INVADERS", "space_invaders"),
    ("atari/MsPacman", "ms_pacman"),
    ("ALE/Pong-v5", "pong"),
    ("MontezumaRevenge", "montezuma_revenge"),
    ("MontezumasRevenge", "montezuma_revenge"),
    ("TicTacToe3D", "tic_tac_toe_3d"),
  ],
)
def test_game_names(name, rom):
  assert atari.rom_id(name) == rom


def test_game_name_list():
  names = atari.atari_game_names()
  assert len(names) == len(atari.rom_ids()) >= 100
  assert {"Breakout", "SpaceInvaders", "MontezumaRevenge", "Pong"} <= set(names)
  assert all(atari.rom_id(name) == rom for name, rom in zip(names, atari.rom_ids()))


def test_unknown_game_is_one_line_error():
  with pytest.raises(UnknownEnvironmentError) as error:
    atari.AtariEnvironment("Breakot", 1)
  message = str(error.value)
  assert "\n" not in message
  assert "'Breakot'" in message and "did you mean Breakout?" in message
  assert isinstance(error.value, ValueError)


def test_config_validation():
  with pytest.raises(ValueError):
    atari.AtariConfig(frameskip=0)
  with pytest.raises(ValueError):
    atari.AtariConfig(repeat_action_probability=1.5)


def test_is_a_host_environment():
  assert issubclass(atari.AtariEnvironment, host.HostEnvironment)
