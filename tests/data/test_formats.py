"""Formats (JPEG, PNG, BMP, TIFF, GIF) and modes (L, RGB, RGBA, P, 1, 16-bit) through index, pipeline and helpers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from datatest_helpers import pattern, write_image
from PIL import Image

from neuroxai.data import Dataset, load_images, to_model_input

# (file name, PIL mode to convert to, format); all hold the same picture
CASES = [
    ("gray.png", "L", "PNG"),
    ("rgb.png", "RGB", "PNG"),
    ("rgba.png", "RGBA", "PNG"),
    ("palette.png", "P", "PNG"),
    ("sixteen.png", "I;16", "PNG"),
    ("gray.jpg", "L", "JPEG"),
    ("rgb.jpeg", "RGB", "JPEG"),
    ("rgb.bmp", "RGB", "BMP"),
    ("gray.tif", "L", "TIFF"),
    ("sixteen.tiff", "I;16", "TIFF"),
    ("rgb.gif", "P", "GIF"),
]


@pytest.fixture
def formats_dir(tmp_path: Path) -> Path:
    img = np.kron(pattern(7, 12), np.ones((4, 4), np.uint8))  # 48x48, blocky so JPEG stays close
    for name, mode, fmt in CASES:
        write_image(tmp_path / "a" / name, img, mode=mode, fmt=fmt)
        write_image(tmp_path / "b" / name.replace(".", "_b."), 255 - img, mode=mode, fmt=fmt)
    # an odd size too
    write_image(tmp_path / "a" / "odd.png", np.full((37, 53), 128, np.uint8))
    return tmp_path


def test_every_format_and_mode_is_read(formats_dir: Path) -> None:
    ds = Dataset(formats_dir, val_fraction=0.0, test_fraction=0.0, progress=False)
    assert ds.skipped == []
    assert len(ds) == 2 * len(CASES) + 1
    modes = ds.audit(progress=False).to_dict()["modes"]
    assert {"L", "RGB", "RGBA", "P", "I;16"} <= set(modes)


@pytest.mark.parametrize("channels", [1, 3])
def test_pipeline_decodes_every_mode_to_the_same_picture(formats_dir: Path, channels: int) -> None:
    ds = Dataset(formats_dir, val_fraction=0.0, test_fraction=0.0, progress=False)
    x, _y = ds.arrays("train", image_size=(48, 48), channels=channels)
    assert x.shape == (len(ds), 48, 48, channels)
    assert x.min() >= 0.0 and x.max() <= 1.0
    paths = ds.paths("train")
    ref = x[paths.index(str(formats_dir / "a" / "gray.png"))]
    for p, img in zip(paths, x):
        if Path(p).parent.name == "a" and Path(p).name != "odd.png":
            # JPEG is lossy and 16-bit loses < 1/255; everything else decodes to the same pixels
            tol = 0.05 if p.endswith((".jpg", ".jpeg")) else 2.0 / 255
            assert np.abs(img - ref).mean() < tol, p
    if channels == 3:  # grayscale replicated across RGB
        np.testing.assert_allclose(ref[..., 0], ref[..., 1])


def test_sixteen_bit_is_scaled_by_the_16_bit_range(tmp_path: Path) -> None:
    arr = np.full((10, 10), 65535, np.uint16)
    arr[:5] = 32896  # 128 * 257
    Image.fromarray(arr).save(tmp_path / "x.png")
    x, _ok, skipped = load_images([tmp_path / "x.png"], image_size=(10, 10), channels=1, input_range=(0, 255))
    assert not skipped
    assert x[0, 0, 0, 0] == pytest.approx(128, abs=1) and x[0, 9, 0, 0] == pytest.approx(255, abs=1)


def test_load_images_matches_the_pipeline(formats_dir: Path) -> None:
    ds = Dataset(formats_dir, val_fraction=0.0, test_fraction=0.0, progress=False)
    x_pipe, _ = ds.arrays("train", image_size=(20, 30), channels=3, input_range=(0, 255))
    x_load, _ok, skipped = load_images(ds.paths("train"), image_size=(20, 30), channels=3, input_range=(0, 255))
    assert not skipped and x_load.shape == x_pipe.shape
    assert np.abs(x_load - x_pipe).max() <= 3.0  # decoders may round a pixel differently


def test_to_model_input_accepts_pil_lists_and_arrays() -> None:
    img = pattern(3, 40)
    a = to_model_input(Image.fromarray(img), (20, 20), 1)
    b = to_model_input([img, np.stack([img] * 3, -1)], (20, 20), 1)
    c = to_model_input(img.astype(np.float32) / 255.0, (20, 20), 3, input_range=(0, 255))
    d = to_model_input(np.stack([img, img]), (20, 20), 1, input_range=(-1, 1))
    assert a.shape == (1, 20, 20, 1) and b.shape == (2, 20, 20, 1) and c.shape == (1, 20, 20, 3)
    np.testing.assert_allclose(b[0], a[0], atol=1e-6)
    np.testing.assert_allclose(b[1], a[0], atol=1.5 / 255)
    np.testing.assert_allclose(c[0, ..., 0], a[0, ..., 0] * 255, atol=1.0)
    assert d.shape == (2, 20, 20, 1) and d.min() >= -1 and d.max() <= 1
    np.testing.assert_allclose(d[0], a[0] * 2 - 1, atol=1e-5)
