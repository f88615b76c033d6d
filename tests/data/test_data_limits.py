"""Reliability of the data layer: bounded memory for huge images, refused nonsense, our own outputs never read as data."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from datatest_helpers import make_class_tree, pattern, write_image

from neuroxai.data import Dataset, check_image_size, find_images, load_images
from neuroxai.data import _images as images_module
from neuroxai.errors import DataError


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width`` x ``height`` gray pixels and holds almost no data (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )
    return path


def test_an_image_beyond_the_pixel_limit_is_refused_from_its_header(tmp_path: Path) -> None:
    root = make_class_tree(tmp_path / "data", 3, classes=("a", "b"))
    huge = _png_header_only(root / "a" / "huge.png", 13000, 13000)  # 169 megapixels: under Pillow's error limit
    ds = Dataset(root, progress=False)
    reasons = {Path(s.path).name: s.reason for s in ds.skipped}
    # refused by size before any decoding (a decode would have called the file truncated)
    assert "13000x13000" in reasons["huge.png"] and "limit" in reasons["huge.png"]
    _, ok, skipped = load_images([huge, root / "a" / "img000.png"], image_size=(16, 16), channels=1)
    assert ok == [str(root / "a" / "img000.png")] and "megapixels" in skipped[0].reason
    with pytest.raises(DataError, match="megapixels"):
        images_module.read_array(huge)
    # the limit is the caller's to raise: then the file is decoded (and found truncated)
    assert "truncated" in str(images_module.open_image(huge, max_pixels=200_000_000))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_big_image_is_decoded_reduced_to_the_size_needed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    monkeypatch.setattr(images_module, "REDUCE_ABOVE_PIXELS", 100 * 100)  # "big" for this test: cheap images suffice
    arr = np.kron(pattern(3, 40), np.ones((10, 12), np.uint8))  # 400 x 480
    path = write_image(tmp_path / f"big.{fmt.lower()}", arr, fmt=fmt)
    img = images_module.open_image(path, size=(32, 32))
    assert not isinstance(img, str)
    with img:
        assert img.width < 160 and img.height < 160  # reduced while or right after decoding, not kept at 480 x 400
        assert img.width >= 32 and img.height >= 32  # never below the size asked for
    x, ok, _ = load_images([path], image_size=(32, 32), channels=1)
    assert x.shape == (1, 32, 32, 1) and ok == [str(path)]
    info = images_module.probe_file(str(path))
    assert not isinstance(info, str) and (info.width, info.height) == (480, 400)  # the file's own size is recorded
    assert not info.tf_decodable  # the pipeline decodes it the same reduced way (with PIL)


def test_an_absurd_model_input_size_fails_at_once_with_the_memory_it_would_take() -> None:
    with pytest.raises(DataError, match=r"100000x100000 is larger than the limit.*GB") as err:
        check_image_size(100000)
    assert "(224, 224)" in str(err.value)
    assert check_image_size(4096) == (4096, 4096)


# ---------------------------------------------------------------------------------------------------- symbolic links
@pytest.mark.skipif(os.name == "nt", reason="symbolic links need privileges on Windows")
def test_class_folders_that_are_links_looping_leaving_the_data_or_doubling_a_class_are_refused(tmp_path: Path) -> None:
    root = make_class_tree(tmp_path / "data", 3, classes=("a", "b"))
    os.symlink(root / "loop", root / "loop")
    with pytest.raises(DataError, match="loop.*symbolic link that loops"):
        Dataset(root, progress=False)
    os.unlink(root / "loop")

    elsewhere = make_class_tree(tmp_path / "elsewhere", 3, classes=("c",), seed0=50)
    os.symlink(elsewhere / "c", root / "c")
    with pytest.raises(DataError, match="outside the data folder.*allow_outside_root"):
        Dataset(root, progress=False)
    assert Dataset(root, progress=False, allow_outside_root=True).class_names == ("a", "b", "c")  # when asked for
    os.unlink(root / "c")

    os.symlink(root / "a", root / "alias")
    with pytest.raises(DataError, match="alias is a symbolic link to the class folder"):
        Dataset(root, progress=False)


@pytest.mark.skipif(os.name == "nt", reason="symbolic links need privileges on Windows")
def test_a_linked_folder_inside_a_class_is_reported_not_silently_ignored(tmp_path: Path) -> None:
    root = make_class_tree(tmp_path / "data", 3, classes=("a", "b"))
    os.symlink(root / "b", root / "a" / "more")
    ds = Dataset(root, progress=False)
    reasons = {s.path: s.reason for s in ds.skipped}
    assert "not followed" in reasons[str(root / "a" / "more")]
    assert len(ds) == 6


# ---------------------------------------------------------------------------------------------------- manifests
def test_manifest_paths_outside_its_folder_are_refused_unless_allowed(tmp_path: Path) -> None:
    outside = write_image(tmp_path / "outside.png", pattern(9))
    data = tmp_path / "m"
    for i in range(4):
        write_image(data / f"{i}.png", pattern(i))
    manifest = data / "list.csv"
    manifest.write_text(f"path,label\n0.png,a\n1.png,a\n2.png,b\n3.png,b\n../outside.png,b\n{outside},a\n")
    with pytest.raises(DataError, match=r"2 path\(s\) outside its folder.*'../outside.png'.*allow_outside_root") as err:
        Dataset(manifest, progress=False)
    assert "list.csv line 6" in str(err.value)
    assert len(Dataset(manifest, progress=False, allow_outside_root=True)) == 6
    masks = data / "masks.csv"
    masks.write_text("path,label,mask\n0.png,a,../outside.png\n2.png,b,\n")
    with pytest.raises(DataError, match=r"\(mask\)"):
        Dataset(masks, progress=False)


# ---------------------------------------------------------------------------------------------------- our own outputs
def test_a_run_written_into_the_data_is_not_read_as_classes(tmp_path: Path) -> None:
    root = make_class_tree(tmp_path / "data", 3, classes=("a", "b"))
    # a training run whose --out was the data folder itself, and another one beside the classes
    (root / "neuroxai.json").write_text("{}")
    for name in ("checkpoints", "logs", "backup"):
        write_image(root / name / "x.png", pattern(77))
    write_image(root / "run2" / "curves.png", pattern(78))
    (root / "run2" / "neuroxai.json").write_text("{}")
    # explanation overlays written inside a class folder
    write_image(root / "a" / "overlays" / "img000.png", pattern(79))
    (root / "a" / "overlays" / ".neuroxai-output.json").write_text('{"command": "explain", "files": ["img000.png"]}')
    ds = Dataset(root, progress=False)
    assert ds.class_names == ("a", "b") and len(ds) == 6
    skipped = {os.path.relpath(s.path, root) for s in ds.skipped if "neuroxai wrote" in s.reason}
    assert {"checkpoints", "logs", "backup", "run2", os.path.join("a", "overlays")} <= skipped
    assert all("overlays" not in p for p in find_images([root / "a"]).paths)


# ---------------------------------------------------------------------------------------------------- epochs
def test_a_seeded_pipeline_draws_each_epoch_from_the_epoch_number_alone(tmp_path: Path) -> None:
    from neuroxai.data import PipelineState, phantoms

    ds = phantoms(n_per_class=4, image_size=16, seed=0)
    n = len(ds.labels("train"))

    def epochs(first: int, count: int) -> list[np.ndarray]:
        state = PipelineState(n, epoch=first)
        pipe = ds.pipeline("train", image_size=(16, 16), channels=1, batch_size=4, seed=5, state=state)
        return [np.concatenate([b[0].numpy() for b in pipe]) for _ in range(count)]

    straight = epochs(0, 3)
    assert not np.array_equal(straight[1], straight[2])  # each epoch its own shuffle and augmentation
    np.testing.assert_array_equal(epochs(2, 1)[0], straight[2])  # a fresh process starting at epoch 2 sees the same
