"""Fixtures for the explanation tests."""

from __future__ import annotations

import pytest
from explain_models import BUILDERS


@pytest.fixture(scope="session")
def tiny_models():
    """One instance of each tiny model, shared (tests that mutate nothing may use them)."""
    return {name: build() for name, build in BUILDERS.items()}
