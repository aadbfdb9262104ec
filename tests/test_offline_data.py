"""environments.offline_data: Minari datasets written and read back, foreign ones read, errors."""

import json
import os
import warnings

import gymnasium as gym
import h5py
import minari
import numpy as np
import pytest
from minari.data_collector import EpisodeBuffer

from environments import offline_data
from environments.offline_data import DatasetError, Episode


@pytest.fixture(autouse=True)
def _minari_root(tmp_path, monkeypatch):
  """Keeps every write (ours and minari's own) away from ~/.minari."""
  monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "default_root"))


def _episode(rng, steps, obs_shape, dtype, num_actions=3, terminated=True):
  if dtype == np.uint8:
    obs = rng.integers(0, 256, (steps + 1, *obs_shape)).astype(np.uint8)
  else:
    obs = rng.normal(size=(steps + 1, *obs_shape)).astype(dtype)
  end = np.zeros(steps, bool)
  end[-1] = True
  return Episode(
    observations=obs,
    actions=rng.integers(0, num_actions, steps),
    rewards=rng.normal(size=steps).astype(np.float32),
    terminations=end if terminated else np.zeros(steps, bool),
    truncations=np.zeros(steps, bool) if terminated else end,
  )


def _episodes(obs_shape, dtype, seed=0):
  rng = np.random.default_rng(seed)
  return [
    _episode(rng, 5, obs_shape, dtype, terminated=True),
    _episode(rng, 3, obs_shape, dtype, terminated=False),
    _episode(rng, 1, obs_shape, dtype, terminated=True),
  ]


METADATA = {"behaviour": "mixed", "steps": 9, "seed": 0, "average_return": 1.5, "env_params": [[1, 2], [3]]}


def _assert_one_line_error(excinfo, *fragments):
  message = str(excinfo.value)
  assert "\n" not in message, message
  for fragment in fragments:
    assert fragment in message, message


@pytest.mark.parametrize(
  "obs_shape, dtype",
  [((4,), np.float32), ((8, 8, 3), np.uint8), ((40, 40, 4), np.uint8), ((36, 36), np.uint8)],
  ids=["vector", "small_image", "frame_stack", "gray_image"],
)
def test_round_trip(tmp_path, obs_shape, dtype):
  episodes = _episodes(obs_shape, dtype)
  path = offline_data.write("lpg/test_env/mixed-v0", episodes, 3, "test_env", METADATA, root=str(tmp_path))
  assert path == os.path.join(str(tmp_path), "lpg/test_env/mixed-v0")
  data = offline_data.load("lpg/test_env/mixed-v0", root=str(tmp_path))

  assert data.dataset_id == "lpg/test_env/mixed-v0"
  assert data.path == path
  assert data.env_name == "test_env"
  assert data.metadata == METADATA
  assert (data.num_episodes, data.num_transitions, data.num_actions) == (3, 9, 3)
  assert data.observation_shape == obs_shape
  np.testing.assert_array_equal(data.episode_lengths, [5, 3, 1])
  assert data.observations.dtype == dtype and data.next_observations.dtype == dtype
  np.testing.assert_array_equal(data.observations, np.concatenate([ep.observations[:-1] for ep in episodes]))
  # Each episode's last transition reaches its own final observation, not the next episode's first.
  np.testing.assert_array_equal(
    data.next_observations, np.concatenate([ep.observations[1:] for ep in episodes])
  )
  np.testing.assert_array_equal(data.next_observations[[4, 7, 8]], [ep.observations[-1] for ep in episodes])
  assert data.actions.dtype == np.int32 and data.rewards.dtype == np.float32
  np.testing.assert_array_equal(data.actions, np.concatenate([ep.actions for ep in episodes]))
  np.testing.assert_array_equal(data.rewards, np.concatenate([ep.rewards for ep in episodes]))
  np.testing.assert_array_equal(data.terminations, [0, 0, 0, 0, 1, 0, 0, 0, 1])
  np.testing.assert_array_equal(data.truncations, [0, 0, 0, 0, 0, 0, 0, 1, 0])
  assert data.terminations.dtype == bool and data.truncations.dtype == bool
  np.testing.assert_allclose(data.episode_returns(), [ep.rewards.sum() for ep in episodes], rtol=1e-6)
  assert not data.observations.flags.writeable

  # Minari's own reader sees the same data (observations raw, not JPEG).
  episode = next(iter(minari.MinariDataset(os.path.join(path, "data")).iterate_episodes()))
  np.testing.assert_array_equal(episode.observations, episodes[0].observations)
  np.testing.assert_array_equal(episode.terminations, episodes[0].terminations)


