"""Duplicates, de-duplication, the audit report and the `neuroxai audit` command."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from datatest_helpers import pattern, write_image
from PIL import Image

from neuroxai.data import AuditReport, Dataset
from neuroxai.data._audit import near_pairs, phash


@pytest.fixture
def leaky_dir(kaggle_dir: Path) -> Path:
    """kaggle_dir plus: 2 test files byte-identical to training files (one with a different label),
    one near duplicate (re-encoded, brightened copy) across splits, and one exact pair within Training."""
    tr, te = kaggle_dir / "Training", kaggle_dir / "Testing"
    shutil.copy(tr / "glioma" / "img000.png", te / "glioma" / "copy_of_tr_glioma0.png")
    shutil.copy(tr / "notumor" / "img001.png", te / "meningioma" / "mislabelled_copy.png")
    src = np.asarray(Image.open(tr / "pituitary" / "img002.png"))
    write_image(te / "pituitary" / "near.jpg", np.clip(src.astype(int) + 6, 0, 255).astype(np.uint8), fmt="JPEG")
    shutil.copy(tr / "meningioma" / "img003.png", tr / "meningioma" / "img003_again.png")
    return kaggle_dir


def test_duplicate_test_indices_and_dedup(leaky_dir: Path) -> None:
    ds = Dataset(leaky_dir, progress=False)
    dup = ds.duplicate_test_indices()
    test_paths = ds.paths("test")
    assert sorted(Path(test_paths[i]).name for i in dup) == ["copy_of_tr_glioma0.png", "mislabelled_copy.png"]
    kept = ds.paths("test", dedup=True)
    assert len(kept) == len(test_paths) - 2
    assert set(kept) == set(test_paths) - {test_paths[i] for i in dup}
    assert len(ds.labels("test", dedup=True)) == len(kept)
    x, _y = ds.arrays("test", image_size=(8, 8), channels=1, dedup=True)
    assert len(x) == len(kept)
    n = sum(int(b[0].shape[0]) for b in ds.pipeline("test", image_size=(8, 8), channels=1, dedup=True))
    assert n == len(kept)
    summary = ds.summary()
    assert summary.duplicates.test_in_train == 2
    assert summary.to_dict()["duplicates"] == {"test_in_train": 2}  # the JSON key of run specs
    assert summary.groups is None  # folder layouts have no groups


def test_carved_val_never_splits_exact_duplicates(leaky_dir: Path) -> None:
    for seed in range(5):
        ds = Dataset(leaky_dir, seed=seed, progress=False)
        names = {Path(p).name: s for s in ("train", "val") for p in ds.paths(s) if "meningioma" in p}
        assert names["img003.png"] == names["img003_again.png"]


def test_audit_report_json_keys_and_duplicates(leaky_dir: Path) -> None:
    ds = Dataset(leaky_dir, val_fraction=0.0, progress=False)
    rep = ds.audit(progress=False).to_dict()
    json.dumps(rep)  # JSON-able
    assert {"images", "skipped", "classes", "duplicates", "sizes", "modes"} <= set(rep)
    assert rep["images"] == len(ds) == 32
    assert rep["classes"]["test"]["meningioma"] == 3
    d = rep["duplicates"]
    cross = [sorted(Path(p).name for p in g) for g in d["exact_cross_split"]]
    assert ["copy_of_tr_glioma0.png", "img000.png"] in cross
    assert ["img001.png", "mislabelled_copy.png"] in cross
    within = [sorted(Path(p).name for p in g) for g in d["exact_within_split"]]
    assert within == [["img003.png", "img003_again.png"]]
    near = [sorted(Path(p).name for p in g) for g in d["near_cross_split"]]
    assert ["img002.png", "near.jpg"] in near
    assert d["test_with_train_copy"] == 2
    assert d["test_with_train_copy_by_class"]["meningioma"] == 1
    conflicts = [sorted(c["labels"]) for c in d["label_conflicts"]]
    assert ["meningioma", "notumor"] in conflicts
    report = ds.audit(progress=False)
    assert report.duplicates.test_with_train_copy == 2 and report.images == 32
    assert AuditReport.from_dict(json.loads(json.dumps(rep))) == report  # JSON round trip
    text = report.format()
    assert "test files with a byte-identical copy in training: 2" in text
    assert "labels disagree: 1" in text
    assert str(report) == text


def test_audit_lists_unreadable_files(kaggle_dir: Path) -> None:
    (kaggle_dir / "Training" / "glioma" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    rep = Dataset(kaggle_dir, progress=False).audit(progress=False).to_dict()
    assert any(s["path"].endswith("broken.png") and s["reason"] for s in rep["skipped"])


def test_phash_is_robust_to_re_encoding_and_separates_different_images() -> None:
    a = pattern(1, 32).astype(np.float32)
    b = np.clip(a * 0.9 + 10, 0, 255)  # contrast/brightness change
    c = pattern(2, 32).astype(np.float32)
    h = phash(np.stack([a, b, c]))
    assert h.dtype == np.uint64
    pairs = {tuple(p) for p in near_pairs(h, 4).tolist()}
    assert (0, 1) in pairs and (0, 2) not in pairs and (1, 2) not in pairs


def test_near_pairs_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    h = rng.integers(0, 2**63, 300, dtype=np.uint64)
    h[150:160] = h[0] ^ np.uint64(0b101)  # 2 bits away from h[0]
    got = {tuple(p) for p in near_pairs(h, 2).tolist()}
    brute = {(i, j) for i in range(300) for j in range(i + 1, 300) if bin(int(h[i]) ^ int(h[j])).count("1") <= 2}
    assert got == brute and len(got) >= 55


def _audit_main(argv: list[str]) -> int:
    """``neuroxai audit ...`` with only the audit command registered (the others are tested elsewhere)."""
    from neuroxai.cli import _audit
    from neuroxai.errors import NeuroxaiError

    parser = argparse.ArgumentParser(prog="neuroxai")
    sub = parser.add_subparsers(dest="command")
    for command in _audit.COMMANDS:
        command.add_to(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except NeuroxaiError as exc:
        print(f"neuroxai audit: error: {exc}", file=sys.stderr)
        return 2


def test_audit_cli_json_and_text(leaky_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _audit_main(["audit", str(leaky_dir), "--format", "json", "--no-progress"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["images"] == 32 and rep["duplicates"]["test_with_train_copy"] == 2
    assert sum(rep["classes"]["val"].values()) == 0  # the CLI audits the splits on disk
    assert rep["groups"] is None
    assert _audit_main(["audit", str(leaky_dir), "--no-progress"]) == 0
    assert "images read: 32" in capsys.readouterr().out
    assert _audit_main(["audit", str(leaky_dir / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_audit_near_threshold_option(leaky_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _audit_main(["audit", str(leaky_dir), "--format", "json", "--near-threshold", "0", "--no-progress"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["duplicates"]["near_threshold"] == 0
    assert rep["images"] == 32 and len(rep["duplicates"]["exact_cross_split"]) == 2


def test_audit_reports_patients_that_straddle_given_splits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = ["path,label,split,patient"]
    for i in range(12):
        write_image(tmp_path / f"{i}.png", pattern(i))
        split = "test" if i in (0, 5) else "train"  # patient p0 has slices 0..3: one in test, three in train
        rows.append(f"{i}.png,{'ab'[i % 2]},{split},p{i // 4}")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    ds = Dataset(tmp_path / "m.csv", val_fraction=0.0, progress=False)
    report = ds.audit(progress=False)
    assert report.groups is not None and report.groups.column == "patient" and report.groups.groups == 3
    assert [(g.group, g.counts) for g in report.groups.straddling] == [
        ("p0", {"train": 3, "test": 1}),
        ("p1", {"train": 3, "test": 1}),
    ]
    assert ds.summary().groups == report.groups
    assert "patients on more than one side of the splits: 2" in report.format()
    assert _audit_main(["audit", str(tmp_path / "m.csv"), "--format", "json", "--no-progress"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["groups"]["straddling"][0] == {"group": "p0", "counts": {"train": 3, "test": 1}}
