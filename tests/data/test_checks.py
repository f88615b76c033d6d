"""The one validation of image sizes, shapes, channel counts and input ranges."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neuroxai.data import check_channels, check_image_shape, check_image_size, check_input_range, load_images, to_model_input
from neuroxai.errors import DataError, ModelError


def test_image_size_accepts_pairs_and_ints_and_normalises() -> None:
    assert check_image_size(64) == (64, 64)
    assert check_image_size((32, 48)) == (32, 48)
    assert check_image_size([np.int64(8), 9.0]) == (8, 9)
    out = check_image_size(np.array([5, 6]))
    assert out == (5, 6) and all(type(v) is int for v in out)


@pytest.mark.parametrize("bad", [(8,), (8, 8, 1), (0, 8), (-1, 4), (8.5, 8), "64", None, True, (True, 8)])
def test_image_size_rejects_with_the_name_and_an_example(bad: object) -> None:
    with pytest.raises(DataError, match=r"image_size.*got"):
        check_image_size(bad)


def test_image_size_error_class_and_minimum_are_the_callers() -> None:
    with pytest.raises(ModelError, match="at least 32x32"):
        check_image_size((16, 16), min_size=32, error=ModelError)
    with pytest.raises(DataError, match=r"Drop the channel axis"):
        check_image_size((8, 8, 1))


def test_channels_and_input_range() -> None:
    assert check_channels(1) == 1 and check_channels(np.int32(3)) == 3
    for bad in (0, 2, 4, 3.5, "3", True):
        with pytest.raises(DataError, match="channels must be 1 .grayscale. or 3 .RGB."):
            check_channels(bad)
    assert check_channels(4, allowed=(1, 3, 4)) == 4
    assert check_input_range((0, 255)) == (0.0, 255.0) and check_input_range([-1, 1]) == (-1.0, 1.0)
    for bad in ((1, 1), (1, 0), (0,), (0, 1, 2), "01", None, (0, float("inf")), (float("nan"), 1)):
        with pytest.raises(DataError, match="input_range"):
            check_input_range(bad)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=-3, max_value=40), min_size=0, max_size=4), st.integers(1, 8))
def test_image_shape_accepts_exactly_three_positive_sizes(dims: list[int], min_size: int) -> None:
    valid = len(dims) == 3 and all(d > 0 for d in dims) and min(dims[:2]) >= min_size
    if valid:
        assert check_image_shape(dims, min_size=min_size) == tuple(dims)
    else:
        with pytest.raises(ModelError, match="input_shape for model 'm'"):
            check_image_shape(dims, min_size=min_size, name="input_shape for model 'm'", error=ModelError)


def test_image_shape_hints_and_channel_restriction() -> None:
    with pytest.raises(DataError, match=r"Add the channel axis, e.g. \(28, 28, 1\)"):
        check_image_shape((28, 28))
    assert check_image_shape((28, 28, 5)) == (28, 28, 5)  # any channel count unless restricted
    with pytest.raises(DataError, match="channel count"):
        check_image_shape((28, 28, 5), channels=(1, 3))


def test_readers_use_the_checks() -> None:
    with pytest.raises(DataError, match="image_size"):
        to_model_input(np.zeros((4, 4), np.uint8), (0, 4), 1)
    with pytest.raises(DataError, match="channels"):
        load_images([], image_size=(4, 4), channels=2)
    with pytest.raises(DataError, match="input_range"):
        to_model_input(np.zeros((4, 4), np.uint8), (4, 4), 1, input_range=(1, 0))
    assert to_model_input(np.zeros((4, 4), np.uint8), 8, 1).shape == (1, 8, 8, 1)  # one int: a square
    assert to_model_input([], (4, 5), 3).shape == (0, 4, 5, 3)