def test_load_by_path_and_id_agree_and_fingerprints(tmp_path):
  root = str(tmp_path)
  path = offline_data.write("ns/a-v0", _episodes((4,), np.float32), 3, "tabular_dense", METADATA, root=root)
  by_id = offline_data.load("ns/a-v0", root=root)
  by_path = offline_data.load(path)
  by_data_dir = offline_data.load(os.path.join(path, "data"))
  assert by_id.fingerprint == by_path.fingerprint == by_data_dir.fingerprint
  assert by_path.dataset_id == "ns/a-v0" and by_path.path == path == by_data_dir.path
  assert len(by_id.fingerprint) == 40

  other = _episodes((4,), np.float32)
  other[1] = other[1]._replace(rewards=other[1].rewards + 1)
  offline_data.write("ns/b-v0", other, 3, "tabular_dense", METADATA, root=root)
  assert offline_data.load("ns/b-v0", root=root).fingerprint != by_id.fingerprint
  offline_data.write("ns/c-v0", _episodes((4,), np.float32), 4, "tabular_dense", METADATA, root=root)
  assert offline_data.load("ns/c-v0", root=root).fingerprint != by_id.fingerprint  # num_actions counts.

  assert offline_data.list_local(root) == ["ns/a-v0", "ns/b-v0", "ns/c-v0"]
  assert offline_data.list_local(str(tmp_path / "nothing_here")) == []


def test_root_defaults(tmp_path, monkeypatch):
  assert offline_data.root(str(tmp_path)) == str(tmp_path)
  assert offline_data.root() == str(tmp_path / "default_root")
  monkeypatch.delenv("MINARI_DATASETS_PATH")
  assert offline_data.root() == os.path.expanduser(os.path.join("~", ".minari", "datasets"))


def test_env_root_is_used_and_restored(tmp_path):
  offline_data.write("ns/a-v0", _episodes((4,), np.float32), 3, "x", {}, root=str(tmp_path / "r"))
  assert os.environ["MINARI_DATASETS_PATH"] == str(tmp_path / "default_root")
  assert offline_data.list_local() == []
  assert offline_data.load(str(tmp_path / "r" / "ns" / "a-v0")).dataset_id == "ns/a-v0"


def test_gym_env_spec_is_recoverable(tmp_path):
  rng = np.random.default_rng(0)
  episodes = [_episode(rng, 4, (4,), np.float32, num_actions=2)]
  path = offline_data.write(
    "gym/cartpole/random-v0", episodes, 2, "gym/CartPole-v1", {}, root=str(tmp_path), gym_env_id="CartPole-v1"
  )
  env = minari.MinariDataset(os.path.join(path, "data")).recover_environment()
  assert env.spec.id == "CartPole-v1"
  env.close()
  assert offline_data.load(path).env_name == "gym/CartPole-v1"
  with pytest.raises(DatasetError) as excinfo:
    offline_data.write(
      "gym/cartpole/bad-v0", episodes, 3, "gym/CartPole-v1", {}, root=str(tmp_path), gym_env_id="CartPole-v1"
    )
  _assert_one_line_error(excinfo, "Discrete(3)")
  assert not os.path.exists(tmp_path / "gym" / "cartpole" / "bad-v0")


def _minari_dataset(dataset_id, observation_space, action_space, observations, actions, env=None):
  """A dataset written by minari itself (a 'foreign' one), in the MINARI_DATASETS_PATH root."""
  steps = len(actions)
  buffer = EpisodeBuffer(
    observations=observations,
    actions=actions,
    rewards=np.ones(steps),
    terminations=np.eye(steps, dtype=bool)[-1],
    truncations=np.zeros(steps, bool),
  )
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    minari.create_dataset_from_buffers(
      dataset_id, [buffer], env=env, observation_space=observation_space, action_space=action_space
    )
  return os.path.join(os.environ["MINARI_DATASETS_PATH"], dataset_id)


