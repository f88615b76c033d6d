"""Synthetic phantoms: determinism, anatomy of each class's mask, the shortcut marker, writing to disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neuroxai.data import PHANTOM_CLASSES, Dataset, phantoms, write_phantoms
from neuroxai.data._phantoms import _generate
from neuroxai.errors import DataError


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), size=st.sampled_from([16, 33, 64]), n=st.integers(1, 3))
def test_phantoms_are_deterministic_per_seed(seed: int, size: int, n: int) -> None:
    a = _generate(n, size, seed, False)
    b = _generate(n, size, seed, False)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    c = _generate(n, size, seed + 1, False)
    assert not np.array_equal(a[0], c[0])
    assert a[0].shape == (4 * n, size, size) and a[0].dtype == np.uint8


@pytest.fixture(scope="module")
def gen() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _generate(25, 96, 0, False)


def test_masks_match_the_anatomy_of_each_class(gen) -> None:
    images, masks, labels = gen
    s = images.shape[1]
    area = masks.reshape(len(masks), -1).sum(1)
    g, m, n, p = (labels == k for k in range(4))
    assert (area[n] == 0).all()
    assert (area[g | m | p] > 0).all()
    assert np.median(area[p]) < np.median(area[g]) and np.median(area[p]) < np.median(area[m])
    ys, xs = np.mgrid[0:s, 0:s] / (s - 1) * 2 - 1
    cy = np.array([ys[mk > 0].mean() for mk in masks[p]])
    cx = np.array([xs[mk > 0].mean() for mk in masks[p]])
    assert (np.abs(cx) < 0.2).all() and (cy > 0.25).all()  # near the midline (head pose varies), low in the brain

    # meningioma touches the skull: its mask reaches further out than a glioma's centre
    def max_radius(mk: np.ndarray) -> float:
        return float(np.sqrt(xs[mk > 0] ** 2 + ys[mk > 0] ** 2).max())

    assert np.median([max_radius(mk) for mk in masks[m]]) > 0.6
    gx = np.array([xs[mk > 0].mean() for mk in masks[g]])
    assert (np.abs(gx) > 0.08).all()  # inside one hemisphere, off the midline
    # the tumour is brighter than the rest of the brain
    for img, mk in zip(images[g | m | p], masks[g | m | p]):
        assert img[mk > 0].mean() > np.median(img[img > 20])


def test_images_vary_and_look_like_a_head(gen) -> None:
    images, _, _ = gen
    assert images[:, 0, 0].max() < 60  # dark background in the corner
    assert images[:, images.shape[1] // 2, images.shape[2] // 2].mean() > 60  # tissue in the middle
    assert np.std(images.reshape(len(images), -1).mean(1)) > 3  # brightness varies


def test_shortcut_marks_a_class_specific_corner() -> None:
    images, masks, labels = _generate(3, 64, 0, True)
    plain, _, _ = _generate(3, 64, 0, False)
    corners = {
        0: (slice(2, 6), slice(2, 6)),
        1: (slice(2, 6), slice(58, 62)),
        2: (slice(58, 62), slice(2, 6)),
        3: (slice(58, 62), slice(58, 62)),
    }
    for img, lab in zip(images, labels):
        for k, (r, c) in corners.items():
            assert (img[r, c] == 255).all() == (k == lab)
    np.testing.assert_array_equal(masks, _generate(3, 64, 0, False)[1])  # not part of the mask
    diff = images != plain
    assert diff.reshape(len(diff), -1).sum(1).max() == 16
    half, _, _ = _generate(50, 32, 0, 0.5)
    frac = np.mean(
        [
            (img[1:3, 1:3] == 255).all()
            or (img[29:31, 29:31] == 255).all()
            or (img[1:3, 29:31] == 255).all()
            or (img[29:31, 1:3] == 255).all()
            for img in half
        ]
    )
    assert 0.3 < frac < 0.7


def test_phantoms_dataset_and_write_phantoms_round_trip(tmp_path: Path) -> None:
    ds = phantoms(n_per_class=10, image_size=32, seed=2)
    assert ds.class_names == PHANTOM_CLASSES and ds.has_masks and len(ds) == 40
    assert "phantoms" in ds.summary().source
    assert isinstance(Dataset.phantoms(n_per_class=2, image_size=16), Dataset)
    root = write_phantoms(tmp_path / "p", n_per_class=5, image_size=32, seed=2)
    assert sorted(p.name for p in root.iterdir()) == ["Testing", "Training"]
    masks = sorted((root / "Training" / "glioma").glob("*_mask.png"))
    assert masks
    disk = Dataset(root, progress=False)
    assert len(disk) == 20 and disk.has_masks and disk.mask_available("train").all()
    assert disk.counts()["test"] == dict.fromkeys(PHANTOM_CLASSES, 1)
    with pytest.raises(DataError, match="n_per_class"):
        phantoms(n_per_class=0)
