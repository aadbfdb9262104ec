"""Shared command-line plumbing for meta_train.py and meta_test.py.

Bad input must end in one clear line and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import ml_collections
from absl import flags
from ml_collections import config_flags


def fail(prog: str, message: str) -> None:
  """Exits with status 1 after printing `prog: error: message` to stderr."""
  sys.exit(f"{prog}: error: {message}")


def _field_paths(config: ml_collections.ConfigDict, prefix: str = "") -> list[str]:
  paths = []
  for key, value in config.items():
    path = f"{prefix}{key}"
    paths.append(path)
    if isinstance(value, ml_collections.ConfigDict):
      paths += _field_paths(value, path + ".")
  return paths


def unknown_overrides(
  config: ml_collections.ConfigDict, argv: Sequence[str], name: str = "config"
) -> list[str]:
  """The `--config.<path>` overrides in argv whose path is not a field of `config`."""
  valid = set(_field_paths(config))
  prefix = f"--{name}."
  bad = []
  for arg in argv:
    if arg.startswith(prefix):
      path = arg[len(prefix) :].split("=", 1)[0]
      if path not in valid:
        bad.append(path)
  return bad


def define_config_flag(
  prog: str, config: ml_collections.ConfigDict, name: str = "config"
) -> flags.FlagHolder[ml_collections.ConfigDict]:
  """`config_flags.DEFINE_config_dict`, but an unknown override is one error line.

  (ml_collections reads overrides from sys.argv while the flag is defined and raises a
  bare AttributeError for an unknown field.)
  """
  bad = unknown_overrides(config, sys.argv, name)
  if bad:
    fields = ", ".join(_field_paths(config))
    fail(prog, f"unknown config field(s) {', '.join(bad)}; valid fields: {fields}")
  return config_flags.DEFINE_config_dict(name, config)


def flags_parser(prog: str):
  """An `app.run(..., flags_parser=)` that reports a flag error as one line."""

  def parse(argv: list[str]) -> list[str]:
    try:
      return flags.FLAGS(argv)
    except flags.Error as e:
      fail(prog, str(e))
      raise  # Unreachable: fail exits.

  return parse


def _load_config_file(prog: str, spec: str) -> ml_collections.ConfigDict:
  """Loads `path[:arg]` the way config_flags does, with one-line errors."""
  import importlib.util
  import os

  path, _, arg = spec.partition(":")
  if not os.path.isfile(path):
    fail(prog, f"config file {path} does not exist")
  module_spec = importlib.util.spec_from_file_location("_lpg_user_config", path)
  module = importlib.util.module_from_spec(module_spec)
  try:
    module_spec.loader.exec_module(module)
    return module.get_config(arg) if arg else module.get_config()
  except Exception as e:  # A user's config file: report any failure as one line.
    fail(prog, f"cannot load config {spec}: {type(e).__name__}: {e}")
    raise


def define_config_file_flag(
  prog: str, default_path: str, variants: Sequence[str] = (), name: str = "config"
) -> flags.FlagHolder[ml_collections.ConfigDict]:
  """`config_flags.DEFINE_config_file` with shorthands and one-line errors.

  `--config=<variant>` (one of `variants`) means `default_path:<variant>`; any other value
  is `path[:arg]` as in ml_collections. Unknown `--config.<field>` overrides and configs
  that fail to load end the program with one error line.
  """
  for i, arg in enumerate(sys.argv):
    if arg.startswith(f"--{name}="):
      value = arg.split("=", 1)[1]
      if value in variants:
        sys.argv[i] = f"--{name}={default_path}:{value}"
  spec = next((a.split("=", 1)[1] for a in sys.argv if a.startswith(f"--{name}=")), default_path)
  config = _load_config_file(prog, spec)
  bad = unknown_overrides(config, sys.argv, name)
  if bad:
    fail(prog, f"unknown config field(s) {', '.join(bad)}; valid fields: {', '.join(_field_paths(config))}")
  return config_flags.DEFINE_config_file(name, default_path)
