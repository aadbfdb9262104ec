"""Shared test setup: float32 CPU JAX, quiet third-party deprecation warnings."""

import os
import warnings

os.environ.setdefault("JAX_PLATFORMS", "cpu")
warnings.filterwarnings("ignore", category=DeprecationWarning, module="tensorflow_probability")
