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


#: Seconds the costliest test files take on 2 CPU cores (``--durations=60`` of a full run, summed per file: lower
#: bounds, the tests below the 60 slowest not counted; issue 24). `make test`
#: runs files whole in two processes (pytest-xdist ``--dist loadfile``) and hands them out in collection order
#: (``--no-loadscope-reorder``): starting with the longest keeps the two processes busy to the end, where xdist's
#: default (files with the most tests first) left the heavy one-test files for last and one process waiting. A stale
#: number only costs balance, never a test.
HEAVY_FILES = {
    "tests/explain/test_zoo.py": 192,
    "tests/test_examples.py": 162,
    "tests/training/test_guided.py": 110,
    "tests/backends/test_cross_backend.py": 86,
    "tests/training/test_distribute.py": 80,
    "tests/training/test_resume.py": 73,
    "tests/cli/test_train_cli.py": 57,
    "tests/training/test_exact_resume.py": 55,
    "tests/plugins/test_installed_plugin.py": 42,
    "tests/training/test_transfer_weights.py": 41,
    "tests/training/test_trainer.py": 35,
    "tests/models/test_builtin.py": 23,
}


def pytest_collection_modifyitems(config, items):
    """Longest files first (:data:`HEAVY_FILES`), the others after them in their own order."""
    order = {path: rank for rank, path in enumerate(sorted(HEAVY_FILES, key=HEAVY_FILES.__getitem__, reverse=True))}
    first_seen = {}
    for i, item in enumerate(items):
        first_seen.setdefault(item.nodeid.split("::", 1)[0], i)
    items.sort(key=lambda item: (order.get(item.nodeid.split("::", 1)[0], len(order)), first_seen[item.nodeid.split("::", 1)[0]]))
