"""Fixtures for model tests: a registry built without installed plugins, tiny shapes."""

from __future__ import annotations

import inspect

import pytest

from neuroxai.models import ModelRegistry, ModelSpec

#: Small but valid input sizes, so every model builds and steps in seconds.
SMALL_SIDE = 32


def small_shape(spec: ModelSpec) -> tuple[int, int, int]:
    """The spec's channel count at 32x32 (grayscale for the built-ins, so tiling is exercised)."""
    channels = 1 if spec.name in {"cnn", "efficientnetb0"} else spec.input_shape[2]
    return (SMALL_SIDE, SMALL_SIDE, channels)


def offline_options(spec: ModelSpec) -> dict:
    """Options that keep a factory offline (``weights=None`` where the factory takes weights)."""
    params = inspect.signature(spec.factory).parameters
    return {"weights": None} if "weights" in params else {}


@pytest.fixture(scope="session", name="small_shape")
def _small_shape_fixture():
    """The :func:`small_shape` helper."""
    return small_shape


@pytest.fixture(scope="session", name="offline_options")
def _offline_options_fixture():
    """The :func:`offline_options` helper."""
    return offline_options


@pytest.fixture(scope="session")
def registry() -> ModelRegistry:
    """The built-in registry (autoload off: a stray installed plugin cannot change it)."""
    return ModelRegistry(autoload=False)
