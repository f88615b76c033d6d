"""Which files are images: one rule for the Dataset scan, `neuroxai explain` and `neuroxai predict`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from datatest_helpers import pattern, write_image

from neuroxai.data import Dataset, file_kind, find_images


@pytest.fixture
def messy(tmp_path: Path) -> Path:
    """A folder with images, masks in any case, hidden files and folders, debris and non-images."""
    root = tmp_path / "scans"
    for k, rel in enumerate(["a.png", "a_mask.png", "B.PNG", "B_MASK.png", "sub/c.jpg", "sub/deeper/d.tif", "x.png", "x.jpg"]):
        write_image(root / rel, pattern(k))
    write_image(root / ".hidden.png", pattern(20))
    write_image(root / ".ipynb_checkpoints" / "a-checkpoint.png", pattern(21))
    write_image(root / "__MACOSX" / "a.png", pattern(22))
    (root / "Thumbs.db").write_bytes(b"debris")
    (root / "notes.txt").write_text("not an image")
    return root


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("a.png", "image"),
        ("A.JPEG", "image"),
        ("scan.tiff", "image"),
        ("a_mask.png", "mask"),
        ("B_MASK.PNG", "mask"),
        ("b_Mask.jpg", "mask"),
        ("mask.png", "image"),  # only the suffix marks a mask
        (".a.png", "hidden"),
        ("Thumbs.db", "hidden"),
        ("__MACOSX", "hidden"),
        ("notes.txt", "other"),
        ("scan", "other"),
        ("dir/sub/a_mask.png", "mask"),
    ],
)
def test_file_kind(name: str, kind: str) -> None:
    assert file_kind(name) == kind


def test_find_images_expands_folders_sorted_with_unique_stems(messy: Path, tmp_path: Path) -> None:
    extra = write_image(tmp_path / "extra" / "a.png", pattern(30))
    found = find_images([messy, extra, tmp_path / "missing.png", messy / "a.png"])
    rel = [os.path.relpath(f.path, tmp_path) for f in found.files]
    assert rel == [
        "scans/B.PNG",
        "scans/a.png",
        "scans/sub/c.jpg",
        "scans/sub/deeper/d.tif",
        "scans/x.jpg",
        "scans/x.png",
        "extra/a.png",  # the same file given twice is listed once (scans/a.png again is dropped)
    ]
    stems = [f.stem for f in found.files]
    assert stems == ["B", "a", "sub__c", "sub__deeper__d", "x", "x_2", "a_2"]
    assert len(set(stems)) == len(stems)
    assert [(m.path, m.reason) for m in found.missing] == [(str(tmp_path / "missing.png"), "no such file or folder")]
    ignored = {os.path.relpath(s.path, messy) for s in found.ignored}
    assert ignored == {"a_mask.png", "B_MASK.png", ".hidden.png", ".ipynb_checkpoints", "__MACOSX", "Thumbs.db", "notes.txt"}
    assert found == find_images([messy, extra, tmp_path / "missing.png", messy / "a.png"])  # stable


def test_files_named_directly_are_always_taken(messy: Path) -> None:
    found = find_images([messy / "a_mask.png", messy / "notes.txt"])
    assert [Path(f.path).name for f in found.files] == ["a_mask.png", "notes.txt"]


def test_explain_and_predict_expand_inputs_the_same_way(messy: Path, tmp_path: Path) -> None:
    from neuroxai.cli._explain import collect_inputs
    from neuroxai.cli._train import _expand

    inputs = [str(messy), str(tmp_path / "nope")]
    files, missing = collect_inputs(inputs)
    skipped: list[tuple[str, str]] = []
    predicted, has_volumes = _expand(inputs, skipped)
    assert [os.fspath(p) for p, _ in files] == predicted == find_images(inputs).paths
    assert not has_volumes  # no scanner files among them
    assert missing == skipped == [(str(tmp_path / "nope"), "no such file or folder")]
    names = {Path(p).name for p in predicted}
    assert "a_mask.png" not in names and "B_MASK.png" not in names and ".hidden.png" not in names


def test_dataset_scan_reads_the_same_images_and_pairs_masks_case_insensitively(messy: Path, tmp_path: Path) -> None:
    root = tmp_path / "classes"
    root.mkdir()
    os.symlink(messy, root / "tumour")  # a class folder linked in from elsewhere: allowed only when asked for
    write_image(root / "healthy" / "h.png", pattern(40))
    ds = Dataset(root, val_fraction=0.0, test_fraction=0.0, progress=False, allow_outside_root=True)
    in_class = sorted(p for p in ds.paths("train") if p is not None and "tumour" in p)
    assert in_class == sorted(find_images([root / "tumour"]).paths)
    masks = dict(zip(ds.paths("train"), ds.mask_paths("train")))
    assert masks[str(root / "tumour" / "a.png")] == str(root / "tumour" / "a_mask.png")
    assert masks[str(root / "tumour" / "B.PNG")] == str(root / "tumour" / "B_MASK.png")
    skipped = {os.path.relpath(s.path, root / "tumour") for s in ds.skipped}
    assert {".hidden.png", ".ipynb_checkpoints", "__MACOSX", "Thumbs.db", "notes.txt"} <= skipped
