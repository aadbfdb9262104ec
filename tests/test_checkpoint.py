"""Checkpoints: bit-exact round trips, template checks, corrupt files, atomic writes, rotation."""

import json
import os
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from harness import checkpoint


class Stats(NamedTuple):
  mean: jax.Array
  count: int


@chex.dataclass
class State:
  params: dict
  opt_state: optax.OptState
  step: jax.Array


def _params():
  rng = np.random.default_rng(0)
  return {
    "mlp/~/linear_0": {
      "w": jnp.asarray(rng.normal(size=(3, 4)), jnp.float32),
      "b": jnp.asarray(np.zeros(4, np.float32)),
    },
    "mlp/~/linear_1": {
      "w": jnp.asarray(rng.normal(size=(4, 2)), jnp.float32),
      "b": jnp.asarray(np.full(2, np.nan, np.float32)),
    },
  }


def _tree():
  params = _params()
  opt_state = optax.adam(1e-3).init(params)
  adam = opt_state[0]._replace(mu=_params(), count=jnp.asarray(np.int32(3)))  # Non-trivial values.
  return {
    "state": State(params=params, opt_state=(adam, *opt_state[1:]), step=jnp.asarray(np.int32(7))),
    "stats": Stats(mean=jnp.asarray(np.arange(3.0, dtype=np.float32)), count=5),
    "rng": jax.random.PRNGKey(42),
    "scalars": {"lr": 0.1, "n": 3, "flag": True, "np": np.float32(2.5)},
    "nested": [[np.arange(4, dtype=np.int8), (np.array([True, False]),)], np.uint64(2**63 + 1)],
    "empty": (None, {}, []),
  }


def _assert_identical(a, b):
  """Same structure, leaf types, dtypes, shapes and bytes."""
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    assert type(x) is type(y) or (isinstance(x, jax.Array) and isinstance(y, jax.Array)), (type(x), type(y))
    if isinstance(x, int | float | bool):
      assert x == y
    else:
      if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        assert x.dtype == y.dtype
        x, y = jax.random.key_data(x), jax.random.key_data(y)
      x, y = np.asarray(x), np.asarray(y)
      assert x.dtype == y.dtype and x.shape == y.shape
      assert x.tobytes() == y.tobytes()


def test_round_trip_with_template_is_bit_exact(tmp_path):
  tree = _tree()
  path = tmp_path / "c.npz"
  checkpoint.save(path, tree, {"step": 7, "config": {"lr": 1e-3, "envs": ["a", "b"]}})
  restored, metadata = checkpoint.load(path, template=tree)
  _assert_identical(tree, restored)
  assert isinstance(restored["state"], State)
  assert isinstance(restored["state"].opt_state[0], optax.ScaleByAdamState)
  assert isinstance(restored["stats"], Stats)
  assert metadata == {"step": 7, "config": {"lr": 1e-3, "envs": ["a", "b"]}}
  assert checkpoint.read_metadata(path) == metadata


def test_round_trip_float64_and_typed_keys(tmp_path):
  with jax.enable_x64(True):
    tree = {
      "x": jnp.array([1 / 3, np.pi, -0.0, np.inf], jnp.float64),
      "i": jnp.array([2**40], jnp.int64),
      "key": jax.random.key(3),
      "keys": jax.random.split(jax.random.key(4), 3),
    }
    checkpoint.save(tmp_path / "c.npz", tree, {})
    restored, _ = checkpoint.load(tmp_path / "c.npz", template=tree)
    assert restored["x"].dtype == jnp.float64 and restored["x"].tobytes() == tree["x"].tobytes()
    assert restored["i"].dtype == jnp.int64 and int(restored["i"][0]) == 2**40
    for name in ("key", "keys"):
      assert restored[name].dtype == tree[name].dtype and restored[name].shape == tree[name].shape
      np.testing.assert_array_equal(jax.random.key_data(restored[name]), jax.random.key_data(tree[name]))
    # A restored key draws the same numbers.
    assert jax.random.uniform(restored["key"]) == jax.random.uniform(tree["key"])


