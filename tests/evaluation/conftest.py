"""Fixtures for the evaluation tests (helpers live in xai_helpers.py)."""

from __future__ import annotations

import pytest
from xai_helpers import make_phantoms, train_cnn


@pytest.fixture(scope="session")
def phantom_data():
    """(train, test) tuples of (images, labels, masks)."""
    return make_phantoms(40, seed=1), make_phantoms(12, seed=2)


@pytest.fixture(scope="session")
def trained_cnn(phantom_data):
    (x, y, _), _ = phantom_data
    return train_cnn(x, y)
