"""Atomic, pickle-free checkpoints of JAX/numpy pytrees.

A checkpoint is one `.npz` file. Each leaf is an array named `"tree" + keystr(path)`
(e.g. `tree['params']['linear']['w']`, `tree['opt_state'][0].mu['linear']['b']`), and
the entry `__checkpoint__` holds UTF-8 JSON (as a uint8 array) with `format_version`,
the user's metadata and a description of every leaf (name, path, shape, dtype).

Leaves may be jax/numpy arrays, numpy scalars, python bool/int/float, and typed PRNG key
arrays (`jax.random.key`, stored as their key data plus the impl name). Containers are
anything JAX flattens: dicts, lists, tuples, NamedTuples (optax states), chex dataclasses.
Files are read with `allow_pickle=False`; every read failure is a `CheckpointError`.

Metadata goes through JSON: tuples come back as lists and non-string dict keys as strings.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from collections.abc import Mapping
from typing import Any

import jax
import ml_dtypes
import numpy as np

FORMAT_VERSION = 1

_HEADER = "__checkpoint__"
_ROOT = "tree"
_ZIP_MAGIC = b"PK\x03\x04"
_PYTHON_SCALARS = (bool, int, float, complex)


class CheckpointError(ValueError):
  """A checkpoint that cannot be written, read or restored into the given template."""


# --------------------------------------------------------------------------- saving


def _path_entry(entry: Any) -> list[Any]:
  """A JSON form of one path entry: [kind, key] with kind in key/attr/index."""
  if isinstance(entry, jax.tree_util.DictKey):
    key = entry.key
    return ["key", key if isinstance(key, str | int) and not isinstance(key, bool) else str(key)]
  if isinstance(entry, jax.tree_util.GetAttrKey):
    return ["attr", entry.name]
  if isinstance(entry, jax.tree_util.SequenceKey):
    return ["index", entry.idx]
  if isinstance(entry, jax.tree_util.FlattenedIndexKey):
    return ["index", entry.key]
  return ["key", str(entry)]


def _is_key_array(x: Any) -> bool:
  dtype = getattr(x, "dtype", None)
  return dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


def _key_impl_name(x: Any) -> str:
  """The PRNG impl name ("threefry2x32", "rbg"...) of a key array or a ShapeDtypeStruct of keys."""
  if isinstance(x, jax.Array):
    return str(jax.random.key_impl(x))
  return str(x.dtype._impl.name)  # No public accessor for abstract keys.


def _leaf_to_array(name: str, leaf: Any) -> tuple[np.ndarray, dict[str, Any]]:
  """The array stored for a leaf and its JSON description."""
  info: dict[str, Any] = {}
  try:
    if _is_key_array(leaf):
      info["key_impl"] = _key_impl_name(leaf)
      info["key_shape"] = list(leaf.shape)
      leaf = jax.random.key_data(leaf)
    arr = np.asarray(jax.device_get(leaf))
  except Exception as e:  # e.g. a tracer, or an object numpy cannot convert.
    raise CheckpointError(f"cannot save leaf {name} of type {type(leaf).__name__}: {e}") from e
  if arr.dtype.hasobject:
    raise CheckpointError(f"cannot save leaf {name} of type {type(leaf).__name__}: it is not a numeric array")
  info["shape"] = list(arr.shape)
  info["dtype"] = arr.dtype.name if arr.dtype.isnative and arr.dtype.names is None else arr.dtype.str
  if arr.dtype.type.__module__ == "ml_dtypes":  # bfloat16, float8, int4...: store the raw bits.
    arr = arr.view(np.dtype(f"u{arr.dtype.itemsize}"))
    info["stored_dtype"] = arr.dtype.name
  return arr, info


def _encode_header(tree: Any, metadata: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], np.ndarray]:
  if not isinstance(metadata, Mapping):
    raise CheckpointError(f"metadata must be a dict, got {type(metadata).__name__}")
  leaves_with_path, treedef = jax.tree_util.tree_flatten_with_path(tree)
  arrays: dict[str, np.ndarray] = {}
  leaves = []
  for path, leaf in leaves_with_path:
    name = _ROOT + jax.tree_util.keystr(path)
    if name in arrays:
      raise CheckpointError(f"two leaves share the name {name}")
    arr, info = _leaf_to_array(name, leaf)
    arrays[name] = arr
    leaves.append({"name": name, "path": [_path_entry(e) for e in path], **info})
  header = {
    "format_version": FORMAT_VERSION,
    "metadata": dict(metadata),
    "treedef": str(treedef),
    "leaves": leaves,
  }
  try:
    text = json.dumps(header)
  except (TypeError, ValueError) as e:
    raise CheckpointError(f"metadata is not JSON-serialisable: {e}") from e
  return arrays, np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def _fsync_dir(directory: str) -> None:
  """Makes a rename in `directory` durable (best effort: not all systems allow it)."""
  try:
    fd = os.open(directory, os.O_RDONLY)
  except OSError:
    return
  try:
    os.fsync(fd)
  except OSError:
    pass
  finally:
    os.close(fd)


def save(path: str | os.PathLike[str], tree: Any, metadata: Mapping[str, Any] | None = None) -> None:
  """Writes `tree` and JSON `metadata` to `path` atomically.

  The file is written to a temporary file in the same directory, fsynced and renamed
  over `path`, so `path` holds either the old or the new checkpoint, never a partial one.
  """
  path = os.fspath(path)
  arrays, header = _encode_header(tree, {} if metadata is None else metadata)
  directory = os.path.dirname(os.path.abspath(path))
  tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
  fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
  try:
    with os.fdopen(fd, "wb") as f:
      np.savez(f, allow_pickle=False, **{_HEADER: header}, **arrays)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(OSError):
      os.unlink(tmp)
    raise
  _fsync_dir(directory)


# --------------------------------------------------------------------------- loading


def _describe(info: Mapping[str, Any]) -> str:
  if "key_impl" in info:
    return f"shape {tuple(info['key_shape'])} dtype key<{info['key_impl']}>"
  return f"shape {tuple(info['shape'])} dtype {info['dtype']}"


class _Reader:
  """An open checkpoint whose failures all become CheckpointError."""

  def __init__(self, path: str | os.PathLike[str]):
    self.path = os.fspath(path)
    if not os.path.exists(self.path):
      raise CheckpointError(f"{self.path}: no such checkpoint file")
    if os.path.isdir(self.path):
      raise CheckpointError(f"{self.path}: is a directory, not a checkpoint file")
    try:
      with open(self.path, "rb") as f:
        magic = f.read(4)
    except OSError as e:
      raise CheckpointError(f"{self.path}: cannot read checkpoint ({_reason(e)})") from e
    if magic != _ZIP_MAGIC:
      raise CheckpointError(f"{self.path}: not a valid checkpoint file (not an .npz archive)")
    try:
      self.npz = np.load(self.path, allow_pickle=False)
    except Exception as e:  # zipfile, OSError, numpy ValueError...: anything is a bad file.
      raise CheckpointError(f"{self.path}: truncated or corrupt checkpoint file ({_reason(e)})") from e

  def close(self) -> None:
    with contextlib.suppress(Exception):
      self.npz.close()

  def __enter__(self) -> _Reader:
    return self

  def __exit__(self, *exc: object) -> None:
    self.close()

  def array(self, name: str) -> np.ndarray:
    if name not in self.npz.files:
      raise CheckpointError(f"{self.path}: corrupt checkpoint, missing array {name}")
    try:
      return self.npz[name]
    except Exception as e:
      raise CheckpointError(f"{self.path}: corrupt checkpoint, cannot read {name} ({_reason(e)})") from e

  def header(self) -> dict[str, Any]:
    if _HEADER not in self.npz.files:
      raise CheckpointError(f"{self.path}: not a checkpoint (no {_HEADER} metadata entry)")
    raw = self.array(_HEADER)
    try:
      header = json.loads(raw.tobytes().decode("utf-8"))
    except Exception as e:
      raise CheckpointError(f"{self.path}: corrupt checkpoint metadata ({_reason(e)})") from e
    if not isinstance(header, dict) or "format_version" not in header:
      raise CheckpointError(f"{self.path}: corrupt checkpoint metadata (no format_version)")
    version = header["format_version"]
    if version != FORMAT_VERSION:
      raise CheckpointError(
        f"{self.path}: checkpoint format version {version}, this code reads version {FORMAT_VERSION}"
      )
    if not isinstance(header.get("metadata"), dict) or not isinstance(header.get("leaves"), list):
      raise CheckpointError(f"{self.path}: corrupt checkpoint metadata (no metadata or leaf list)")
    for info in header["leaves"]:
      if not _valid_leaf_info(info):
        raise CheckpointError(f"{self.path}: corrupt checkpoint metadata (bad leaf description {info!r:.80})")
    return header

  def leaf(self, info: Mapping[str, Any]) -> Any:
    """The leaf described by `info`: a numpy array, or a jax typed key array."""
    name = info["name"]
    arr = self.array(name)
    stored = info.get("stored_dtype", info["dtype"])
    if list(arr.shape) != list(info["shape"]) or _dtype_name(arr.dtype) != stored:
      raise CheckpointError(
        f"{self.path}: corrupt checkpoint, {name} has shape {arr.shape} dtype {_dtype_name(arr.dtype)}, "
        f"expected shape {tuple(info['shape'])} dtype {stored}"
      )
    try:
      if "stored_dtype" in info:
        arr = arr.view(np.dtype(getattr(ml_dtypes, info["dtype"])))
      if "key_impl" in info:
        return jax.random.wrap_key_data(arr, impl=info["key_impl"])
    except Exception as e:
      raise CheckpointError(f"{self.path}: cannot restore {name} ({_reason(e)})") from e
    return arr


def _is_int_list(x: Any) -> bool:
  return isinstance(x, list) and all(isinstance(i, int) for i in x)


def _valid_leaf_info(info: Any) -> bool:
  """Whether a leaf description read from a file has the fields and types `save` writes."""
  if not isinstance(info, dict):
    return False
  ok = (
    isinstance(info.get("name"), str)
    and isinstance(info.get("path"), list)
    and all(
      isinstance(e, list) and len(e) == 2 and e[0] in ("key", "attr", "index") and isinstance(e[1], str | int)
      for e in info["path"]
    )
    and _is_int_list(info.get("shape"))
    and isinstance(info.get("dtype"), str)
    and isinstance(info.get("stored_dtype", ""), str)
  )
  if ok and "key_impl" in info:
    ok = isinstance(info["key_impl"], str) and _is_int_list(info.get("key_shape"))
  return ok


def _dtype_name(dtype: np.dtype) -> str:
  return dtype.name if dtype.isnative and dtype.names is None else dtype.str


def _reason(e: BaseException) -> str:
  text = str(e).strip().splitlines()
  return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
  """The metadata dict saved with the checkpoint at `path`, without reading its arrays."""
  with _Reader(path) as reader:
    return reader.header()["metadata"]


def _template_info(leaf: Any) -> tuple[tuple[int, ...], str, str | None]:
  """(shape, dtype name, key impl or None) of a template leaf."""
  if _is_key_array(leaf):
    return tuple(leaf.shape), "key", _key_impl_name(leaf)
  if hasattr(leaf, "shape") and hasattr(leaf, "dtype"):
    return tuple(leaf.shape), _dtype_name(np.dtype(leaf.dtype)), None
  arr = np.asarray(leaf)
  return arr.shape, _dtype_name(arr.dtype), None


def _matches(info: Mapping[str, Any], leaf: Any) -> bool:
  shape, dtype, impl = _template_info(leaf)
  if "key_impl" in info:
    return impl == info["key_impl"] and shape == tuple(info["key_shape"])
  if impl is not None or shape != tuple(info["shape"]):
    return False
  if isinstance(leaf, _PYTHON_SCALARS):  # A python scalar accepts any array of its kind.
    try:
      return np.dtype(dtype).kind == np.dtype(info.get("stored_dtype", info["dtype"])).kind
    except TypeError:
      return False
  return dtype == info["dtype"]


def _like(value: Any, leaf: Any) -> Any:
  """`value` (numpy array or key array) as the same kind of object as template `leaf`."""
  if isinstance(leaf, _PYTHON_SCALARS):
    return type(leaf)(value.item())
  if isinstance(leaf, jax.Array | jax.ShapeDtypeStruct):
    return jax.device_put(value)
  if isinstance(leaf, np.generic):
    return value[()]
  return value


def _nest(path: str, header: Mapping[str, Any], values: list[Any]) -> Any:
  if len(values) == 1 and not header["leaves"][0]["path"]:
    return values[0]
  out: dict[Any, Any] = {}
  for info, value in zip(header["leaves"], values, strict=True):
    keys = [entry[1] for entry in info["path"]]
    node = out
    for key in keys[:-1]:
      node = node.setdefault(key, {})
      if not isinstance(node, dict):
        break
    if not keys or not isinstance(node, dict) or keys[-1] in node:
      raise CheckpointError(f"{path}: corrupt checkpoint metadata (leaf paths do not form a tree)")
    node[keys[-1]] = value
  return out


def load(path: str | os.PathLike[str], template: Any = None) -> tuple[Any, dict[str, Any]]:
  """Reads the checkpoint at `path`; returns (tree, metadata).

  With `template`, the tree has exactly the template's structure, after checking that
  leaf paths, shapes and dtypes match (leaves come back as the template's leaf types:
  jax arrays, numpy arrays or python scalars). Without one, the tree is a nested dict keyed
  by the saved path entries (dict keys, attribute names, int indices) of numpy arrays
  (typed PRNG keys come back as jax key arrays).
  """
  with _Reader(path) as reader:
    header = reader.header()
    saved = header["leaves"]
    if template is None:
      return _nest(reader.path, header, [reader.leaf(info) for info in saved]), header["metadata"]

    t_leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
    t_names = [_ROOT + jax.tree_util.keystr(p) for p, _ in t_leaves]
    s_names = [info["name"] for info in saved]
    if t_names != s_names:
      i = next(
        (i for i, (a, b) in enumerate(zip(t_names, s_names)) if a != b), min(len(t_names), len(s_names))
      )
      t_name = t_names[i] if i < len(t_names) else "nothing"
      s_name = s_names[i] if i < len(s_names) else "nothing"
      counts = (
        f" (checkpoint has {len(s_names)} leaves, template {len(t_names)})"
        if len(s_names) != len(t_names)
        else ""
      )
      raise CheckpointError(
        f"{reader.path}: structure mismatch{counts}: leaf {i} is {s_name} in the checkpoint but {t_name} in the template"
      )
    for info, (_, leaf) in zip(saved, t_leaves):
      if not _matches(info, leaf):
        shape, dtype, impl = _template_info(leaf)
        t_desc = f"shape {shape} dtype {f'key<{impl}>' if impl else dtype}"
        raise CheckpointError(
          f"{reader.path}: leaf {info['name']} has {_describe(info)} in the checkpoint but {t_desc} in the template"
        )
    values = [_like(reader.leaf(info), leaf) for info, (_, leaf) in zip(saved, t_leaves)]
    return jax.tree.unflatten(treedef, values), header["metadata"]


# --------------------------------------------------------------------------- directories


def checkpoint_path(directory: str | os.PathLike[str], step: int, prefix: str = "ckpt_") -> str:
  """`directory/{prefix}{step:06d}.npz`."""
  if step < 0:
    raise ValueError(f"step must be >= 0, got {step}")
  return os.path.join(os.fspath(directory), f"{prefix}{int(step):06d}.npz")


def steps(directory: str | os.PathLike[str], prefix: str = "ckpt_") -> list[int]:
  """The steps of the checkpoints `{prefix}<step>.npz` in `directory`, ascending."""
  return [s for s, _ in _step_files(directory, prefix)]


def _step_files(directory: str | os.PathLike[str], prefix: str) -> list[tuple[int, str]]:
  pattern = re.compile(re.escape(prefix) + r"(\d+)\.npz")
  try:
    names = os.listdir(directory)
  except (FileNotFoundError, NotADirectoryError):
    return []
  files = [
    (int(m.group(1)), os.path.join(os.fspath(directory), n)) for n in names if (m := pattern.fullmatch(n))
  ]
  return sorted(files)


def latest(directory: str | os.PathLike[str], prefix: str = "ckpt_") -> str | None:
  """The path of the checkpoint with the highest step in `directory`, or None."""
  files = _step_files(directory, prefix)
  return files[-1][1] if files else None


def save_step(
  directory: str | os.PathLike[str],
  step: int,
  tree: Any,
  metadata: Mapping[str, Any] | None = None,
  keep: int | None = 3,
  prefix: str = "ckpt_",
) -> str:
  """Saves `checkpoint_path(directory, step)`, then deletes older checkpoints beyond `keep`.

  The checkpoint just written is always kept, with the `keep - 1` highest other steps;
  `keep=None` keeps everything. Returns the path written.
  """
  if keep is not None and keep < 1:
    raise ValueError(f"keep must be >= 1 or None, got {keep}")
  os.makedirs(directory, exist_ok=True)
  path = checkpoint_path(directory, step, prefix)
  save(path, tree, metadata)
  if keep is not None:
    others = [p for s, p in reversed(_step_files(directory, prefix)) if p != path]
    for old in others[keep - 1 :]:
      with contextlib.suppress(FileNotFoundError):
        os.remove(old)
  return path
