"""Integration test over the real Kaggle brain MRI dataset (env NEUROXAI_DATA; skipped without it)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from neuroxai.data import Dataset

DATA = os.environ.get("NEUROXAI_DATA")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (DATA and os.path.isdir(DATA)), reason="set NEUROXAI_DATA to the brain-tumor-mri folder"),
]


@pytest.fixture(scope="module")
def real() -> Dataset:
    return Dataset(DATA, progress=False)  # type: ignore[arg-type]


def test_reads_7019_images_and_skips_the_checkpoint_folder(real: Dataset) -> None:
    assert len(real) == 7019
    assert real.class_names == ("glioma", "meningioma", "notumor", "pituitary")
    c = real.counts()
    assert {k: c["train"][k] + c["val"][k] for k in real.class_names} == {
        "glioma": 1321,
        "meningioma": 1339,
        "notumor": 1591,
        "pituitary": 1457,
    }
    assert c["test"] == {"glioma": 300, "meningioma": 306, "notumor": 405, "pituitary": 300}
    ck = [s for s in real.skipped if Path(s.path).name == ".ipynb_checkpoints"]
    assert len(ck) == 1 and "hidden folder" in ck[0].reason
    assert not any(".ipynb_checkpoints" in p for s in ("train", "val", "test") for p in real.paths(s))


def test_217_test_files_have_a_byte_identical_copy_in_training(real: Dataset) -> None:
    # 216 test samples duplicate a Training image; the 217th file the README counts is the stray
    # .ipynb_checkpoints copy of Te-me_0011.jpg, which is debris, not a sample.
    dup = real.duplicate_test_indices()
    assert len(dup) == 216
    names = [Path(real.paths("test")[i]) for i in dup]
    by_class = {c: sum(p.parent.name == c for p in names) for c in real.class_names}
    assert by_class == {"glioma": 0, "meningioma": 106, "notumor": 105, "pituitary": 5}
    train_digests = {
        hashlib.blake2b(Path(p).read_bytes(), digest_size=16).hexdigest() for s in ("train", "val") for p in real.paths(s)
    }
    ck = Path(DATA, "Testing", "meningioma", ".ipynb_checkpoints")  # type: ignore[arg-type]
    stray = [f for f in ck.iterdir() if hashlib.blake2b(f.read_bytes(), digest_size=16).hexdigest() in train_digests]
    assert len(dup) + len(stray) == 217
    assert len(real.labels("test", dedup=True)) == 1311 - 216


def test_audit_json_on_real_data(real: Dataset) -> None:
    rep = real.audit(progress=False).to_dict()
    assert rep["images"] == 7019
    assert rep["duplicates"]["test_with_train_copy"] == 216
    assert rep["duplicates"]["distinct_images"] == 6593
    assert rep["sizes"] == {"224x224": 7019}
    assert len(rep["duplicates"]["exact_cross_split"]) > 0 and len(rep["duplicates"]["near_cross_split"]) > 0
    x, _y = next(iter(real.pipeline("train", image_size=(64, 64), channels=3, batch_size=8, cache=False)))
    assert x.shape == (8, 64, 64, 3)