def test_foreign_discrete_observations_load_one_hot():
  _minari_dataset(
    "frozen/lake-v0",
    gym.spaces.Discrete(5),
    gym.spaces.Discrete(4),
    observations=np.array([0, 1, 4, 2]),
    actions=np.array([1, 2, 3]),
    env="FrozenLake-v1",
  )
  data = offline_data.load("frozen/lake-v0")
  assert data.observations.dtype == np.float32 and data.observation_shape == (5,)
  np.testing.assert_array_equal(data.observations, np.eye(5)[[0, 1, 4]])
  np.testing.assert_array_equal(data.next_observations, np.eye(5)[[1, 4, 2]])
  assert (data.env_name, data.metadata, data.num_actions) == ("gym/FrozenLake-v1", {}, 4)
  np.testing.assert_array_equal(data.episode_returns(), [3.0])


def test_foreign_jpeg_images_load():
  rng = np.random.default_rng(0)
  frames = rng.integers(0, 256, (3, 32, 32, 3)).astype(np.uint8)
  _minari_dataset(
    "atari/like-v0",
    gym.spaces.Box(0, 255, (32, 32, 3), np.uint8),
    gym.spaces.Discrete(2),
    frames,
    np.array([0, 1]),
  )
  data = offline_data.load("atari/like-v0")
  assert data.observations.dtype == np.uint8 and data.observation_shape == (32, 32, 3)
  assert data.env_name == ""
  # Minari stores them as JPEG (lossy): what minari's own reader returns.
  episode = next(iter(minari.load_dataset("atari/like-v0").iterate_episodes()))
  np.testing.assert_array_equal(data.next_observations, episode.observations[1:])


def test_missing_dataset(tmp_path):
  with pytest.raises(DatasetError) as excinfo:
    offline_data.load("lpg/nothing/here-v0", root=str(tmp_path))
  _assert_one_line_error(excinfo, str(tmp_path / "lpg/nothing/here-v0"), "nothing is downloaded")
  with pytest.raises(DatasetError):
    offline_data.load(str(tmp_path / "not_a_dataset"))


