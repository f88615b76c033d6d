"""One answer per volume: the rule on known probabilities, and a trained CNN on stacks of phantom slices."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from volume_helpers import CLASSES, EMPTY, TEST_SLICE_THRESHOLD, fixed_window, phantom_stack, write_phantom_nifti

from neuroxai.errors import DataError
from neuroxai.volumes import predict_volume, slice_ranges, volume_answer

GLIOMA, MENINGIOMA, NOTUMOR = range(3)


def test_top_k_rule_answers_the_strongest_tumour_class_over_its_top_slices():
    p = np.array([[0.9, 0.05, 0.05], [0.7, 0.1, 0.2], [0.2, 0.1, 0.7], [0.5, 0.4, 0.1], [0.1, 0.6, 0.3]])
    rule = volume_answer(p, [10, 11, 12, 13, 14], CLASSES, rule="top-k", top_k=2)
    assert rule.answer == "glioma"
    assert rule.evidence == pytest.approx({"glioma": 0.8, "meningioma": 0.5})  # no evidence for the no-tumour class
    assert rule.carried_by == (10, 11)  # the slices behind the answer, most confident first
    assert rule.no_tumour == "notumor" and rule.threshold == 0.5


def test_top_k_rule_says_no_tumour_below_the_threshold_and_names_the_closest_slices():
    p = np.array([[0.3, 0.1, 0.6], [0.45, 0.05, 0.5], [0.1, 0.1, 0.8]])
    rule = volume_answer(p, [3, 4, 5], CLASSES, rule="top-k", top_k=3, threshold=0.5)
    assert rule.answer == "notumor"
    assert rule.evidence["glioma"] == pytest.approx(0.85 / 3)  # fewer slices than top_k would be fine too
    assert rule.carried_by == (4, 3, 5)
    assert volume_answer(p, [3, 4, 5], CLASSES, rule="top-k", top_k=1, threshold=0.4).answer == "glioma"  # one slice


def test_top_k_rule_without_a_no_tumour_class_takes_the_best_class():
    p = np.array([[0.2, 0.8], [0.3, 0.7]])
    rule = volume_answer(p, [0, 1], ["benign", "malignant"], rule="top-k")  # no no-tumour class: no threshold
    assert (rule.answer, rule.no_tumour, rule.threshold) == ("malignant", None, None)
    assert set(rule.evidence) == {"benign", "malignant"}
    with pytest.raises(DataError, match="no_tumor"):  # a name given on purpose must exist
        volume_answer(p, [0, 1], ["benign", "malignant"], no_tumour="no_tumor")


# ---------------------------------------------------------------------------------------------------- rule "consistent"
def _probabilities(rows: list[tuple[int, float]]) -> np.ndarray:
    """One row per slice: (class, its probability), the rest spread evenly over the other two classes."""
    p = np.zeros((len(rows), 3))
    for i, (k, q) in enumerate(rows):
        p[i] = (1.0 - q) / 2
        p[i, k] = q
    return p


def test_consistent_rule_needs_adjacent_confident_slices():
    rows = [(NOTUMOR, 0.9)] * 3 + [(GLIOMA, 0.95), (GLIOMA, 0.99), (GLIOMA, 0.97)] + [(NOTUMOR, 0.9)] * 2
    rule = volume_answer(_probabilities(rows), range(20, 28), CLASSES)
    assert rule.rule == "consistent" and rule.answer == "glioma"
    assert rule.carried_by == (24, 25, 23)  # the run behind the answer, most confident first
    assert rule.support == {"glioma": 3, "meningioma": 0} and rule.evidence["glioma"] == pytest.approx(0.97)
    assert "glioma on 3 adjacent slices (23-25)" in rule.reason

    scattered = [(GLIOMA, 0.99), (NOTUMOR, 0.9)] * 4  # as confident, but never two slices side by side
    rule = volume_answer(_probabilities(scattered), range(8), CLASSES)
    assert rule.answer == "notumor" and rule.support["glioma"] == 1
    assert "longest tumour run 1 slice(s) (glioma), 3 needed" in rule.reason
    assert rule.carried_by[0] in (0, 2, 4, 6)  # the slices that came closest, for a reader to check

    gap = [(GLIOMA, 0.99), (GLIOMA, 0.99), (GLIOMA, 0.99)]
    assert volume_answer(_probabilities(gap), [4, 5, 7], CLASSES).answer != "glioma"  # slice 6 missing: not adjacent


def test_consistent_rule_refers_when_evidence_is_weak_either_way():
    rows = [(GLIOMA, 0.8), (MENINGIOMA, 0.8)] * 3  # tumour everywhere, never confident enough, never one class
    rule = volume_answer(_probabilities(rows), range(6), CLASSES)
    assert rule.answer == "refer" and "too little consistent evidence" in rule.reason
    assert rule.support == {"glioma": 0, "meningioma": 0}


def test_slices_outside_what_the_model_knows_are_set_aside():
    rows = [(NOTUMOR, 0.95)] * 4 + [(MENINGIOMA, 0.99)] * 3 + [(NOTUMOR, 0.95)] * 3
    p = _probabilities(rows)
    assert volume_answer(p, range(10), CLASSES).answer == "meningioma"
    ood = np.zeros(10, bool)
    ood[4:7] = True  # the confident meningioma slices look like nothing in the training data
    rule = volume_answer(p, range(10), CLASSES, ood=ood)
    assert rule.answer == "notumor" and rule.set_aside == (4, 5, 6)
    assert "3 of 10 brain slices set aside as unlike the training data" in rule.reason

    ood[:] = True
    ood[:2] = False  # most of the scan looks like nothing the model was trained on: refer it whole
    rule = volume_answer(p, range(10), CLASSES, ood=ood)
    assert rule.answer == "refer" and rule.carried_by == () and "8 of 10 brain slices are unlike" in rule.reason
    rule = volume_answer(p, range(10), CLASSES, ood=ood, max_aside=1.0)  # two known slices: too few to judge
    assert rule.answer == "refer" and "only 2 of 10 brain slices" in rule.reason
    assert volume_answer(p, range(10), CLASSES, ood=ood, max_aside=1.0, min_known=2).answer == "notumor"
    ood[:] = False
    ood[:5] = True  # half set aside is not more than half: the other half decides
    assert volume_answer(p, range(10), CLASSES, ood=ood).answer == "notumor"


def test_consistent_rule_without_a_no_tumour_class():
    p = np.array([[0.05, 0.95]] * 3 + [[0.6, 0.4]])
    assert volume_answer(p, range(4), ["benign", "malignant"]).answer == "malignant"
    rule = volume_answer(p[1:], range(3), ["benign", "malignant"], min_run=4)
    assert rule.answer == "refer" and rule.no_tumour is None


@settings(max_examples=60, deadline=None)
@given(
    confident=st.lists(st.sampled_from([GLIOMA, MENINGIOMA, NOTUMOR]), min_size=1, max_size=14),
    aside=st.lists(st.booleans(), min_size=14, max_size=14),
)
def test_setting_slices_aside_never_creates_a_tumour_answer(confident, aside):
    p = _probabilities([(k, 0.97) for k in confident])
    flags = np.asarray(aside[: len(confident)])
    with_ood = volume_answer(p, range(len(p)), CLASSES, ood=flags)
    without = volume_answer(p, range(len(p)), CLASSES)
    if with_ood.answer in ("glioma", "meningioma"):
        # a run among the known slices is a run among all slices: the same class is supported at least as long
        assert without.support[with_ood.answer] >= with_ood.support[with_ood.answer] >= 3
    assert set(with_ood.set_aside) == {i for i, f in enumerate(flags) if f}


def test_rule_with_no_slices_gives_no_answer_and_checks_settings():
    rule = volume_answer(np.zeros((0, 3)), [], CLASSES)
    assert rule.answer is None and rule.carried_by == () and rule.evidence == {}
    bad_settings = (
        {"top_k": 0},
        {"threshold": 1.5},
        {"threshold": float("nan")},
        {"min_run": 0},
        {"slice_threshold": -0.1},
        {"min_known": 0},
        {"max_aside": 1.5},
        {"rule": "majority"},
    )
    for bad in bad_settings:
        with pytest.raises(DataError):
            volume_answer(np.zeros((1, 3)), [0], CLASSES, **bad)
    assert slice_ranges([0, 1, 2, 7, 9, 10]) == "0-2|7|9-10" and slice_ranges([]) == ""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("tumour", "expected"), [(GLIOMA, "glioma"), (MENINGIOMA, "meningioma"), (NOTUMOR, "notumor")], ids=CLASSES
)
def test_trained_cnn_gives_the_right_answer_for_a_stack_of_phantoms(predictor, tmp_path, tumour, expected):
    from neuroxai.data import read_volume

    labels = [EMPTY, NOTUMOR, NOTUMOR, tumour, tumour, tumour, tumour, NOTUMOR, NOTUMOR, EMPTY]
    stack, _ = phantom_stack(labels, seed=5 + tumour)
    write_phantom_nifti(tmp_path / "scan.nii.gz", stack)
    volume = read_volume(tmp_path / "scan.nii.gz", window=fixed_window())
    pred = predict_volume(predictor, volume, batch_size=4, slice_threshold=TEST_SLICE_THRESHOLD)

    assert pred.answer == expected, pred.summary()
    assert pred.n_slices == 10 and pred.slices == tuple(range(1, 9)) and pred.skipped == (0, 9)  # blank slices not classified
    assert pred.probabilities.shape == (8, 3) and np.allclose(pred.probabilities.sum(axis=1), 1, atol=1e-5)
    if expected != "notumor":
        assert set(pred.carried_by) <= {3, 4, 5, 6}  # the answer rests on the tumour slices
        assert pred.evidence[expected] >= 0.5
    assert expected in pred.summary() and "8 of 10 slices classified" in pred.summary()
    assert pred.to_dict()["rule"]["answer"] == expected  # a record: JSON at the file boundary


def test_a_volume_of_empty_slices_is_all_skipped_with_a_clear_result(predictor):
    from neuroxai.data import Volume

    volume = Volume(
        source="blank.nii.gz",
        name="blank",
        series=None,
        voxels=np.zeros((6, 40, 40), np.float32),
        affine=np.eye(4),
        source_shape=(6, 40, 40),
        window=(0.0, 1.0),
    )
    pred = predict_volume(predictor, volume)
    assert pred.answer is None and pred.slices == () and pred.skipped == tuple(range(6))
    assert pred.probabilities.shape == (0, 3) and pred.carried_by == ()
    assert "no answer" in pred.summary() and "foreground test" in pred.summary()


@pytest.mark.parametrize("channels", [1, 3])
def test_the_model_sees_the_slices_converted_like_images(channels):
    from neuroxai.data import to_model_input
    from neuroxai.volumes import model_slices

    rng = np.random.default_rng(0)
    slices = rng.integers(0, 256, (5, 40, 44), dtype=np.uint8)
    got = model_slices(slices, (32, 32, channels), (0.0, 255.0), batch_size=2)  # in chunks, resized, in range
    assert got.shape == (5, 32, 32, channels) and got.dtype == np.float32
    assert np.array_equal(got, to_model_input(list(slices), (32, 32), channels, (0.0, 255.0)))
