"""Suite-wide test settings: quiet TensorFlow, no progress bars, deterministic seeds."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NEUROXAI_NO_PROGRESS", "1")
# A stray plugin installed in the test environment must not change registries,
# except in the tests that install one on purpose (they unset this).
os.environ.setdefault("NEUROXAI_DISABLE_PLUGIN_AUTOLOAD", "1")

import pytest


@pytest.fixture(autouse=True)
def _seed_everything():
    """Each test starts from the same random state."""
    import random

    import numpy as np

    random.seed(0)
    np.random.seed(0)
    yield


def real_data_path() -> str | None:
    """The real dataset folder from NEUROXAI_DATA, or None when it is absent."""
    path = os.environ.get("NEUROXAI_DATA")
    return path if path and os.path.isdir(path) else None


@pytest.fixture(autouse=True)
def _fresh_plugin_host():
    """Each test sees a plugin host without the plugins an earlier test installed or registered."""
    yield
    from neuroxai.plugins import reset_plugin_manager

    reset_plugin_manager()
