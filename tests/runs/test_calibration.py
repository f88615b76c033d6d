"""Calibration, selective prediction and conformal sets: the numpy layer (neuroxai.runs._calibration)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuroxai.errors import DataError
from neuroxai.runs import expected_calibration_error
from neuroxai.runs._calibration import (
    Calibration,
    CalibrationReport,
    all_classified_right,
    brier_score,
    calibrate,
    calibration_metrics,
    classwise_ece,
    conformal_metrics,
    conformal_scores,
    conformal_threshold,
    coverage_threshold,
    evaluate_calibration,
    fit_temperature,
    log_probabilities,
    negative_log_likelihood,
    prediction_sets,
    refer,
    reliability_bins,
    risk_coverage,
    softmax,
    stored_scores,
)

SEEDS = st.integers(0, 2**31 - 1)


def sampled_labels(rng, proba):
    """One label per row drawn from its probabilities (vectorised inverse CDF)."""
    u = rng.random((len(proba), 1))
    return np.minimum((u > np.cumsum(proba, axis=1)).sum(axis=1), proba.shape[1] - 1)


def synthetic(seed, n=4000, k=4, scale=2.0):
    """Logits whose softmax is the true label distribution (a perfectly calibrated model at T = 1)."""
    rng = np.random.default_rng(seed)
    z = scale * rng.normal(size=(n, k))
    return sampled_labels(rng, softmax(z)), z


# ------------------------------------------------------------------------------------------ temperature scaling
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_temperature_scaling_lowers_nll_of_an_over_confident_model(seed):
    y, z = synthetic(seed)
    over = 3.0 * z  # the same ranking, three times too sure
    t = fit_temperature(y, over)
    assert 2.6 < t < 3.4
    assert negative_log_likelihood(y, over, t) < negative_log_likelihood(y, over) - 0.1
    before, after = softmax(over), softmax(over, t)
    assert expected_calibration_error(y, after) < expected_calibration_error(y, before)
    assert brier_score(y, after) < brier_score(y, before)
    np.testing.assert_array_equal(after.argmax(axis=1), before.argmax(axis=1))  # never changes a prediction


def test_an_under_confident_model_gets_a_temperature_below_one():
    y, z = synthetic(3)
    assert 0.4 < fit_temperature(y, 0.5 * z) < 0.6


@settings(max_examples=40, deadline=None, derandomize=True)
@given(seed=SEEDS, scale=st.floats(0.2, 5.0), k=st.integers(2, 6))
def test_the_fitted_temperature_is_the_nll_minimum(seed, scale, k):
    y, z = synthetic(seed, n=300, k=k, scale=scale)
    t = fit_temperature(y, z)
    best = negative_log_likelihood(y, z, t)
    for other in (t * 0.9, t * 0.99, t * 1.01, t * 1.1):
        assert best <= negative_log_likelihood(y, z, other) + 1e-12


def test_log_probabilities_are_logits_for_temperature_scaling():
    y, z = synthetic(4, n=500)
    logp = log_probabilities(softmax(z).astype(np.float32))
    np.testing.assert_allclose(softmax(logp, 2.5), softmax(z, 2.5), atol=1e-6)
    assert fit_temperature(y, logp) == pytest.approx(fit_temperature(y, z), rel=1e-4)


def test_a_model_right_with_huge_margins_stops_at_the_smallest_temperature():
    y = np.array([0, 1, 2, 0])
    z = 50.0 * np.eye(3)[y]
    assert fit_temperature(y, z, bounds=(0.05, 20.0)) == pytest.approx(0.05)


def test_a_validation_split_classified_all_right_keeps_temperature_one():
    # the NLL of a split with no mistake falls without end as T -> 0: the search would sharpen to its bound (0.05)
    # and make every later mistake near-certain
    y = np.array([0, 1, 2, 0, 1, 2])
    z = np.eye(3)[y] * 2.0 + 0.1
    assert all_classified_right(y, z) and fit_temperature(y, z) == pytest.approx(0.05)
    cal = calibrate(y, z)
    assert cal.temperature == 1.0 and cal.nll_after == pytest.approx(cal.nll_before)
    wrong = z.copy()
    wrong[0] = [0.0, 3.0, 0.0]  # one mistake: a temperature is fitted again
    assert not all_classified_right(y, wrong) and calibrate(y, wrong).temperature != 1.0
    assert not all_classified_right(np.zeros(0, int), np.zeros((0, 3)))


def test_calibrate_records_temperature_and_sorted_conformal_scores():
    y, z = synthetic(5, n=800)
    cal = calibrate(y, 2.0 * z)
    assert cal.nll_after < cal.nll_before and cal.n == 800 and cal.split == "val"
    assert len(cal.lac_scores) == len(cal.aps_scores) == 800
    assert list(cal.lac_scores) == sorted(cal.lac_scores)
    assert Calibration.from_dict(cal.to_dict()) == cal
    exact = np.sort(conformal_scores(y, softmax(2.0 * z, cal.temperature), "lac"))
    assert np.all(np.asarray(cal.lac_scores) >= exact) and np.all(np.asarray(cal.lac_scores) - exact <= 1.0001e-6)
    with pytest.raises(DataError, match="validation split"):
        calibrate([], np.zeros((0, 3)))


# ------------------------------------------------------------------------------------------ calibration metrics
@settings(max_examples=30, deadline=None, derandomize=True)
@given(seed=SEEDS, n_bins=st.integers(2, 20))
def test_reliability_bins_are_the_bins_of_the_ece(seed, n_bins):
    y, z = synthetic(seed, n=200, k=3)
    p = softmax(1.7 * z)
    bins = reliability_bins(y, p, n_bins)
    assert sum(bins.counts) == 200 and len(bins.edges) == n_bins + 1
    ece = sum(c / 200 * abs(a - f) for c, a, f in zip(bins.counts, bins.accuracy, bins.confidence) if c)
    assert ece == pytest.approx(expected_calibration_error(y, p, n_bins), abs=1e-9)
    for c, a, f in zip(bins.counts, bins.accuracy, bins.confidence):
        assert (a is None) == (f is None) == (c == 0)


def test_classwise_ece_and_brier_against_their_definitions():
    y, z = synthetic(6, n=300, k=3)
    p = softmax(2.0 * z)
    onehot = np.eye(3)[y]
    per_class = []
    for k in range(3):  # ECE of p_k against [y = k], with the same right-closed bins
        b = np.clip(np.ceil(p[:, k] * 15).astype(int) - 1, 0, 14)
        per_class.append(sum(abs(onehot[b == i, k].sum() - p[b == i, k].sum()) for i in range(15)) / 300)
    assert classwise_ece(y, p) == pytest.approx(np.mean(per_class), abs=1e-9)
    assert brier_score(y, p) == pytest.approx(np.mean(np.sum((p - onehot) ** 2, axis=1)))
    perfect = calibration_metrics([0, 1], [[1.0, 0.0], [0.0, 1.0]])
    assert perfect.ece == perfect.classwise_ece == perfect.brier == 0.0 and perfect.nll == pytest.approx(0.0)


# ------------------------------------------------------------------------------------------ selective prediction
@settings(max_examples=40, deadline=None, derandomize=True)
@given(seed=SEEDS, n=st.integers(1, 60))
def test_aurc_is_the_mean_risk_over_coverages_for_distinct_confidences(seed, n):
    y, z = synthetic(seed, n=n, k=3)
    p = softmax(z)
    rc = risk_coverage(y, p)
    order = np.argsort(-p.max(axis=1))
    wrong = (p.argmax(axis=1) != y)[order]
    risks = [wrong[: k + 1].mean() for k in range(n)]
    assert rc.aurc == pytest.approx(np.mean(risks))
    assert rc.aurc >= rc.aurc_optimal - 1e-12 and rc.eaurc == pytest.approx(rc.aurc - rc.aurc_optimal)
    assert rc.coverage[-1] == 1.0 and rc.risk[-1] == pytest.approx(wrong.mean())


def test_a_perfect_ranking_reaches_the_optimal_aurc_and_ties_share_one_point():
    y = np.array([0, 0, 1, 1])
    p = np.array([[0.9, 0.1], [0.8, 0.2], [0.35, 0.65], [0.6, 0.4]])  # the one wrong is the least confident
    rc = risk_coverage(y, p)
    assert rc.eaurc == pytest.approx(0.0) and rc.aurc == pytest.approx(0.25 / 4)
    tied = risk_coverage([0, 1, 0], [[0.7, 0.3], [0.7, 0.3], [0.6, 0.4]])
    assert tied.coverage == (2 / 3, 1.0) and tied.risk == (0.5, 1 / 3)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    conf=st.lists(st.sampled_from([0.3, 0.5, 0.5, 0.7, 0.9, 0.99, 1.0]) | st.floats(0.0, 1.0), min_size=1, max_size=80),
    coverage=st.floats(0.01, 0.99),
)
def test_referral_never_refers_more_than_asked(conf, coverage):
    c = np.asarray(conf)
    t = coverage_threshold(c, coverage)
    referred = c < t
    assert referred.sum() <= math.floor((1 - coverage) * c.size + 1e-9)  # at most the fraction given up
    if referred.any():
        assert c[referred].max() < c[~referred].min()  # only the least confident are referred
    p = np.stack([c, 1 - c], axis=1)
    top = p.max(axis=1)
    by_p = refer(p, below=coverage)
    assert not by_p[top >= coverage].any() and by_p[top < coverage].all()  # refer-below P refers only under P


def test_accuracy_at_coverage_keeps_at_least_the_coverage_asked():
    y, z = synthetic(7, n=1000)
    rc = risk_coverage(y, softmax(z))
    p90, p95 = rc.at
    assert p90.target == 0.9 and p95.target == 0.95
    assert p90.coverage >= 0.9 and p95.coverage >= 0.95
    assert p90.accuracy >= p95.accuracy >= 1 - rc.risk[-1] - 1e-12  # fewer, surer predictions are more often right
    assert rc.accuracy_at(0.95) == p95.accuracy and rc.accuracy_at(0.5) is None


def test_bad_thresholds_are_refused_with_the_value_named():
    with pytest.raises(DataError, match="between 0 and 1"):
        refer([[0.5, 0.5]], below=1.5)
    with pytest.raises(DataError, match="strictly between 0 and 1"):
        conformal_threshold([0.1, 0.2], 1.0)
    with pytest.raises(DataError, match="Unknown conformal method 'raps'"):
        prediction_sets([[0.5, 0.5]], 0.5, "raps")


# ------------------------------------------------------------------------------------------ conformal sets
@settings(max_examples=60, deadline=None, derandomize=True)
@given(seed=SEEDS, n=st.integers(5, 120), coverage=st.floats(0.5, 0.99), method=st.sampled_from(["lac", "aps"]))
def test_conformal_coverage_over_every_leave_one_out_split_is_the_finite_sample_value(seed, n, coverage, method):
    """Exchangeability made exact: over the n + 1 ways to hold one sample out, coverage is ceil((n+1)c) / (n+1)."""
    rng = np.random.default_rng(seed)
    p = softmax(rng.normal(size=(n + 1, 4)) * 2.0)
    y = rng.integers(0, 4, n + 1)  # even labels unrelated to the model: the guarantee is distribution-free
    scores = conformal_scores(y, p, method)
    assert np.unique(scores).size == n + 1  # distinct scores (continuous probabilities)
    covered = 0
    for i in range(n + 1):
        q = conformal_threshold(np.delete(scores, i), coverage)
        covered += bool(prediction_sets(p[i : i + 1], q, method)[0, y[i]])
    k = math.ceil((n + 1) * coverage - 1e-9)
    assert covered / (n + 1) == pytest.approx(min(k, n + 1) / (n + 1))
    assert coverage - 1e-12 <= covered / (n + 1) <= coverage + 1 / (n + 1) + 1e-12


@settings(max_examples=40, deadline=None, derandomize=True)
@given(seed=SEEDS, n=st.integers(50, 500), coverage=st.sampled_from([0.8, 0.9, 0.95]), method=st.sampled_from(["lac", "aps"]))
def test_conformal_coverage_on_fresh_exchangeable_data_is_within_the_finite_sample_bound(seed, n, coverage, method):
    """Many seeds: calibrate on n samples, test on 4000 more of the same distribution (an over-confident model)."""
    rng = np.random.default_rng(seed)
    m = 4000
    z = rng.normal(size=(n + m, 4)) * 2.0
    y = sampled_labels(rng, softmax(z))
    p = softmax(3.0 * z)  # miscalibrated: the guarantee does not need calibration
    result = conformal_metrics(y[n:], p[n:], conformal_scores(y[:n], p[:n], method), coverage, method)
    k = math.ceil((n + 1) * coverage - 1e-9)
    # Coverage given the calibration set is Beta(k, n + 1 - k) around k / (n + 1), in [c, c + 1/(n+1)); plus test noise.
    a, b = k, n + 1 - k
    sd = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)) + coverage * (1 - coverage) / m)
    assert coverage - 5 * sd <= result.coverage <= coverage + 1 / (n + 1) + 5 * sd
    assert 0.0 <= result.mean_set_size <= 4.0 and sum(result.set_sizes) == m


def test_mean_coverage_over_many_seeds_sits_inside_the_bound():
    n, m, coverage, runs = 100, 500, 0.9, 200
    got = []
    for seed in range(runs):
        rng = np.random.default_rng(seed)
        z = rng.normal(size=(n + m, 3)) * 1.5
        y = sampled_labels(rng, softmax(z))
        p = softmax(z)
        got.append(conformal_metrics(y[n:], p[n:], conformal_scores(y[:n], p[:n]), coverage).coverage)
    k = math.ceil((n + 1) * coverage)
    assert abs(np.mean(got) - k / (n + 1)) < 4 * np.std(got) / math.sqrt(runs)
    assert coverage - 0.005 < np.mean(got) < coverage + 1 / (n + 1) + 0.005


@settings(max_examples=40, deadline=None, derandomize=True)
@given(seed=SEEDS, q1=st.floats(0.0, 1.0), q2=st.floats(0.0, 1.0), method=st.sampled_from(["lac", "aps"]))
def test_sets_hold_exactly_the_classes_whose_score_is_under_the_threshold_and_grow_with_it(seed, q1, q2, method):
    rng = np.random.default_rng(seed)
    p = softmax(rng.normal(size=(30, 5)) * 2.0)
    lo, hi = min(q1, q2), max(q1, q2)
    small, large = prediction_sets(p, lo, method), prediction_sets(p, hi, method)
    assert not (small & ~large).any()  # nested
    for k in range(5):  # consistent with the score of each class taken as the label
        np.testing.assert_array_equal(small[:, k], conformal_scores(np.full(30, k), p, method) <= lo)
    if method == "aps":  # APS sets are the top classes by probability, in order
        order = np.argsort(-p, axis=1, kind="stable")
        in_order = np.take_along_axis(large, order, axis=1)
        assert not (in_order[:, 1:] & ~in_order[:, :-1]).any()


def test_too_few_calibration_samples_give_every_class():
    assert conformal_threshold([0.1, 0.2, 0.3], 0.9) == math.inf  # ceil(4 * 0.9) = 4 > 3
    result = conformal_metrics([0, 1], [[0.6, 0.4], [0.3, 0.7]], [0.1, 0.2, 0.3], 0.9)
    assert result.threshold is None and result.mean_set_size == 2.0 and result.coverage == 1.0


def test_stored_scores_round_up():
    assert stored_scores([0.1234561, 0.5, 0.2]) == (0.123457, 0.2, 0.5)  # sorted, 6 decimals, never below the score


# ------------------------------------------------------------------------------------------ a split's report
def test_evaluate_calibration_reports_before_after_sets_and_dedup():
    y, z = synthetic(8, n=1500)
    over = 2.5 * z
    cal = calibrate(y[:500], over[:500])
    report = evaluate_calibration(y[500:], over[500:], cal, duplicates=np.arange(100), coverage=0.9)
    m = report.metrics
    assert report.temperature == cal.temperature and report.n_calibration == 500 and report.removed_duplicates == 100
    assert m.n == 1000 and report.dedup is not None and report.dedup.n == 900 and report.headline() is report.dedup
    assert m.after is not None and m.after.nll < m.before.nll and m.after.ece < m.before.ece
    assert [c.method for c in m.conformal] == ["lac", "aps"]
    lac = m.conformal_for("lac")
    assert lac is not None and abs(lac.coverage - 0.9) < 0.05
    assert CalibrationReport.from_dict(report.to_dict()) == report
    plain = evaluate_calibration(y, over, None)
    assert plain.temperature is None and plain.metrics.after is None and plain.metrics.conformal == ()
