"""The real figshare manifest (path,label,mask,patient), read as it is and split by patient.

Reads ``NEUROXAI_FIGSHARE`` (the figshare-brain-tumor folder); skipped without it.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from neuroxai.data import Dataset

FIGSHARE = os.environ.get("NEUROXAI_FIGSHARE")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (FIGSHARE and os.path.isfile(os.path.join(FIGSHARE, "manifest.csv"))),
        reason="set NEUROXAI_FIGSHARE to the figshare-brain-tumor folder",
    ),
]


@pytest.fixture(scope="module")
def figshare() -> Dataset:
    return Dataset(Path(FIGSHARE, "manifest.csv"), progress=False)  # type: ignore[arg-type]  # the skipif above guarantees a path


def test_manifest_loads_as_it_is(figshare: Dataset) -> None:
    assert len(figshare) == 3064 and not figshare.skipped
    assert figshare.class_names == ("glioma", "meningioma", "pituitary")
    total = {c: sum(figshare.counts()[s][c] for s in ("train", "val", "test")) for c in figshare.class_names}
    assert total == {"glioma": 1426, "meningioma": 708, "pituitary": 930}
    assert figshare.has_masks and all(figshare.mask_available(s).all() for s in ("train", "val", "test"))
    summary = figshare.summary()
    assert summary.groups is not None and summary.groups.column == "patient"
    assert summary.groups.groups == 233 and summary.groups.ungrouped == 0


def test_splits_are_patient_disjoint_and_stratified(figshare: Dataset) -> None:
    sides: dict[str | None, set[str]] = defaultdict(set)
    for split in ("train", "val", "test"):
        for g in figshare.groups(split):
            sides[g].add(split)
    assert None not in sides and len(sides) == 233
    assert all(len(s) == 1 for s in sides.values())
    summary = figshare.summary()
    assert summary.groups is not None and summary.groups.straddling == ()
    assert sum(summary.groups.per_split.values()) == 233
    for split in ("val", "test"):
        for c in figshare.class_names:
            n = sum(figshare.counts()[s][c] for s in ("train", "val", "test"))
            assert abs(figshare.counts()[split][c] / n - 0.15) < 0.03, (split, c)
    report = figshare.audit(progress=False)
    assert report.groups == summary.groups
    assert "patients on more than one side of the splits: 0" in report.format()


def test_masks_are_small_tumour_outlines(figshare: Dataset) -> None:
    x, _y, masks = figshare.arrays("test", image_size=(64, 64), channels=1, with_masks=True)
    assert x.shape[0] == masks.shape[0] == len(figshare.labels("test"))
    coverage = masks.reshape(len(masks), -1).mean(axis=1)
    assert (coverage > 0).mean() > 0.95  # nearly every slice has a tumour outline at 64 px
    assert 0.005 < float(np.mean(coverage)) < 0.05  # about 1.7 % of the image (README)