@pytest.mark.parametrize("damage", ["garbage", "truncated", "metadata"])
def test_corrupt_files(tmp_path, damage):
  path = offline_data.write("ns/a-v0", _episodes((4,), np.float32), 3, "x", {}, root=str(tmp_path))
  main = os.path.join(path, "data", "main_data.hdf5")
  if damage == "garbage":
    with open(main, "wb") as f:
      f.write(b"not an hdf5 file" * 100)
  elif damage == "truncated":
    size = os.path.getsize(main)
    with open(main, "r+b") as f:
      f.truncate(size // 2)
  else:
    with open(os.path.join(path, "data", "metadata.json"), "w") as f:
      f.write('{"total_episodes": 3, "observation_sp')
  with pytest.raises(DatasetError) as excinfo:
    offline_data.load("ns/a-v0", root=str(tmp_path))
  _assert_one_line_error(excinfo, "ns/a-v0")


def test_corrupt_episode_shapes(tmp_path):
  path = offline_data.write("ns/a-v0", _episodes((4,), np.float32), 3, "x", {}, root=str(tmp_path))
  with h5py.File(os.path.join(path, "data", "main_data.hdf5"), "a") as f:
    del f["episode_1/actions"]
    f["episode_1"].create_dataset("actions", data=np.zeros(7, np.int64))
  with pytest.raises(DatasetError) as excinfo:
    offline_data.load(path)
  _assert_one_line_error(excinfo, "actions hold 7 values for 3 steps")


def test_continuous_actions_refused():
  path = _minari_dataset(
    "pendulum/like-v0",
    gym.spaces.Box(-1, 1, (3,), np.float32),
    gym.spaces.Box(-2, 2, (1,), np.float32),
    observations=np.zeros((3, 3), np.float32),
    actions=np.zeros((2, 1), np.float32),
  )
  with pytest.raises(DatasetError) as excinfo:
    offline_data.load(path)
  _assert_one_line_error(excinfo, "has continuous actions (Box); CRR here needs discrete actions")


def test_dict_observations_refused():
  space = gym.spaces.Dict({"a": gym.spaces.Box(-1, 1, (2,), np.float32)})
  path = _minari_dataset(
    "dict/obs-v0", space, gym.spaces.Discrete(2), {"a": np.zeros((3, 2), np.float32)}, np.array([0, 1])
  )
  with pytest.raises(DatasetError) as excinfo:
    offline_data.load(path)
  _assert_one_line_error(excinfo, "Dict observations")


def test_empty_dataset_refused(tmp_path):
  path = offline_data.write("ns/a-v0", _episodes((4,), np.float32), 3, "x", {}, root=str(tmp_path))
  metadata_file = os.path.join(path, "data", "metadata.json")
  with open(metadata_file) as f:
    raw = json.load(f)
  raw["total_episodes"] = 0
  with open(metadata_file, "w") as f:
    json.dump(raw, f)
  with pytest.raises(DatasetError) as excinfo:
    offline_data.load(path)
  _assert_one_line_error(excinfo, "empty")


def test_existing_id_needs_overwrite(tmp_path):
  root = str(tmp_path)
  offline_data.write("ns/a-v0", _episodes((4,), np.float32, seed=0), 3, "x", {"v": 1}, root=root)
  with pytest.raises(DatasetError) as excinfo:
    offline_data.write("ns/a-v0", _episodes((4,), np.float32, seed=1), 3, "x", {"v": 2}, root=root)
  _assert_one_line_error(excinfo, "already exists", "overwrite")
  assert offline_data.load("ns/a-v0", root=root).metadata == {"v": 1}
  offline_data.write(
    "ns/a-v0", _episodes((4,), np.float32, seed=1), 3, "x", {"v": 2}, root=root, overwrite=True
  )
  data = offline_data.load("ns/a-v0", root=root)
  assert data.metadata == {"v": 2}
  np.testing.assert_array_equal(data.rewards[:5], _episodes((4,), np.float32, seed=1)[0].rewards)


@pytest.mark.parametrize(
  "bad, fragment",
  [
    ({"metadata": {"x": object()}}, "JSON"),
    ({"dataset_id": "no_version"}, "malformed dataset id"),
    ({"episodes": []}, "no episodes"),
    ({"num_actions": 2}, "actions must lie in [0, 2)"),
    ({"end_early": True}, "before its last step"),
  ],
)
def test_write_refuses_bad_input(tmp_path, bad, fragment):
  episodes = _episodes((4,), np.float32)
  if bad.get("end_early"):
    episodes[0].terminations[1] = True
  args = dict(
    dataset_id="ns/a-v0", episodes=episodes, num_actions=3, env_name="x", metadata={}, root=str(tmp_path)
  )
  args.update({k: v for k, v in bad.items() if k in args})
  with pytest.raises(DatasetError) as excinfo:
    offline_data.write(**args)
  _assert_one_line_error(excinfo, fragment)
  assert offline_data.list_local(str(tmp_path)) == []


def test_check_matches(tmp_path):
  offline_data.write("ns/a-v0", _episodes((4,), np.float32), 3, "tabular_dense", {}, root=str(tmp_path))
  data = offline_data.load("ns/a-v0", root=str(tmp_path))
  offline_data.check_matches(data, "tabular_dense", (4,), 3)
  for args, fragment in [
    (("tabular_dense", (5,), 3), "float32[4], the environment's [5]"),
    (("tabular_dense", (4,), 2), "3 actions, the environment 2"),
    (("tabular_sparse", (4,), 3), "recorded on tabular_dense"),
  ]:
    with pytest.raises(DatasetError) as excinfo:
      offline_data.check_matches(data, *args)
    _assert_one_line_error(excinfo, "ns/a-v0", fragment)


def test_a_50k_transition_dataset_loads_whole(tmp_path):
  rng = np.random.default_rng(0)
  episodes = [_episode(rng, 250, (4,), np.float32) for _ in range(200)]
  offline_data.write("ns/big-v0", episodes, 3, "x", {}, root=str(tmp_path))
  data = offline_data.load("ns/big-v0", root=str(tmp_path))  # Speed: benchmarks, not here.
  assert data.num_transitions == 50_000 and data.num_episodes == 200
  np.testing.assert_array_equal(data.next_observations[-1], episodes[-1].observations[-1])
