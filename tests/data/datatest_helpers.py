"""Helpers for the data tests: tiny generated images (unique module name to avoid clashes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("glioma", "meningioma", "notumor", "pituitary")


def pattern(seed: int, size: int = 24) -> np.ndarray:
    """A distinct, deterministic 8-bit grayscale picture (a blob whose position depends on seed)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    cy, cx = rng.uniform(size * 0.25, size * 0.75, 2)
    r = rng.uniform(size * 0.15, size * 0.3)
    img = 40 + 60 * rng.random((size, size))
    img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = 230
    return img.astype(np.uint8)


def write_image(path: Path, arr: np.ndarray, mode: str | None = None, fmt: str | None = None) -> Path:
    """Write ``arr`` as an image file; ``mode`` converts it first (e.g. 'P', 'RGBA', 'I;16')."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "I;16":
        img = Image.fromarray(arr.astype(np.uint16) * 257)
    else:
        img = Image.fromarray(arr)
        if mode is not None:
            img = img.convert(mode)
    img.save(path, format=fmt)
    return path


def make_class_tree(root: Path, n_per_class: int = 4, classes=CLASSES, ext: str = ".png", seed0: int = 0) -> Path:
    """root/<class>/img<k>.<ext> with distinct images."""
    k = seed0
    for c in classes:
        for i in range(n_per_class):
            write_image(root / c / f"img{i:03d}{ext}", pattern(k))
            k += 1
    return root
