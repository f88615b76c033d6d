"""Helpers for the data tests: tiny generated images, and a guard against calls that hang on a named pipe (unique
module name to avoid clashes; tests/cli imports it too)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
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


def no_hang(fn: Callable[[], object], fifos: list[Path], seconds: float = 60.0, what: str = "the call") -> object:
    """``fn()`` run on a thread; a call still blocked (on opening a pipe) after ``seconds`` fails the test.

    An exception ``fn`` raises is raised again in the test's thread; its result is returned.
    """
    out: dict[str, object] = {}

    def call() -> None:
        try:
            out["result"] = fn()
        except BaseException as exc:  # raised again in the test's thread
            out["error"] = exc

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        for fifo in fifos:  # release the reader so the thread can end
            with contextlib.suppress(OSError):
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"a named pipe was opened: {what} waited for a writer")
    if "error" in out:
        raise out["error"]  # type: ignore[misc]
    return out.get("result")
