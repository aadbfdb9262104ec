"""Human-normalised Atari scores: 100 * (score - random) / (human - random).

`RANDOM_SCORES` and `HUMAN_SCORES` are the standard Atari-57 reference table, copied
verbatim from DQN Zoo, `dqn_zoo/atari_data.py` (github.com/google-deepmind/dqn_zoo,
commit 359945d): a uniformly random agent's and a professional human tester's average
undiscounted game score, each episode starting with 1 to 30 no-ops and capped at 108,000
frames. That file cites no paper; the normalisation is Mnih et al. (2015)'s, and this
57-game table is the one later work reports against (Wang et al. 2016; Badia et al. 2020,
Agent57); for some games Mnih et al.'s original 49-game human scores differ from it.
Keys are ale-py ROM ids; every spelling `environments.atari.AtariEnvironment` accepts
works too ('Breakout', 'space_invaders', 'atari/Pong').
"""

from __future__ import annotations

import numpy as np

from environments import atari
from environments.atari import camel_case, game_key, unknown_game_message
from environments.errors import UnknownEnvironmentError

# Game: (random, human), as in DQN Zoo's `_ATARI_DATA`.
_ATARI_DATA = {
  "alien": (227.8, 7127.7),
  "amidar": (5.8, 1719.5),
  "assault": (222.4, 742.0),
  "asterix": (210.0, 8503.3),
  "asteroids": (719.1, 47388.7),
  "atlantis": (12850.0, 29028.1),
  "bank_heist": (14.2, 753.1),
  "battle_zone": (2360.0, 37187.5),
  "beam_rider": (363.9, 16926.5),
  "berzerk": (123.7, 2630.4),
  "bowling": (23.1, 160.7),
  "boxing": (0.1, 12.1),
  "breakout": (1.7, 30.5),
  "centipede": (2090.9, 12017.0),
  "chopper_command": (811.0, 7387.8),
  "crazy_climber": (10780.5, 35829.4),
  "defender": (2874.5, 18688.9),
  "demon_attack": (152.1, 1971.0),
  "double_dunk": (-18.6, -16.4),
  "enduro": (0.0, 860.5),
  "fishing_derby": (-91.7, -38.7),
  "freeway": (0.0, 29.6),
  "frostbite": (65.2, 4334.7),
  "gopher": (257.6, 2412.5),
  "gravitar": (173.0, 3351.4),
  "hero": (1027.0, 30826.4),
  "ice_hockey": (-11.2, 0.9),
  "jamesbond": (29.0, 302.8),
  "kangaroo": (52.0, 3035.0),
  "krull": (1598.0, 2665.5),
  "kung_fu_master": (258.5, 22736.3),
  "montezuma_revenge": (0.0, 4753.3),
  "ms_pacman": (307.3, 6951.6),
  "name_this_game": (2292.3, 8049.0),
  "phoenix": (761.4, 7242.6),
  "pitfall": (-229.4, 6463.7),
  "pong": (-20.7, 14.6),
  "private_eye": (24.9, 69571.3),
  "qbert": (163.9, 13455.0),
  "riverraid": (1338.5, 17118.0),
  "road_runner": (11.5, 7845.0),
  "robotank": (2.2, 11.9),
  "seaquest": (68.4, 42054.7),
  "skiing": (-17098.1, -4336.9),
  "solaris": (1236.3, 12326.7),
  "space_invaders": (148.0, 1668.7),
  "star_gunner": (664.0, 10250.0),
  "surround": (-10.0, 6.5),
  "tennis": (-23.8, -8.3),
  "time_pilot": (3568.0, 5229.2),
  "tutankham": (11.4, 167.6),
  "up_n_down": (533.4, 11693.2),
  "venture": (0.0, 1187.5),
  # DQN Zoo notes: the random score on Video Pinball sometimes exceeds the human one
  # under other evaluation methods.
  "video_pinball": (16256.9, 17667.9),
  "wizard_of_wor": (563.5, 4756.5),
  "yars_revenge": (3092.9, 54576.9),
  "zaxxon": (32.5, 9173.3),
}

RANDOM_SCORES: dict[str, float] = {game: scores[0] for game, scores in _ATARI_DATA.items()}
HUMAN_SCORES: dict[str, float] = {game: scores[1] for game, scores in _ATARI_DATA.items()}
ATARI_57 = tuple(sorted(_ATARI_DATA))
_GAME_BY_KEY = {game_key(game): game for game in ATARI_57}


class NoReferenceScoreError(KeyError):
  """A game without random and human reference scores (one-line message)."""

  def __str__(self) -> str:  # KeyError would print the message quoted.
    return str(self.args[0]) if self.args else ""


def _reference_game(game: str) -> str | None:
  return _GAME_BY_KEY.get(game_key(game))


def _is_rom(game: str) -> bool:
  """Whether ale-py bundles `game` (False without ale-py)."""
  try:
    atari.rom_id(game)
  except (ImportError, UnknownEnvironmentError):
    return False
  return True


def has_reference(game: str) -> bool:
  """Whether `game` (any accepted spelling) has random and human reference scores."""
  return _reference_game(game) is not None


def random_score(game: str) -> float | None:
  """The random-play reference score of `game` (any accepted spelling), or None."""
  ref = _reference_game(game)
  return None if ref is None else RANDOM_SCORES[ref]


def human_normalized(game: str, score: float | np.ndarray) -> float | np.ndarray:
  """100 * (score - random) / (human - random): 0 is random play, 100 a human's.

  Args:
    game: any spelling accepted by `environments.atari.AtariEnvironment`.
    score: a raw (unclipped) game score, or an array of them.

  Returns:
    a float for a scalar score, else a float64 array of the score's shape.

  Raises:
    NoReferenceScoreError: (a KeyError) for a game outside the Atari-57 table.
  """
  reference = _reference_game(game)
  if reference is None:
    if _is_rom(game):
      message = f"no reference scores for Atari game {game!r}"
    else:
      message = unknown_game_message(game, _GAME_BY_KEY, "no reference scores for unknown Atari game")
    listed = ", ".join(camel_case(g) for g in ATARI_57[:3])
    raise NoReferenceScoreError(f"{message} (the {len(ATARI_57)} games with scores: {listed}, ...)")
  random, human = RANDOM_SCORES[reference], HUMAN_SCORES[reference]
  normalized = 100.0 * (np.asarray(score, np.float64) - random) / (human - random)
  return float(normalized) if normalized.ndim == 0 else normalized