def test_load_without_template_gives_nested_dict(tmp_path):
  tree = _tree()
  checkpoint.save(tmp_path / "c.npz", tree, {"a": 1})
  loaded, metadata = checkpoint.load(tmp_path / "c.npz")
  assert metadata == {"a": 1}
  w = loaded["state"]["params"]["mlp/~/linear_0"]["w"]
  assert (
    isinstance(w, np.ndarray)
    and w.tobytes() == np.asarray(tree["state"].params["mlp/~/linear_0"]["w"]).tobytes()
  )
  mu = loaded["state"]["opt_state"][0]["mu"]["mlp/~/linear_1"]["b"]
  np.testing.assert_array_equal(mu, tree["state"].opt_state[0].mu["mlp/~/linear_1"]["b"])
  assert loaded["rng"].dtype == np.uint32
  assert loaded["stats"]["count"] == 5 and loaded["scalars"]["flag"].dtype == np.bool_
  assert loaded["nested"][0][1][0].tolist() == [True, False]
  assert "empty" not in loaded  # No leaves there.
  # Same leaves in the same order as the saved tree.
  assert len(jax.tree.leaves(loaded)) == len(jax.tree.leaves(tree))


def test_single_array_and_empty_tree(tmp_path):
  checkpoint.save(tmp_path / "a.npz", np.arange(3), {})
  np.testing.assert_array_equal(checkpoint.load(tmp_path / "a.npz")[0], np.arange(3))
  checkpoint.save(tmp_path / "b.npz", {}, {"x": None})
  assert checkpoint.load(tmp_path / "b.npz") == ({}, {"x": None})
  assert checkpoint.load(tmp_path / "b.npz", template={})[0] == {}


def test_file_holds_no_pickles_and_a_json_header(tmp_path):
  checkpoint.save(tmp_path / "c.npz", _tree(), {"m": 1})
  with np.load(tmp_path / "c.npz", allow_pickle=False) as npz:
    arrays = {name: npz[name] for name in npz.files}
  header = json.loads(arrays.pop("__checkpoint__").tobytes().decode())
  assert header["format_version"] == checkpoint.FORMAT_VERSION == 1
  assert header["metadata"] == {"m": 1}
  assert "tree['state'].params['mlp/~/linear_0']['w']" in arrays
  assert [leaf["name"] for leaf in header["leaves"]] == list(arrays)


@pytest.mark.parametrize(
  "change, message",
  [
    (
      lambda t: {**t, "rng": jnp.zeros((3,), jnp.uint32)},
      r"tree\['rng'\] has shape \(2,\) dtype uint32 .* shape \(3,\)",
    ),
    (
      lambda t: {**t, "rng": jnp.zeros((2,), jnp.int32)},
      r"tree\['rng'\] has shape \(2,\) dtype uint32 .* dtype int32",
    ),
    (
      lambda t: {**t, "extra": jnp.zeros(())},
      r"structure mismatch \(checkpoint has 24 leaves, template 25\): leaf 0 is tree\[.nested.\]\[0\]\[0\] .* but tree\[.extra.\]",
    ),
    (lambda t: {k: v for k, v in t.items() if k != "stats"}, r"structure mismatch"),
    (
      lambda t: {**t, "stats": (t["stats"].mean, t["stats"].count)},
      r"tree\['stats'\]\.mean .* tree\['stats'\]\[0\]",
    ),
    (lambda t: {**t, "scalars": {**t["scalars"], "flag": 1}}, r"tree\['scalars'\]\['flag'\]"),
  ],
)
def test_template_mismatch(tmp_path, change, message):
  tree = _tree()
  checkpoint.save(tmp_path / "c.npz", tree, {})
  with pytest.raises(checkpoint.CheckpointError, match=message):
    checkpoint.load(tmp_path / "c.npz", template=change(tree))


def test_typed_key_against_raw_key_template(tmp_path):
  checkpoint.save(tmp_path / "c.npz", {"k": jax.random.key(0)}, {})
  with pytest.raises(checkpoint.CheckpointError, match=r"key<threefry2x32>.*dtype uint32"):
    checkpoint.load(tmp_path / "c.npz", template={"k": jax.random.PRNGKey(0)})


