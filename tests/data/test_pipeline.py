"""The tf.data pipeline: shapes, ranges, channels, caching, shuffling, augmentation, masks, class weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from neuroxai.data import Dataset, phantoms
from neuroxai.data._pipeline import augment_batch


@pytest.fixture(scope="module")
def ph() -> Dataset:
    return phantoms(n_per_class=6, image_size=32, seed=1)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("input_range", [(0.0, 1.0), (0.0, 255.0), (-1.0, 1.0)])
def test_shapes_dtypes_ranges(ph: Dataset, channels: int, input_range: tuple[float, float]) -> None:
    ds = ph.pipeline("train", image_size=(24, 20), channels=channels, input_range=input_range, batch_size=5, seed=0)
    assert ds.element_spec[0].dtype == tf.float32 and ds.element_spec[1].dtype == tf.int32
    n = 0
    for x, _y in ds:
        assert x.shape[1:] == (24, 20, channels)
        assert float(tf.reduce_min(x)) >= input_range[0] - 1e-5
        assert float(tf.reduce_max(x)) <= input_range[1] + 1e-3
        n += int(x.shape[0])
    assert n == len(ph.labels("train"))
    x, _ = ph.arrays("val", image_size=(24, 20), channels=channels, input_range=input_range)
    assert x.max() > input_range[0] + 0.5 * (input_range[1] - input_range[0])  # really spans the range


def test_eval_pipeline_is_ordered_and_unaugmented(ph: Dataset) -> None:
    labels = np.concatenate([y.numpy() for _, y in ph.pipeline("test", image_size=(32, 32), channels=1, batch_size=3)])
    np.testing.assert_array_equal(labels, ph.labels("test"))
    a = np.concatenate([x.numpy() for x, _ in ph.pipeline("test", image_size=(32, 32), channels=1)])
    b = np.concatenate([x.numpy() for x, _ in ph.pipeline("test", image_size=(32, 32), channels=1)])
    np.testing.assert_array_equal(a, b)
    x, _ = ph.arrays("test", image_size=(32, 32), channels=1)
    np.testing.assert_allclose(a, x)


def test_train_pipeline_shuffles_and_augments_each_epoch(ph: Dataset) -> None:
    ds = ph.pipeline("train", image_size=(32, 32), channels=1, batch_size=64, seed=3)
    e1 = next(iter(ds))
    e2 = next(iter(ds))
    assert not np.array_equal(e1[1].numpy(), e2[1].numpy()) or not np.allclose(e1[0].numpy(), e2[0].numpy())
    plain = ph.pipeline("train", image_size=(32, 32), channels=1, batch_size=64, shuffle=False, augment=False)
    aug = ph.pipeline("train", image_size=(32, 32), channels=1, batch_size=64, shuffle=False, augment=True, seed=1)
    xp, yp = next(iter(plain))
    xa, ya = next(iter(aug))
    np.testing.assert_array_equal(yp.numpy(), ya.numpy())
    assert np.abs(xp.numpy() - xa.numpy()).mean() > 0.01
    # same seed, same augmented batch
    again = next(iter(ph.pipeline("train", image_size=(32, 32), channels=1, batch_size=64, shuffle=False, augment=True, seed=1)))
    np.testing.assert_allclose(again[0].numpy(), xa.numpy())


def test_masks_move_with_augmented_images() -> None:
    # images whose content IS their mask: after augmentation, the bright pixels must still match the mask
    rng = np.random.default_rng(0)
    masks = np.zeros((16, 40, 40), np.uint8)
    for k in range(16):
        cy, cx = rng.integers(8, 20, 2)
        masks[k, cy : cy + 14, cx : cx + 9] = 1
    images = masks * 255
    ds = Dataset.from_arrays(
        images, np.arange(16) % 2, class_names=["a", "b"], masks=masks, splits=["train"] * 16, val_fraction=0.0
    )
    pipe = ds.pipeline("train", image_size=(40, 40), channels=1, batch_size=16, with_masks=True, seed=2, shuffle=False)
    x, _y, m = next(iter(pipe))
    assert m.shape == (16, 40, 40, 1) and m.dtype == tf.float32
    assert set(np.unique(m.numpy())) <= {0.0, 1.0}
    x, m = x.numpy()[..., 0] > 0.5, m.numpy()[..., 0] > 0.5
    iou = (x & m).sum(axis=(1, 2)) / np.maximum((x | m).sum(axis=(1, 2)), 1)
    assert iou.min() > 0.8
    # and augmentation really moved them (otherwise this test would prove nothing)
    moved = [not np.array_equal(mk, orig.astype(bool)) for mk, orig in zip(m, masks)]
    assert sum(moved) >= 8


def test_augment_batch_flip_only_mirrors_image_and_mask() -> None:
    img = np.zeros((1, 8, 8, 1), np.float32)
    img[0, 2, 1] = 1.0
    strength = {"flip": 1.0, "rotation_deg": 0.0, "zoom": 0.0, "brightness": 0.0, "contrast": 0.0}
    out, mask = augment_batch(tf.constant(img), tf.constant(img), tf.constant([1, 2]), strength)
    np.testing.assert_allclose(out.numpy()[0, :, :, 0], img[0, :, ::-1, 0], atol=1e-6)
    np.testing.assert_allclose(mask.numpy()[0, :, :, 0], img[0, :, ::-1, 0])


def test_cache_to_file_and_dedup_and_shapes_of_arrays(ph: Dataset, tmp_path: Path) -> None:
    cache = str(tmp_path / "cache")
    ds = ph.pipeline("val", image_size=(16, 16), channels=3, cache=cache)
    first = np.concatenate([x.numpy() for x, _ in ds])
    second = np.concatenate([x.numpy() for x, _ in ds])
    np.testing.assert_array_equal(first, second)
    assert any(p.name.startswith("cache") for p in tmp_path.iterdir())
    x, y, m = ph.arrays("val", image_size=(16, 16), channels=3, with_masks=True)
    assert x.shape == (len(y), 16, 16, 3) and m.shape == (len(y), 16, 16) and m.dtype == bool


def test_class_weights_are_balanced() -> None:
    x = np.zeros((10, 4, 4), np.uint8) + np.arange(10, dtype=np.uint8)[:, None, None]
    y = np.array([0] * 6 + [1] * 3 + [2])
    ds = Dataset.from_arrays(x, y, class_names=["a", "b", "c"], splits=["train"] * 10, val_fraction=0.0)
    w = ds.class_weights()
    assert w == pytest.approx({0: 10 / 18, 1: 10 / 9, 2: 10 / 3})
    assert sum(w[k] * n for k, n in enumerate([6, 3, 1])) == pytest.approx(10)


def test_file_pipeline_with_masks_from_disk(tmp_path: Path) -> None:
    from neuroxai.data import write_phantoms

    root = write_phantoms(tmp_path / "ph", n_per_class=3, image_size=32, seed=4)
    ds = Dataset(root, progress=False)
    x, y, m = next(iter(ds.pipeline("test", image_size=(32, 32), channels=1, with_masks=True, batch_size=64)))
    mem = phantoms(n_per_class=3, image_size=32, seed=4)
    assert m.shape[0] == x.shape[0] == len(ds.labels("test"))
    empty = m.numpy().reshape(len(y), -1).sum(1) == 0
    np.testing.assert_array_equal(empty, y.numpy() == mem.class_names.index("notumor"))
