"""Errors of the environment layer, in a module of their own so that the registry and the
backends it builds (Atari, Gymnasium) can both raise them without importing each other."""


class UnknownEnvironmentError(ValueError):
  """An environment name that is neither registered nor a grid-world spec file."""
