"""The numpy path (load_images, to_model_input, from_arrays) and the tf.data pipeline share one definition
of channel conversion, resize, mask threshold and resize, and range scaling: they give the same pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from datatest_helpers import write_image
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from neuroxai.data import Dataset, binarize_mask, load_images, resize_masks, to_model_input
from neuroxai.data._transforms import tf_binarize_mask, tf_resize_mask, tf_to_channels, to_channels

RANGES = [(0.0, 1.0), (0.0, 255.0), (-1.0, 1.0)]


def _smooth(h: int, w: int, c: int, seed: int) -> np.ndarray:
    """A smooth colour picture (JPEG keeps it close), uint8 [h, w, c]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    planes = [128 + 100 * np.sin(xx / rng.uniform(3, 9) + k) * np.cos(yy / rng.uniform(3, 9)) for k in range(c)]
    return np.stack(planes, -1).astype(np.uint8)


@settings(max_examples=25, deadline=None)
@given(
    h=st.integers(1, 24),
    w=st.integers(1, 24),
    have=st.sampled_from([1, 3, 4]),
    want=st.sampled_from([1, 3]),
    seed=st.integers(0, 2**16),
)
def test_channel_conversion_is_identical(h: int, w: int, have: int, want: int, seed: int) -> None:
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, have), dtype=np.uint8)
    np.testing.assert_array_equal(to_channels(arr, want), tf_to_channels(tf.constant(arr), want).numpy())


@settings(max_examples=25, deadline=None)
@given(kind=st.sampled_from(["0/255", "0/1", "labels", "soft", "bool", "noisy"]), seed=st.integers(0, 2**16))
def test_mask_threshold_is_identical(kind: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = {
        "0/255": lambda: rng.integers(0, 2, (9, 7)).astype(np.uint8) * 255,
        "0/1": lambda: rng.integers(0, 2, (9, 7)).astype(np.uint8),
        "labels": lambda: rng.choice([0, 1, 2, 4], (9, 7)).astype(np.uint8),
        "soft": lambda: rng.random((9, 7)).astype(np.float32),
        "bool": lambda: rng.random((9, 7)) > 0.5,
        "noisy": lambda: rng.integers(0, 256, (9, 7)).astype(np.uint8),
    }[kind]()
    out = binarize_mask(m)
    assert out.dtype == np.uint8 and set(np.unique(out)) <= {0, 1}
    np.testing.assert_array_equal(out, tf_binarize_mask(tf.constant(m)).numpy())
    if kind in ("0/255", "0/1", "labels", "bool", "noisy"):
        np.testing.assert_array_equal(out, (m != 0).astype(np.uint8))  # non-zero is tumour
    else:
        np.testing.assert_array_equal(out, (m > 0.5).astype(np.uint8))  # values <= 1 are read as 0/1


def test_mask_resize_is_identical() -> None:
    rng = np.random.default_rng(0)
    masks = [rng.integers(0, 2, (17, 23)).astype(np.uint8) * 255 for _ in range(3)] + [np.zeros((5, 6), np.uint8)]
    got = resize_masks(masks, (8, 12))
    assert got.shape == (4, 8, 12) and got.dtype == bool
    for m, g in zip(masks, got):
        np.testing.assert_array_equal(g, tf_resize_mask(tf.constant(m[..., None]), (8, 12)).numpy()[..., 0] > 0)
    np.testing.assert_array_equal(resize_masks(masks[:1], (17, 23))[0], masks[0] > 0)  # same size: untouched


@settings(max_examples=12, deadline=None)
@given(
    sizes=st.lists(st.tuples(st.integers(4, 40), st.integers(4, 40)), min_size=1, max_size=4),
    have=st.sampled_from([1, 3, 4]),
    want=st.sampled_from([1, 3]),
    out=st.tuples(st.integers(3, 32), st.integers(3, 32)),
    rng_index=st.integers(0, 2),
    seed=st.integers(0, 2**16),
)
def test_arrays_give_the_same_batch_through_numpy_and_the_pipeline(
    sizes: list[tuple[int, int]], have: int, want: int, out: tuple[int, int], rng_index: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, (h, w, have), dtype=np.uint8) for h, w in sizes]
    masks = [rng.integers(0, 2, (h, w), dtype=np.uint8) * 255 for h, w in sizes]
    input_range = RANGES[rng_index]
    ds = Dataset.from_arrays(
        images, [0] * len(images), class_names=["a"], masks=masks, splits=["test"] * len(images), val_fraction=0.0
    )
    x_pipe, _y, m_pipe = ds.arrays("test", image_size=out, channels=want, input_range=input_range, with_masks=True)
    x_np = to_model_input(images, out, want, input_range=input_range)
    np.testing.assert_array_equal(x_np, x_pipe)
    np.testing.assert_array_equal(resize_masks(masks, out), m_pipe)
    # and the tf.data pipeline proper (batched, not through arrays()) agrees too
    batches = [b[0].numpy() for b in ds.pipeline("test", image_size=out, channels=want, input_range=input_range, batch_size=3)]
    np.testing.assert_array_equal(np.concatenate(batches), x_np)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [(40, 36), (23, 31)])
def test_files_give_the_same_pixels_through_load_images_and_the_pipeline(
    tmp_path: Path, channels: int, size: tuple[int, int]
) -> None:
    gray, rgb = _smooth(40, 36, 1, 1)[..., 0], _smooth(40, 36, 3, 2)
    cases = [
        ("g.png", gray, None, "PNG"),
        ("c.png", rgb, None, "PNG"),
        ("a.png", rgb, "RGBA", "PNG"),
        ("p.png", rgb, "P", "PNG"),
        ("la.png", gray, "LA", "PNG"),
        ("g.jpg", gray, None, "JPEG"),
        ("c.jpg", rgb, None, "JPEG"),
        ("n.jpg", np.random.default_rng(3).integers(0, 256, (40, 36, 3), dtype=np.uint8), None, "JPEG"),
        ("s.tif", gray, "I;16", "TIFF"),
        ("c.bmp", rgb, None, "BMP"),
    ]
    for name, arr, mode, fmt in cases:
        write_image(tmp_path / "data" / "k" / name, arr, mode=mode, fmt=fmt)
    ds = Dataset(tmp_path / "data", val_fraction=0.0, test_fraction=0.0, progress=False)
    assert len(ds) == len(cases) and not ds.skipped
    x_pipe, _ = ds.arrays("train", image_size=size, channels=channels, input_range=(0, 255))
    paths = [p for p in ds.paths("train") if p is not None]
    x_load, ok, skipped = load_images(paths, image_size=size, channels=channels, input_range=(0, 255))
    assert not skipped and ok == ds.paths("train")
    for path, a, b in zip(ok, x_pipe, x_load):
        # TensorFlow decodes JPEG/PNG with the same DCT as PIL, then the shared conversion and resize: exact
        assert np.abs(a - b).max() <= 1.0, path
    np.testing.assert_array_equal(x_pipe, x_load)


def test_rgb_to_gray_is_itu_601_luma() -> None:
    arr = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]], np.uint8)
    np.testing.assert_array_equal(to_channels(arr, 1)[0, :, 0], [76, 150, 29, 18])
    pil = np.asarray(Image.fromarray(arr).convert("L"))
    assert np.abs(pil.astype(int) - to_channels(arr, 1)[..., 0]).max() <= 1
