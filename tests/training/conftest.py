"""Fixtures of the training tests: tiny models (with and without a TransferSpec) and tiny phantom sets."""

from __future__ import annotations

import pytest
from training_helpers import make_spec


@pytest.fixture(scope="session")
def tiny_spec():
    """A ModelSpec with a TransferSpec (two-phase by default)."""
    return make_spec(True)


@pytest.fixture(scope="session")
def plain_spec():
    """A ModelSpec without a TransferSpec (single phase)."""
    return make_spec(False)


@pytest.fixture(scope="session")
def tiny_ds():
    """Phantoms, 8 per class at 32x32, in memory."""
    from neuroxai.data import phantoms

    return phantoms(n_per_class=8, image_size=32, seed=0)


@pytest.fixture(scope="session")
def phantom_dir(tmp_path_factory):
    """Phantoms written to a Kaggle-layout folder (6 per class, 32x32)."""
    from neuroxai.data import write_phantoms

    return write_phantoms(tmp_path_factory.mktemp("phantoms") / "data", n_per_class=6, image_size=32, seed=1)
