"""Keras' backend for a command and its workers: chosen (``use``) before Keras is imported."""

from __future__ import annotations

import importlib.util
import os
import sys

from bench.core.errors import SpecError

BACKENDS = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}  # Keras backend → module it needs


def use(name: str | None) -> None:
    """Make ``name`` Keras' backend here and in every worker started from here: set before Keras is imported."""
    if name is None:
        return
    if importlib.util.find_spec(BACKENDS[name]) is None:
        raise SpecError(f"--backend {name}: {BACKENDS[name]} is not installed")
    if "keras" in sys.modules and sys.modules["keras"].backend.backend() != name:
        raise SpecError(f"--backend {name}: Keras is already loaded with backend "
                        f"{sys.modules['keras'].backend.backend()!r} in this process; set KERAS_BACKEND={name}")
    os.environ["KERAS_BACKEND"] = name
