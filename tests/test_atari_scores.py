"""Human-normalised Atari scores: hand-worked values, arrays, name spellings, missing games."""

import numpy as np
import pytest

from environments import atari_scores


def test_table():
  assert len(atari_scores.ATARI_57) == 57
  assert set(atari_scores.RANDOM_SCORES) == set(atari_scores.HUMAN_SCORES) == set(atari_scores.ATARI_57)
  assert atari_scores.RANDOM_SCORES["breakout"] == 1.7 and atari_scores.HUMAN_SCORES["breakout"] == 30.5
  assert atari_scores.RANDOM_SCORES["skiing"] == -17098.1 and atari_scores.HUMAN_SCORES["skiing"] == -4336.9


def test_keys_are_ale_rom_ids():
  roms = pytest.importorskip("ale_py.roms")
  assert set(atari_scores.ATARI_57) <= set(roms.get_all_rom_ids())


@pytest.mark.parametrize("game", ["pong", "breakout", "montezuma_revenge", "skiing", "video_pinball"])
def test_random_is_0_and_human_is_100(game):
  random, human = atari_scores.RANDOM_SCORES[game], atari_scores.HUMAN_SCORES[game]
  assert atari_scores.human_normalized(game, random) == pytest.approx(0.0, abs=1e-9)
  assert atari_scores.human_normalized(game, human) == pytest.approx(100.0)


def test_hand_worked_values():
  # Pong: random -20.7, human 14.6, so a score of -3.05 is halfway: 100 * 17.65 / 35.3 = 50.
  assert atari_scores.human_normalized("pong", -3.05) == pytest.approx(50.0)
  # Breakout: 100 * (59.3 - 1.7) / (30.5 - 1.7) = 200.
  assert atari_scores.human_normalized("breakout", 59.3) == pytest.approx(200.0)
  # Skiing (negative scores): 100 * (-10717.5 + 17098.1) / (-4336.9 + 17098.1) = 50.
  assert atari_scores.human_normalized("skiing", -10717.5) == pytest.approx(50.0)
  assert isinstance(atari_scores.human_normalized("pong", 0), float)


def test_array_input():
  scores = np.array([[-20.7, 14.6], [-3.05, 50.0]])
  got = atari_scores.human_normalized("Pong", scores)
  assert isinstance(got, np.ndarray) and got.shape == (2, 2) and got.dtype == np.float64
  np.testing.assert_allclose(got, [[0.0, 100.0], [50.0, 100 * 70.7 / 35.3]], atol=1e-9)
  np.testing.assert_allclose(atari_scores.human_normalized("breakout", [1.7, 30.5]), [0.0, 100.0], atol=1e-9)


@pytest.mark.parametrize(
  "name",
  [
    "space_invaders",
    "SpaceInvaders",
    "spaceinvaders",
    "SPACE_INVADERS",
    "atari/SpaceInvaders",
    "ALE/SpaceInvaders-v5",
  ],
)
def test_name_spellings(name):
  assert atari_scores.has_reference(name)
  assert atari_scores.human_normalized(name, 1668.7) == pytest.approx(100.0)


def test_montezuma_spellings():
  for name in ("montezuma_revenge", "MontezumaRevenge", "MontezumasRevenge", "montezumas_revenge"):
    assert atari_scores.human_normalized(name, 4753.3) == pytest.approx(100.0)


@pytest.mark.parametrize("game", ["Adventure", "Breakot", "tetris"])
def test_missing_game(game):
  assert not atari_scores.has_reference(game)
  with pytest.raises(KeyError) as error:
    atari_scores.human_normalized(game, 1.0)
  message = str(error.value)
  assert "\n" not in message and repr(game) in message and not message.startswith('"')
  assert isinstance(error.value, atari_scores.NoReferenceScoreError)