def test_abstract_template(tmp_path):
  tree = {"w": jnp.ones((2, 3)), "k": jax.random.key(0)}
  checkpoint.save(tmp_path / "c.npz", tree, {})
  restored, _ = checkpoint.load(tmp_path / "c.npz", template=jax.eval_shape(lambda: tree))
  _assert_identical(tree, restored)


def _valid_file(tmp_path):
  path = tmp_path / "good.npz"
  checkpoint.save(path, _tree(), {"step": 1})
  return path


@pytest.mark.parametrize("loader", [checkpoint.load, checkpoint.read_metadata])
def test_missing_and_corrupt_files(tmp_path, loader):
  with pytest.raises(checkpoint.CheckpointError, match="no such checkpoint file"):
    loader(tmp_path / "missing.npz")
  with pytest.raises(checkpoint.CheckpointError, match="is a directory"):
    loader(tmp_path)

  data = _valid_file(tmp_path).read_bytes()
  bad = tmp_path / "bad.npz"
  cases = {
    "random": np.random.default_rng(0).bytes(1000),
    "empty": b"",
    "npy": b"\x93NUMPY" + b"\0" * 100,
    "truncated": data[: len(data) // 2],
    "truncated_tail": data[:-10],
    "zip_header_only": data[:30],
  }
  for name, content in cases.items():
    bad.write_bytes(content)
    with pytest.raises(checkpoint.CheckpointError, match=r"not a valid checkpoint|truncated or corrupt") as e:
      loader(bad)
    assert "\n" not in str(e.value), name


def test_corrupt_array_bytes(tmp_path):
  data = bytearray(_valid_file(tmp_path).read_bytes())
  # Flip bytes inside a stored array's data: the zip CRC check catches it on read.
  i = data.index(b"linear_1']['w'].npy")
  j = data.index(b"\x93NUMPY", i) + 200
  data[j : j + 8] = bytes(255 - b for b in data[j : j + 8])
  bad = tmp_path / "bad.npz"
  bad.write_bytes(bytes(data))
  with pytest.raises(checkpoint.CheckpointError, match="corrupt checkpoint"):
    checkpoint.load(bad)


def _write_npz(path, **arrays):
  with open(path, "wb") as f:
    np.savez(f, **arrays)


def _header_bytes(header):
  return np.frombuffer(json.dumps(header).encode(), np.uint8)


def test_missing_metadata_bad_header_and_missing_array(tmp_path):
  path = tmp_path / "c.npz"
  _write_npz(path, x=np.zeros(3))
  with pytest.raises(checkpoint.CheckpointError, match="no __checkpoint__ metadata entry"):
    checkpoint.read_metadata(path)

  _write_npz(path, __checkpoint__=np.frombuffer(b"{not json", np.uint8))
  with pytest.raises(checkpoint.CheckpointError, match="corrupt checkpoint metadata"):
    checkpoint.load(path)

  _write_npz(path, __checkpoint__=_header_bytes({"metadata": {}}))
  with pytest.raises(checkpoint.CheckpointError, match="no format_version"):
    checkpoint.load(path)

  leaf = {"name": "tree['x']", "path": [["key", "x"]], "shape": [3], "dtype": "float64"}
  header = {"format_version": 1, "metadata": {}, "treedef": "", "leaves": [leaf]}
  _write_npz(path, __checkpoint__=_header_bytes(header))
  with pytest.raises(checkpoint.CheckpointError, match=r"missing array tree\['x'\]"):
    checkpoint.load(path)

  _write_npz(path, __checkpoint__=_header_bytes(header), **{"tree['x']": np.zeros(3, np.float32)})
  with pytest.raises(
    checkpoint.CheckpointError, match=r"corrupt checkpoint, tree\['x'\] has shape \(3,\) dtype float32"
  ):
    checkpoint.load(path)

  _write_npz(path, __checkpoint__=_header_bytes({**header, "leaves": [{"name": 3}]}))
  with pytest.raises(checkpoint.CheckpointError, match="bad leaf description"):
    checkpoint.load(path)


def test_other_format_version(tmp_path):
  path = tmp_path / "c.npz"
  _write_npz(path, __checkpoint__=_header_bytes({"format_version": 2, "metadata": {}, "leaves": []}))
  for loader in (checkpoint.load, checkpoint.read_metadata):
    with pytest.raises(
      checkpoint.CheckpointError, match="checkpoint format version 2, this code reads version 1"
    ):
      loader(path)


def test_unsaveable_inputs(tmp_path):
  with pytest.raises(checkpoint.CheckpointError, match="not JSON-serialisable"):
    checkpoint.save(tmp_path / "c.npz", {"x": 1}, {"bad": object()})
  with pytest.raises(checkpoint.CheckpointError, match=r"cannot save leaf tree\['x'\] of type object"):
    checkpoint.save(tmp_path / "c.npz", {"x": object()}, {})
  assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("target", ["savez", "replace", "fsync"])
def test_crash_during_save_keeps_previous_checkpoint(tmp_path, monkeypatch, target):
  path = tmp_path / "c.npz"
  old = {"w": jnp.ones(3)}
  checkpoint.save(path, old, {"step": 1})
  before = path.read_bytes()

  def crash(*args, **kwargs):
    if target == "savez":  # Die halfway through writing.
      args[0].write(b"PK\x03\x04 partial")
    raise OSError("simulated crash")

  module = np if target == "savez" else os
  monkeypatch.setattr(module, target, crash)
  with pytest.raises(OSError, match="simulated crash"):
    checkpoint.save(path, {"w": jnp.zeros(3)}, {"step": 2})
  monkeypatch.undo()

  assert path.read_bytes() == before
  assert os.listdir(tmp_path) == ["c.npz"]  # No temp file left behind.
  restored, metadata = checkpoint.load(path, template=old)
  assert metadata == {"step": 1}
  np.testing.assert_array_equal(restored["w"], old["w"])


def test_keyboard_interrupt_during_save_cleans_up(tmp_path, monkeypatch):
  def interrupt(*args, **kwargs):
    raise KeyboardInterrupt

  monkeypatch.setattr(np, "savez", interrupt)
  with pytest.raises(KeyboardInterrupt):
    checkpoint.save(tmp_path / "c.npz", {"w": jnp.ones(3)}, {})
  assert os.listdir(tmp_path) == []


def test_latest_and_save_step_rotation(tmp_path):
  directory = tmp_path / "ckpts"
  assert checkpoint.latest(directory) is None
  assert checkpoint.checkpoint_path(directory, 123) == os.path.join(directory, "ckpt_000123.npz")

  tree = {"w": jnp.ones(2)}
  for step in (5, 10, 1_000_000, 20):
    checkpoint.save_step(directory, step, tree, {"step": step}, keep=3)
  # 5 was the oldest beyond keep=3; 20 (just written) is kept although not the highest.
  assert checkpoint.steps(directory) == [10, 20, 1_000_000]
  assert checkpoint.latest(directory) == checkpoint.checkpoint_path(directory, 1_000_000)
  assert checkpoint.read_metadata(checkpoint.latest(directory)) == {"step": 1_000_000}

  # Other files do not count as checkpoints, and other prefixes are separate.
  for name in ("ckpt_abc.npz", "ckpt_000999.npz.tmp", ".ckpt_000999.npz.tmp-1-abc", "other_002000.npz"):
    (directory / name).write_bytes(b"")
  assert checkpoint.latest(directory) == checkpoint.checkpoint_path(directory, 1_000_000)
  assert checkpoint.latest(directory, prefix="other_") == str(directory / "other_002000.npz")

  path = checkpoint.save_step(directory, 2_000_000, tree, {}, keep=1)
  assert checkpoint.steps(directory) == [2_000_000] and path == checkpoint.latest(directory)
  assert (directory / "other_002000.npz").exists()

  for step in range(3):
    checkpoint.save_step(directory, step, tree, {}, keep=None)
  assert checkpoint.steps(directory) == [0, 1, 2, 2_000_000]
  with pytest.raises(ValueError, match="keep"):
    checkpoint.save_step(directory, 3, tree, {}, keep=0)
