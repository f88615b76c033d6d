"""Copies of one dataset's images in another (resized, re-encoded, grey/RGB, contrast-stretched), per split and patient."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from neuroxai.cli import main
from neuroxai.data import COPY_THRESHOLD, RELATED_THRESHOLD, Dataset, find_copies, image_signatures, phantoms

CLASSES = ("glioma", "meningioma", "pituitary")


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Set A (class folders, 128 px PNG) and set B (a manifest with patients, 112 px): B holds six of A's images as
    altered copies (resized as the Kaggle set resized figshare's 256 px slices to 224), plus phantoms of its own."""
    root = tmp_path_factory.mktemp("copies")
    source = phantoms(n_per_class=8, image_size=128, seed=11)
    x, y = source.arrays("train", image_size=(128, 128), channels=1, input_range=(0.0, 255.0))
    x = x[..., 0].astype(np.uint8)
    names = source.class_names
    a_files = []
    for i, (img, label) in enumerate(zip(x, y)):
        if names[int(label)] not in CLASSES:
            continue
        path = root / "A" / names[int(label)] / f"a{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(path)
        a_files.append((path, names[int(label)], img))
    others = phantoms(n_per_class=6, image_size=112, seed=99)  # other phantoms: not copies of anything in A
    ox, oy = others.arrays("train", image_size=(112, 112), channels=1, input_range=(0.0, 255.0))
    rows = []
    (root / "B").mkdir()

    def alter(img: np.ndarray, k: int) -> Image.Image:
        big = Image.fromarray(img).resize((112, 112), Image.Resampling.BICUBIC)  # resized
        if k % 3 == 0:
            return big.convert("RGB")  # grey -> colour
        if k % 3 == 1:  # contrast-stretched and brightened (linear)
            return Image.fromarray(np.clip(np.asarray(big, np.float32) * 1.3 + 12, 0, 255).astype(np.uint8))
        return big  # written as JPEG below: re-encoded

    for k, (_path, label, img) in enumerate(a_files[:6]):
        name = f"copy{k}.jpg" if k % 3 == 2 else f"copy{k}.png"
        alter(img, k).save(root / "B" / name, quality=85)
        rows.append((name, label, "train" if k < 4 else "test", f"p{k % 2}"))
    for k, (img, label) in enumerate(zip(ox[..., 0].astype(np.uint8), oy)):
        if others.class_names[int(label)] not in CLASSES:
            continue
        Image.fromarray(img).save(root / "B" / f"own{k}.png")
        rows.append((f"own{k}.png", others.class_names[int(label)], "train", f"p{2 + k % 3}"))
    with open(root / "B" / "manifest.csv", "w", newline="") as f:
        csv.writer(f).writerows([("path", "label", "split", "patient"), *rows])
    copied = {str(p) for p, _, _ in a_files[:6]}
    return root / "A", root / "B" / "manifest.csv", copied


def test_altered_copies_are_found_and_nothing_else(pair):
    a_dir, b_csv, copied = pair
    a = Dataset(a_dir, val_fraction=0.0, test_fraction=0.0, progress=False)
    b = Dataset(b_csv, val_fraction=0.0, test_fraction=0.0, progress=False)
    report = find_copies(a, b, progress=False)
    assert {m.name for m in report.copies} == copied  # resized, RGB, stretched, JPEG: all found
    assert all(m.score >= COPY_THRESHOLD and m.other.rsplit("/", 1)[-1].startswith("copy") for m in report.copies)
    assert report.images == len(a) and report.other_images == len(b)
    assert report.copies_by_other_split == {"train": 4, "test": 2}
    assert report.copies_by_group == {"p0": 3, "p1": 3}  # per patient of the other set
    assert sum(sum(c.values()) for c in report.copies_by_split.values()) == 6 and report.label_disagreements == 0
    assert report.names() == copied and report.names(other_splits=("test",)) < copied
    # the other way round: B's copies are A's images; its own phantoms match nothing
    back = find_copies(b, a, progress=False)
    assert {m.name.rsplit("/", 1)[-1] for m in back.copies} == {f"copy{k}.{'jpg' if k % 3 == 2 else 'png'}" for k in range(6)}


def test_signatures_ignore_scale_encoding_and_linear_contrast_but_not_content():
    rng = np.random.default_rng(0)
    img = np.zeros((64, 64), np.float32)
    img[16:48, 20:44] = 180
    img[28:34, 10:30] = 90
    img += rng.normal(0, 3, img.shape)
    same = image_signatures(np.stack([img, img * 1.7 + 20]))
    assert float(same[0].astype(np.float32) @ same[1].astype(np.float32)) > 0.999
    moved = np.roll(img, 6, axis=1)  # the same content elsewhere is another image
    other = image_signatures(np.stack([img, moved]))
    assert float(other[0].astype(np.float32) @ other[1].astype(np.float32)) < RELATED_THRESHOLD
    flat = image_signatures(np.full((1, 64, 64), 7.0))
    assert not np.any(flat)  # a flat image has no signature to match


def test_thresholds_are_checked():
    ds = phantoms(n_per_class=2, image_size=32, seed=0)
    from neuroxai.errors import DataError

    with pytest.raises(DataError, match="related_threshold <= copy_threshold"):
        find_copies(ds, ds, copy_threshold=0.5, related_threshold=0.9, progress=False)


def test_audit_against_a_second_dataset_on_the_command_line(pair, capsys):
    a_dir, b_csv, copied = pair
    assert main(["audit", str(a_dir), "--against", str(b_csv), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "copies of" in text and "among these" in text and ": 6 (similarity >=" in text
    assert main(["audit", str(a_dir), "--against", str(b_csv), "--format", "json", "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {c["name"] for c in report["copies"]["copies"]} == copied
    assert report["copies"]["copies_by_group"] == {"p0": 3, "p1": 3}
    assert main(["audit", str(a_dir), "--no-progress", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["copies"] is None  # without --against: no search
