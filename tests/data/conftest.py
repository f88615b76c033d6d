"""Fixtures for the data tests: tiny generated image folders written to tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
from datatest_helpers import make_class_tree


@pytest.fixture
def kaggle_dir(tmp_path: Path) -> Path:
    """Training/ (5 per class) and Testing/ (2 per class) with distinct PNG images."""
    root = tmp_path / "kaggle"
    make_class_tree(root / "Training", 5)
    make_class_tree(root / "Testing", 2, seed0=1000)
    return root


@pytest.fixture
def class_dir(tmp_path: Path) -> Path:
    """One folder of class folders, 10 images per class."""
    return make_class_tree(tmp_path / "flat", 10, classes=("a", "b", "c"))
