"""Offline-RL datasets on disk, in Minari's format (minari 0.5.3, HDF5 storage).

A dataset with id `ns/name-vN` lives in `<root>/ns/name-vN/data/` (`metadata.json` and
`main_data.hdf5`), where root is Minari's local dataset root (`root()`), so `minari` and its CLI
see ours and we load theirs. `write` stores episodes with minari's own writer; what made the
dataset (our `metadata`, the env name this codebase registers it under) goes into the
dataset's metadata.json under the key "lpg". `load` reads local files only (never a
download) and flattens the episodes into transitions, vectorised per episode.

Observations are stored raw, never as JPEG: minari 0.5.3 JPEG-encodes uint8 arrays that look
like images (lossy) and decodes only spaces it takes for images (uint8, >= 32x32, bounds
0..255), so small images come back as JPEG bytes and frame stacks fail to decode. `write`
therefore writes the observations itself, in minari's layout for raw arrays, and gives uint8
observations the data's bounds, which keeps minari's reader off its JPEG path. `load` tells raw
from JPEG-encoded observations by their stored shape, so minari-made image datasets load too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import pathlib
import shutil
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import gymnasium
import h5py
import minari
import numpy as np
from gymnasium import spaces
from h5py import h5d, h5g, h5s
from minari.data_collector import EpisodeBuffer
from minari.dataset.minari_dataset import parse_dataset_id
from minari.dataset.minari_storage import MinariStorage, is_image_space
from minari.serialization import deserialize_space

_ROOT_ENV = "MINARI_DATASETS_PATH"
_METADATA_FILE = "metadata.json"
_MAIN_FILE = "main_data.hdf5"
_OURS = "lpg"  # Our entry in a dataset's data/metadata.json: {"env_name": ..., "metadata": {...}}.
_CHUNK_BYTES = 1 << 20  # HDF5 chunks of whole observations, up to 1 MiB (h5py's guess splits frames).
_FLAT = {"actions": np.int64, "rewards": np.float32, "terminations": bool, "truncations": bool}
_LOAD_ERRORS = (
  OSError,
  KeyError,
  ValueError,
  TypeError,
  IndexError,
  AttributeError,
  AssertionError,
  RuntimeError,
)


class DatasetError(ValueError):
  """A missing, corrupt or unusable dataset (one line)."""


class Episode(NamedTuple):
  """One episode of T steps, as `write` takes it.

  observations: [T+1, *obs_shape] s_0..s_T (s_T: the state the last step reached, before any reset).
  actions: int [T].  rewards: float32 [T].  terminations, truncations: bool [T].
  """

  observations: np.ndarray
  actions: np.ndarray
  rewards: np.ndarray
  terminations: np.ndarray
  truncations: np.ndarray


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
  """A dataset flattened to transitions, episode after episode, in file order.

  The arrays are read-only (the fingerprint identifies them).

  dataset_id: the Minari id (the directory's name when loaded by a path of an id-less dataset).
  path: the dataset's directory (holding data/, which holds metadata.json and main_data.hdf5).
  env_name: the env this codebase registers it under ('tabular_dense', 'gym/CartPole-v1'): the
    one `write` got, else 'gym/<env_spec.id>' for a Minari dataset with a Gymnasium env spec, else ''.
  observations: [N, *obs_shape] s_t (Discrete observation spaces as one-hot float32 [N, n]).
  next_observations: [N, *obs_shape] s_{t+1}, the state reached (at an episode's last step its
    final observation, not the next episode's first).
  actions: int32 [N] in [0, num_actions).  rewards: float32 [N].
  terminations, truncations: bool [N].
  metadata: how it was made (what `write` got as `metadata`); {} for foreign datasets.
  fingerprint: sha1 hex of the six arrays (dtype, shape, bytes) and num_actions.
  episode_lengths: int64 [num_episodes] transitions per episode (they sum to N).
  """

  dataset_id: str
  path: str
  env_name: str
  observations: np.ndarray
  next_observations: np.ndarray
  actions: np.ndarray
  rewards: np.ndarray
  terminations: np.ndarray
  truncations: np.ndarray
  num_actions: int
  num_episodes: int
  metadata: dict
  fingerprint: str
  episode_lengths: np.ndarray

  @property
  def num_transitions(self) -> int:
    return int(self.actions.shape[0])

  @property
  def observation_shape(self) -> tuple:
    return tuple(self.observations.shape[1:])

  def episode_returns(self) -> np.ndarray:
    """float64 [num_episodes] the undiscounted return of each episode."""
    episode = np.repeat(np.arange(self.num_episodes), self.episode_lengths)
    return np.bincount(episode, weights=self.rewards.astype(np.float64), minlength=self.num_episodes)

  def __repr__(self) -> str:
    return (
      f"Dataset({self.dataset_id!r}, env_name={self.env_name!r}, {self.num_episodes} episodes, "
      f"{self.num_transitions} transitions, observations {self.observations.dtype}"
      f"{list(self.observation_shape)}, {self.num_actions} actions, fingerprint={self.fingerprint[:12]})"
    )


def _one_line(text: Any) -> str:
  return " ".join(str(text).split())


def _resolve_root(root: str | None) -> str:
  path = root or os.environ.get(_ROOT_ENV) or os.path.join("~", ".minari", "datasets")
  return os.path.abspath(os.path.expanduser(path))


def root(root: str | None = None) -> str:
  """Minari's local dataset root: `root`, else $MINARI_DATASETS_PATH, else ~/.minari/datasets."""
  return _resolve_root(root)


def _fingerprint(arrays: Sequence[np.ndarray], num_actions: int) -> str:
  """sha1 hex of the arrays (dtype, shape and bytes, in order) and num_actions."""
  digest = hashlib.sha1()
  for array in arrays:
    array = np.ascontiguousarray(array)
    digest.update(f"{array.dtype.str}{array.shape};".encode())
    digest.update(array.reshape(-1).view(np.uint8).data if array.size else b"")
  digest.update(f"num_actions={int(num_actions)}".encode())
  return digest.hexdigest()


# Writing.


@contextlib.contextmanager
def _minari_root(path: str) -> Iterator[None]:
  """Points minari's writer (which reads the root from the environment) at `path`; not thread-safe."""
  old = os.environ.get(_ROOT_ENV)
  os.environ[_ROOT_ENV] = path
  try:
    yield
  finally:
    if old is None:
      os.environ.pop(_ROOT_ENV, None)
    else:
      os.environ[_ROOT_ENV] = old


def _checked_episodes(episodes: Sequence[Episode], num_actions: int) -> list[Episode]:
  """The episodes as arrays of the stored dtypes; DatasetError for malformed ones."""
  if not episodes:
    raise DatasetError("no episodes to write")
  out = []
  for i, ep in enumerate(episodes):
    obs = np.asarray(ep.observations)
    actions = np.asarray(ep.actions)
    steps = actions.shape[0] if actions.ndim == 1 else -1
    if steps < 1:
      raise DatasetError(f"episode {i}: actions must be a non-empty [T] array, got shape {actions.shape}")
    if obs.ndim < 1 or obs.shape[0] != steps + 1:
      raise DatasetError(f"episode {i}: observations must be [T+1={steps + 1}, ...], got {obs.shape}")
    if not (np.issubdtype(obs.dtype, np.integer) or np.issubdtype(obs.dtype, np.floating)):
      raise DatasetError(f"episode {i}: observations must be numeric, got {obs.dtype}")
    if not np.issubdtype(actions.dtype, np.integer):
      raise DatasetError(f"episode {i}: actions must be integers, got {actions.dtype}")
    if actions.min() < 0 or actions.max() >= num_actions:
      raise DatasetError(
        f"episode {i}: actions must lie in [0, {num_actions}), got {actions.min()}..{actions.max()}"
      )
    rest = [np.asarray(x) for x in (ep.rewards, ep.terminations, ep.truncations)]
    for name, x in zip(("rewards", "terminations", "truncations"), rest):
      if x.shape != (steps,):
        raise DatasetError(f"episode {i}: {name} must be [T={steps}], got shape {x.shape}")
    rewards, terminations, truncations = (
      rest[0].astype(np.float32),
      rest[1].astype(bool),
      rest[2].astype(bool),
    )
    if (terminations[:-1] | truncations[:-1]).any():
      raise DatasetError(f"episode {i}: terminated or truncated before its last step")
    out.append(Episode(obs, actions.astype(np.int64), rewards, terminations, truncations))
  shapes = {(ep.observations.shape[1:], ep.observations.dtype) for ep in out}
  if len(shapes) > 1:
    raise DatasetError(f"episodes differ in observation shape or dtype: {sorted(map(str, shapes))}")
  return out


def _observation_space(episodes: Sequence[Episode]) -> spaces.Box:
  """Box of the observations' shape and dtype: -inf..inf for floats, the data's range for integers
  (elementwise if the scalar range would make minari take the space for JPEG images)."""
  first = episodes[0].observations
  shape, dtype = first.shape[1:], first.dtype
  if np.issubdtype(dtype, np.floating):
    return spaces.Box(-np.inf, np.inf, shape, dtype)
  low = np.min([ep.observations.min(axis=0) for ep in episodes], axis=0)
  high = np.max([ep.observations.max(axis=0) for ep in episodes], axis=0)
  box = spaces.Box(low.min(), high.max(), shape, dtype)
  if is_image_space(box):
    box = spaces.Box(low, high, shape, dtype)
  if is_image_space(box):
    warnings.warn("every pixel spans 0..255: minari's own reader will misread these raw images", stacklevel=3)
  return box


def _make_env(gym_env_id: str, num_actions: int) -> gymnasium.Env:
  if gym_env_id.startswith("ALE/"):
    with contextlib.suppress(ImportError):  # Importing ale_py registers the ALE/ ids.
      import ale_py  # noqa: F401
  try:
    env = gymnasium.make(gym_env_id)
  except Exception as e:
    raise DatasetError(f"cannot make Gymnasium env {gym_env_id!r}: {_one_line(e)}") from None
  space = env.action_space
  if not isinstance(space, spaces.Discrete) or int(space.n) != num_actions:
    env.close()
    raise DatasetError(f"Gymnasium env {gym_env_id!r} has action space {space}, not Discrete({num_actions})")
  return env


def write(
  dataset_id: str,
  episodes: Sequence[Episode],
  num_actions: int,
  env_name: str,
  metadata: Mapping[str, Any],
  root: str | None = None,
  gym_env_id: str | None = None,
  overwrite: bool = False,
) -> str:
  """Writes a Minari dataset `dataset_id` (e.g. 'lpg/tabular_dense/mixed-v0') under root(root).

  Minari's writer (`minari.create_dataset_from_buffers`) stores the actions (int64), rewards
  (float32), terminations and truncations; the observations are stored raw as given, in minari's
  layout (see the module docstring). Observation space: Box of the observations' shape and dtype
  (-inf..inf for floats, the data's range for integers); action space Discrete(num_actions).

  Args:
    dataset_id: `(namespace/)name-v<version>`.
    episodes: the episodes, each with at least one step; only an episode's last step may be
      terminated or truncated.
    num_actions: the number of discrete actions.
    env_name: the env this codebase registers the data under (stored; `load` returns it).
    metadata: JSON-serialisable, how the data was made (behaviour, steps, seed, env_params...).
      Stored with env_name under "lpg" in the dataset's data/metadata.json.
    root: the Minari root (default: `root()`).
    gym_env_id: a Gymnasium id (e.g. 'CartPole-v1') whose env spec is stored, so that minari's
      `recover_environment` works; its action space must be Discrete(num_actions).
    overwrite: delete an existing dataset of that id first (else DatasetError).

  Returns:
    The dataset's directory (<root>/<dataset_id>).

  Not thread-safe: minari's writer takes the root from $MINARI_DATASETS_PATH, set while it runs.
  """
  try:
    parse_dataset_id(dataset_id)
  except (ValueError, TypeError):
    raise DatasetError(f"malformed dataset id {dataset_id!r}: use (namespace/)name-v<version>") from None
  num_actions = int(num_actions)
  if num_actions < 1:
    raise DatasetError(f"num_actions must be positive, got {num_actions}")
  episodes = _checked_episodes(episodes, num_actions)
  try:
    ours = json.loads(json.dumps({"env_name": env_name, "metadata": dict(metadata)}))
  except (TypeError, ValueError) as e:
    raise DatasetError(f"metadata must be JSON-serialisable: {_one_line(e)}") from None
  base = _resolve_root(root)
  path = os.path.join(base, dataset_id)
  if os.path.lexists(path):
    if not overwrite:
      raise DatasetError(
        f"dataset {dataset_id!r} already exists at {path}; pass overwrite=True to replace it"
      )
    shutil.rmtree(path)
  observation_space = _observation_space(episodes)
  env = _make_env(gym_env_id, num_actions) if gym_env_id else None
  behaviour = ours["metadata"].get("behaviour")
  # Observations None: minari's writer skips them, and they are written raw below.
  buffers = [
    EpisodeBuffer(
      actions=ep.actions, rewards=ep.rewards, terminations=ep.terminations, truncations=ep.truncations
    )
    for ep in episodes
  ]
  try:
    with _minari_root(base), warnings.catch_warnings():
      warnings.filterwarnings("ignore", category=UserWarning, module=r"minari(\.|$)")  # author etc. unset
      dataset = minari.create_dataset_from_buffers(
        dataset_id,
        buffers,
        env=env,
        observation_space=observation_space,
        action_space=spaces.Discrete(num_actions),
        algorithm_name=behaviour if isinstance(behaviour, str) else None,
        description=f"Offline dataset for {env_name or 'an unnamed environment'} (environments.offline_data)",
        data_format="hdf5",
      )
    storage = dataset.storage
    with h5py.File(storage.data_path / _MAIN_FILE, "a") as f:
      for i, ep in enumerate(episodes):
        obs = ep.observations
        frames = max(1, min(len(obs), _CHUNK_BYTES // max(1, obs[0].nbytes)))  # Whole frames per chunk.
        f[f"episode_{i}"].create_dataset(
          "observations", data=obs, chunks=(frames, *obs.shape[1:]), maxshape=(None, *obs.shape[1:])
        )
    storage.update_metadata({"dataset_size": storage.get_size(), _OURS: ours})
  except BaseException:
    shutil.rmtree(path, ignore_errors=True)
    raise
  finally:
    if env is not None:
      env.close()
  return path


# Loading.


def _locate(name_or_path: str, root: str | None) -> tuple[str, str, str]:
  """(dataset directory, its data directory, the id to report) of a Minari id or a path."""
  given = os.path.expanduser(name_or_path)
  if os.path.isdir(given):
    given = os.path.abspath(given)
    if os.path.isdir(os.path.join(given, "data")):
      return given, os.path.join(given, "data"), os.path.basename(given)
    if os.path.isfile(os.path.join(given, _METADATA_FILE)):  # The data directory itself.
      parent = os.path.dirname(given)
      return parent, given, os.path.basename(parent)
  base = _resolve_root(root)
  candidate = os.path.join(base, name_or_path)
  if not os.path.isabs(name_or_path) and os.path.isdir(os.path.join(candidate, "data")):
    return candidate, os.path.join(candidate, "data"), name_or_path
  raise DatasetError(
    f"no dataset {name_or_path!r}: looked for {os.path.join(candidate, 'data', _METADATA_FILE)} "
    f"(Minari root {base}) and for a dataset directory at {os.path.abspath(given)}; "
    "local datasets only, nothing is downloaded"
  )


def _spaces(raw: dict, data_dir: str) -> tuple[spaces.Space, spaces.Space]:
  if "observation_space" in raw and "action_space" in raw:
    return deserialize_space(raw["observation_space"]), deserialize_space(raw["action_space"])
  storage = MinariStorage.read(data_dir)  # Spaces from the env spec: makes the env.
  return storage.observation_space, storage.action_space


def _env_name(raw: dict) -> str:
  ours = raw.get(_OURS)
  if isinstance(ours, dict) and ours.get("env_name") and isinstance(ours["env_name"], str):
    return ours["env_name"]
  env_spec = raw.get("env_spec")
  if isinstance(env_spec, str):
    with contextlib.suppress(ValueError, TypeError, AttributeError):
      env_id = json.loads(env_spec).get("id")
      if isinstance(env_id, str) and env_id:
        return f"gym/{env_id}"
  return ""


def _decode_jpeg(frames: np.ndarray, shape: tuple) -> np.ndarray:
  """uint8 [K, *shape] from K JPEG-encoded frames (minari's image encoding)."""
  from PIL import Image

  out = np.empty((len(frames), *shape), np.uint8)
  for i, frame in enumerate(frames):
    image = Image.open(io.BytesIO(np.asarray(frame, np.uint8).tobytes()))
    out[i] = np.asarray(image, np.uint8).reshape(shape)
  return out


def _read(stored: h5d.DatasetID) -> np.ndarray:
  """A whole HDF5 dataset, through h5py's low-level API (a fifth of the high-level one's overhead)."""
  dtype = stored.dtype
  if dtype.kind not in "biuf":  # E.g. JPEG bytes of varying length.
    return h5py.Dataset(stored)[()]
  out = np.empty(stored.shape, dtype)
  if out.size:
    stored.read(h5s.ALL, h5s.ALL, out)
  return out


def _observations(stored: h5d.DatasetID, space: spaces.Space, steps: int) -> np.ndarray:
  """[T+1, *obs_shape] one episode's observations (one-hot float32 for Discrete spaces)."""
  if isinstance(space, spaces.Discrete):
    index = _read(stored).reshape(-1).astype(np.int64) - int(space.start)
    if index.shape != (steps + 1,) or index.min() < 0 or index.max() >= space.n:
      raise ValueError(f"observations do not fit {steps} steps of {space}")
    return np.eye(int(space.n), dtype=np.float32)[index]
  if stored.shape == (steps + 1, *space.shape):
    return _read(stored)
  if space.dtype == np.uint8 and stored.shape[:1] == (steps + 1,):  # Minari's JPEG-encoded frames.
    return _decode_jpeg(_read(stored), space.shape)
  raise ValueError(f"observations of shape {stored.shape} do not fit {steps} steps of {space}")


def _read_hdf5(file_path: pathlib.Path, num_episodes: int, obs_space: spaces.Space) -> tuple:
  """(observations, next_observations, actions, rewards, terminations, truncations, episode_lengths)
  of a main_data.hdf5 file, one read per array per episode."""
  if isinstance(obs_space, spaces.Discrete):
    obs_shape, obs_dtype = (int(obs_space.n),), np.dtype(np.float32)
  else:
    obs_shape, obs_dtype = tuple(obs_space.shape), obs_space.dtype
  with h5py.File(file_path, "r") as f:
    groups = [h5g.open(f.id, f"episode_{i}".encode()) for i in range(num_episodes)]
    stored_rewards = [h5d.open(g, b"rewards") for g in groups]
    lengths = np.array([r.shape[0] if r.shape else 1 for r in stored_rewards], np.int64)
    total = int(lengths.sum())
    observations = np.empty((total, *obs_shape), obs_dtype)
    next_observations = np.empty((total, *obs_shape), obs_dtype)
    flat = {name: np.empty(total, dtype) for name, dtype in _FLAT.items()}
    start = 0
    for g, stored_reward, steps in zip(groups, stored_rewards, lengths.tolist()):
      end = start + steps
      obs = _observations(h5d.open(g, b"observations"), obs_space, steps)
      observations[start:end] = obs[:-1]
      next_observations[start:end] = obs[1:]
      for name, out in flat.items():
        array = _read(stored_reward if name == "rewards" else h5d.open(g, name.encode()))
        if array.size != steps:
          raise ValueError(f"{name} hold {array.size} values for {steps} steps")
        out[start:end] = array.reshape(steps)
      start = end
  return observations, next_observations, *flat.values(), lengths


def load(name_or_path: str, root: str | None = None) -> Dataset:
  """A dataset by Minari id in root(root) (e.g. 'lpg/tabular_dense/mixed-v0'), or by the path of a
  dataset directory (holding data/metadata.json) or of its data/ directory; local files only.

  Raises:
    DatasetError: (one line) not found (saying where it looked); unreadable or corrupt files;
      non-Discrete actions; observations neither Box nor Discrete; no transitions.
  """
  dataset_dir, data_dir, shown_id = _locate(name_or_path, root)
  try:
    raw = MinariStorage.read_raw_metadata(data_dir)
    if not isinstance(raw, dict):
      raise ValueError(f"{_METADATA_FILE} holds no JSON object")
    shown_id = raw.get("dataset_id") or shown_id
    obs_space, act_space = _spaces(raw, data_dir)
  except (*_LOAD_ERRORS, json.JSONDecodeError, gymnasium.error.Error) as e:
    raise DatasetError(f"dataset {shown_id!r} ({data_dir}): unreadable metadata: {_one_line(e)}") from None
  if not isinstance(act_space, spaces.Discrete):
    kind = "continuous" if isinstance(act_space, spaces.Box) else "non-discrete"
    raise DatasetError(
      f"dataset {shown_id!r} has {kind} actions ({type(act_space).__name__}); CRR here needs discrete actions"
    )
  if not isinstance(obs_space, spaces.Box | spaces.Discrete):
    raise DatasetError(
      f"dataset {shown_id!r} has {type(obs_space).__name__} observations, which do not flatten to one "
      "array; only Box and Discrete observation spaces are supported"
    )
  if raw.get("data_format", "hdf5") != "hdf5":
    raise DatasetError(f"dataset {shown_id!r} is stored as {raw['data_format']}; only hdf5 is supported here")
  try:
    num_episodes = int(raw.get("total_episodes", 0))
    arrays = (
      _read_hdf5(pathlib.Path(data_dir, _MAIN_FILE), num_episodes, obs_space) if num_episodes > 0 else None
    )
  except (*_LOAD_ERRORS, ImportError) as e:
    raise DatasetError(
      f"dataset {shown_id!r} ({data_dir}): unreadable or corrupt data: {_one_line(e)}"
    ) from None
  if arrays is None or arrays[-1].sum() == 0:
    raise DatasetError(f"dataset {shown_id!r} ({data_dir}) is empty: it holds no transitions")
  observations, next_observations, actions, rewards, terminations, truncations, lengths = arrays
  num_actions = int(act_space.n)
  actions = actions - int(act_space.start)
  if actions.min() < 0 or actions.max() >= num_actions:
    raise DatasetError(f"dataset {shown_id!r}: actions outside {act_space}")
  actions = actions.astype(np.int32)
  rewards = rewards.astype(np.float32, copy=False)
  terminations = terminations.astype(bool, copy=False)
  truncations = truncations.astype(bool, copy=False)
  data = (observations, next_observations, actions, rewards, terminations, truncations)
  for array in (*data, lengths):
    array.setflags(write=False)
  ours = raw.get(_OURS)
  metadata = ours.get("metadata") if isinstance(ours, dict) else None
  return Dataset(
    dataset_id=str(shown_id),
    path=dataset_dir,
    env_name=_env_name(raw),
    observations=observations,
    next_observations=next_observations,
    actions=actions,
    rewards=rewards,
    terminations=terminations,
    truncations=truncations,
    num_actions=num_actions,
    num_episodes=len(lengths),
    metadata=metadata if isinstance(metadata, dict) else {},
    fingerprint=_fingerprint(data, num_actions),
    episode_lengths=lengths,
  )


def check_matches(dataset: Dataset, env_name: str, observation_shape: tuple, num_actions: int) -> None:
  """DatasetError (one line) if the dataset does not fit the environment `env_name`: another recorded
  env name, observations of another shape [*obs_shape], another number of actions."""
  problems = []
  if dataset.env_name and dataset.env_name != env_name:
    problems.append(f"it was recorded on {dataset.env_name}")
  if tuple(dataset.observation_shape) != tuple(observation_shape):
    problems.append(
      f"its observations are {dataset.observations.dtype}{list(dataset.observation_shape)}, "
      f"the environment's {list(observation_shape)}"
    )
  if dataset.num_actions != num_actions:
    problems.append(f"it has {dataset.num_actions} actions, the environment {num_actions}")
  if problems:
    raise DatasetError(f"dataset {dataset.dataset_id!r} does not fit {env_name}: {'; '.join(problems)}")


def list_local(root: str | None = None) -> list[str]:
  """Sorted ids of the datasets in root(root) (directories holding data/metadata.json); [] if none."""
  base = _resolve_root(root)
  found = []
  for dirpath, dirnames, _ in os.walk(base):
    if dirpath != base and os.path.isfile(os.path.join(dirpath, "data", _METADATA_FILE)):
      found.append(pathlib.Path(os.path.relpath(dirpath, base)).as_posix())
      dirnames.clear()
    else:
      dirnames[:] = [d for d in dirnames if not d.startswith(".")]
  return sorted(found)
