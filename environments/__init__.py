"""JAX-native environments (grid worlds, delayed chains), their registry and a dm_env adapter.

`environments.DmEnvAdapter` and `environments.make_dm_env` are imported lazily, so that
importing one submodule (e.g. `environments.types`) does not build the whole registry.
"""

from typing import Any

__all__ = ["DmEnvAdapter", "make_dm_env"]


def __getattr__(name: str) -> Any:
  if name in __all__:
    from environments import dm_env_adapter

    return getattr(dm_env_adapter, name)
  raise AttributeError(f"module 'environments' has no attribute {name!r}")
