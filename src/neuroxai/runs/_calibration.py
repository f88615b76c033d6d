"""Calibration, selective prediction and conformal prediction sets: the math, on numpy arrays.

Everything here works on labels ``y`` (integers ``[N]``) and scores
(logits or probabilities ``[N, K]``); nothing touches a model, so every
function is cheap to test on synthetic data. Model-facing code (predicting
the validation split, test-time augmentation) lives in
:mod:`neuroxai.runs._uncertainty`.

- **Temperature scaling** (Guo et al. 2017): one scalar ``T`` divides the
  logits; fitted by minimising the negative log-likelihood (NLL) on held-out
  data (:func:`fit_temperature`). It never changes the predicted class.
- **Calibration metrics** (:func:`calibration_metrics`): ECE with equal-width
  bins (the same bins as :func:`~neuroxai.runs.expected_calibration_error`),
  classwise ECE (Kull et al. 2019), multiclass Brier score, NLL, and the
  reliability-diagram bins.
- **Selective prediction** (:func:`risk_coverage`): the risk-coverage curve
  of the top-class confidence, its area (AURC, Geifman et al. 2019) and the
  accuracy when only the most confident fraction is kept;
  :func:`refer` / :func:`coverage_threshold` choose what to refer.
- **Split-conformal prediction sets** (:func:`conformal_threshold`,
  :func:`prediction_sets`): LAC (least ambiguous set-valued classifier,
  Sadinle et al. 2019; score ``1 - p_y``) and APS (adaptive prediction sets,
  Romano et al. 2020; score = probability mass of the classes ranked above
  the true one plus half its own). With ``n`` exchangeable calibration scores the
  threshold is the ``ceil((n + 1)(1 - alpha))``-th smallest, so a new
  sample's set holds its true class with probability at least ``1 - alpha``
  (and, with distinct scores, at most ``1 - alpha + 1 / (n + 1)``).

  **LAC is the default**: it gives the smallest sets on average for a given
  coverage (the property Sadinle et al. prove), and a four-class tumour
  classifier that is right 95% of the time mostly needs singletons; APS
  spreads coverage more evenly over easy and hard images (better
  conditional coverage) at the price of larger sets. APS is used here
  without randomisation (its uniform draw fixed at 1/2), so the same image
  always gets the same set.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from neuroxai._records import Record
from neuroxai.errors import DataError

__all__ = [
    "CONFORMAL_METHODS",
    "DEFAULT_CONFORMAL",
    "ECE_BINS",
    "SELECTIVE_COVERAGES",
    "TEMPERATURE_BOUNDS",
    "Calibration",
    "CalibrationMetrics",
    "CalibrationReport",
    "ConformalMetrics",
    "CoveragePoint",
    "ReliabilityBins",
    "RiskCoverage",
    "UncertaintyMetrics",
    "all_classified_right",
    "brier_score",
    "calibrate",
    "calibration_metrics",
    "classwise_ece",
    "conformal_metrics",
    "conformal_scores",
    "conformal_threshold",
    "coverage_threshold",
    "evaluate_calibration",
    "expected_calibration_error",
    "fit_temperature",
    "log_probabilities",
    "negative_log_likelihood",
    "prediction_sets",
    "refer",
    "reliability_bins",
    "risk_coverage",
    "softmax",
    "stored_scores",
]

#: Number of equal-width confidence bins of the expected calibration error.
ECE_BINS = 15
ConformalMethod = Literal["lac", "aps"]
#: Conformal scores offered: ``"lac"`` (default: smallest sets) and ``"aps"`` (adaptive sets).
CONFORMAL_METHODS: tuple[str, ...] = ("lac", "aps")
DEFAULT_CONFORMAL: ConformalMethod = "lac"
#: The temperature is searched in this range (a fit at either end is reported as such).
TEMPERATURE_BOUNDS = (0.05, 20.0)
#: Coverages at which :func:`risk_coverage` reports the accuracy of the most confident predictions.
SELECTIVE_COVERAGES = (0.9, 0.95)
#: Stored calibration scores are rounded up to this many decimals (rounding up keeps the coverage guarantee).
_SCORE_DECIMALS = 6
#: Log-probabilities below this (a softmax output that underflowed to 0) are clipped to it.
_LOG_FLOOR = math.log(np.finfo(np.float32).tiny)


# --------------------------------------------------------------------------------------------- records
@dataclass(frozen=True)
class Calibration(Record):
    """What a run learnt on its validation split to calibrate and qualify its predictions.

    Stored in the run's ``neuroxai.json`` (:attr:`RunSpec.calibration <neuroxai.runs.RunSpec>`)
    and applied by :func:`neuroxai.load` predictors.

    Attributes:
        temperature: Logits are divided by it before the softmax (``> 1`` softens
            over-confident predictions, ``< 1`` sharpens).
        split: The split it was fitted on (``"val"``).
        n: Samples of that split.
        nll_before: Mean negative log-likelihood there at temperature 1.
        nll_after: The same at :attr:`temperature`.
        ece_before: ECE there at temperature 1.
        ece_after: ECE there at :attr:`temperature`.
        lac_scores: Sorted LAC conformity scores of the split (after temperature
            scaling), rounded up to 6 decimals: the prediction sets of any
            coverage are computed from them.
        aps_scores: The same for APS.
    """

    temperature: float
    split: str
    n: int
    nll_before: float
    nll_after: float
    ece_before: float
    ece_after: float
    lac_scores: tuple[float, ...] = ()
    aps_scores: tuple[float, ...] = ()

    def scores(self, method: str) -> np.ndarray:
        """The stored calibration scores of ``method`` (``"lac"`` or ``"aps"``).

        Raises:
            DataError: Unknown method.
        """
        return np.asarray(self.lac_scores if _method(method) == "lac" else self.aps_scores, dtype=np.float64)

    def threshold(self, method: str, coverage: float) -> float:
        """The conformal threshold of ``method`` for a target ``coverage`` (see :func:`conformal_threshold`)."""
        return conformal_threshold(self.scores(method), coverage)


@dataclass(frozen=True)
class ReliabilityBins(Record):
    """The bins of a reliability diagram (equal-width over the top-class confidence).

    Attributes:
        edges: ``n_bins + 1`` bin edges from 0 to 1 (bins are right-closed).
        counts: Samples per bin.
        accuracy: Fraction right per bin (``None`` for an empty bin).
        confidence: Mean top-class confidence per bin (``None`` for an empty bin).
    """

    edges: tuple[float, ...]
    counts: tuple[int, ...]
    accuracy: tuple[float | None, ...]
    confidence: tuple[float | None, ...]


@dataclass(frozen=True)
class CalibrationMetrics(Record):
    """How well the probabilities of one evaluation set are calibrated.

    Attributes:
        n: Samples.
        ece: Expected calibration error of the top-class confidence.
        classwise_ece: Mean over classes of the ECE of each class's probability (Kull et al. 2019).
        brier: Multiclass Brier score, ``mean(sum_k (p_k - [y = k])^2)`` (0 is perfect, 2 the worst).
        nll: Mean negative log-likelihood of the true class.
        reliability: The reliability-diagram bins of :attr:`ece`.
    """

    n: int
    ece: float
    classwise_ece: float
    brier: float
    nll: float
    reliability: ReliabilityBins


@dataclass(frozen=True)
class CoveragePoint(Record):
    """Selective prediction at one coverage: keep the most confident predictions, refer the rest.

    Attributes:
        target: The coverage asked for.
        threshold: Predictions with a top-class confidence at or above it are kept.
        coverage: The fraction kept (at least ``target``; more where confidences tie).
        accuracy: Accuracy of the kept predictions.
    """

    target: float
    threshold: float
    coverage: float
    accuracy: float


@dataclass(frozen=True)
class RiskCoverage(Record):
    """The risk-coverage curve of the top-class confidence and its area.

    Attributes:
        coverage: Fraction of samples kept, increasing (at most ``max_points`` points of the curve).
        risk: Error rate of the kept samples at each coverage.
        aurc: Area under the full risk-coverage curve (lower is better).
        aurc_optimal: The AURC of a perfect ranking with the same errors (the best reachable).
        eaurc: ``aurc - aurc_optimal`` (excess AURC).
        at: Accuracy at given coverages (:data:`SELECTIVE_COVERAGES` by default).
    """

    coverage: tuple[float, ...]
    risk: tuple[float, ...]
    aurc: float
    aurc_optimal: float
    eaurc: float
    at: tuple[CoveragePoint, ...] = ()

    def accuracy_at(self, coverage: float) -> float | None:
        """The accuracy at a coverage listed in :attr:`at` (``None`` when it was not computed)."""
        for point in self.at:
            if abs(point.target - coverage) < 1e-9:
                return point.accuracy
        return None


@dataclass(frozen=True)
class ConformalMetrics(Record):
    """Split-conformal prediction sets on one evaluation set.

    Attributes:
        method: ``"lac"`` or ``"aps"``.
        target: The coverage asked for (``1 - alpha``).
        threshold: The conformal threshold from the calibration split (``None``: infinite, too few
            calibration samples for the target, so every set holds every class).
        n_calibration: Calibration samples it came from.
        n: Evaluated samples.
        coverage: Fraction of samples whose set holds the true class.
        mean_set_size: Mean number of classes per set.
        singletons: Fraction of sets with exactly one class.
        empty: Fraction of empty sets (no class is plausible enough: refer).
        set_sizes: Number of sets of each size ``0 .. K``.
    """

    method: str
    target: float
    threshold: float | None
    n_calibration: int
    n: int
    coverage: float
    mean_set_size: float
    singletons: float
    empty: float
    set_sizes: tuple[int, ...]


# --------------------------------------------------------------------------------------------- helpers
def _method(method: str) -> ConformalMethod:
    m = str(method).lower()
    if m not in CONFORMAL_METHODS:
        raise DataError(f"Unknown conformal method {method!r}; expected one of {', '.join(CONFORMAL_METHODS)}.")
    return m  # type: ignore[return-value]  # checked just above


def _coverage(coverage: float, what: str = "coverage") -> float:
    c = float(coverage)
    if not 0.0 < c < 1.0:
        raise DataError(f"Expected {what} strictly between 0 and 1 (e.g. 0.95), got {coverage!r}.")
    return c


def _scores2d(scores: Any) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] < 1:
        raise DataError(f"Expected scores of shape (N, num_classes), got {s.shape}.")
    return s


def softmax(logits: Any, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` in float64 (stable for any magnitude)."""
    z = _scores2d(logits) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def _log_softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    z = logits / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    out: np.ndarray = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return out


def log_probabilities(proba: Any) -> np.ndarray:
    """Logits recovered from softmax probabilities: ``log(p)`` (zeros clipped to the float32 floor).

    ``softmax(log(p) / T)`` equals ``softmax(z / T)`` for the logits ``z``
    that gave ``p``, so temperature scaling works on a model that only
    outputs probabilities.
    """
    p = _scores2d(proba)
    with np.errstate(divide="ignore"):
        out: np.ndarray = np.maximum(np.log(p), _LOG_FLOOR)
    return out


def negative_log_likelihood(y_true: Any, logits: Any, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the true class under ``softmax(logits / temperature)``.

    Example:
        >>> round(negative_log_likelihood([0], [[2.0, 0.0]]), 4)
        0.1269
    """
    y, z = _check(y_true, logits)
    if y.size == 0:
        return float("nan")
    logp = _log_softmax(z, temperature)
    return float(-np.mean(logp[np.arange(y.size), y]))


def fit_temperature(y_true: Any, logits: Any, bounds: tuple[float, float] = TEMPERATURE_BOUNDS) -> float:
    """The temperature that minimises the NLL of ``softmax(logits / T)`` on ``(y_true, logits)``.

    The NLL is convex in ``b = 1 / T`` (its second derivative is the
    variance of the logits under the scaled softmax), so a safeguarded
    Newton search on ``b`` (bisection where a Newton step leaves the
    bracket) finds the global minimum in a few steps.

    Args:
        y_true: Integer labels ``[N]``.
        logits: Logits ``[N, K]`` (log-probabilities work too: see :func:`log_probabilities`).
        bounds: Smallest and largest temperature allowed.

    Returns:
        The temperature (``1.0`` for an empty input).

    Raises:
        DataError: Shapes disagree or labels are out of range.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> z = 2.0 * rng.normal(size=(20000, 3))
        >>> y = (rng.random((20000, 1)) > softmax(z).cumsum(axis=1)).sum(axis=1)  # labels drawn from softmax(z)
        >>> round(fit_temperature(y, 3.0 * z), 1)  # logits three times too large need T = 3
        3.0
    """
    y, z = _check(y_true, logits)
    if y.size == 0:
        return 1.0
    z = z - z.max(axis=1, keepdims=True)
    zy = z[np.arange(y.size), y]
    lo, hi = 1.0 / float(bounds[1]), 1.0 / float(bounds[0])

    def derivatives(b: float) -> tuple[float, float]:
        s = b * z
        p = np.exp(s - s.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        mean = (p * z).sum(axis=1)
        var = (p * z * z).sum(axis=1) - mean * mean
        return float(np.mean(mean - zy)), float(np.mean(np.maximum(var, 0.0)))

    if derivatives(lo)[0] >= 0.0:
        return float(1.0 / lo)
    if derivatives(hi)[0] <= 0.0:
        return float(1.0 / hi)
    b = min(max(1.0, lo), hi)
    for _ in range(100):
        g, h = derivatives(b)
        if abs(g) < 1e-12:
            break
        if g > 0:
            hi = b
        else:
            lo = b
        step = b - g / h if h > 0 else math.nan
        new = step if lo <= step <= hi else 0.5 * (lo + hi)  # Newton inside the bracket, else bisection
        converged = abs(new - b) <= 1e-12 * b or hi - lo <= 1e-12 * hi
        b = new
        if converged:
            break
    return float(1.0 / b)


# --------------------------------------------------------------------------------------------- calibration metrics
def _check(y_true: Any, proba: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).astype(np.int64).reshape(-1)
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] != y.shape[0]:
        raise DataError(f"Expected probabilities of shape (N, num_classes) with N = len(y_true) = {y.shape[0]}, got {p.shape}.")
    if y.size and (y.min() < 0 or y.max() >= p.shape[1]):
        raise DataError(f"Expected labels in 0..{p.shape[1] - 1}, got values from {y.min()} to {y.max()}.")
    return y, p


def expected_calibration_error(y_true: Any, proba: Any, n_bins: int = ECE_BINS) -> float:
    """Expected calibration error (ECE) of the top-class confidence.

    Each sample's confidence is its largest predicted probability. Confidences
    are put into ``n_bins`` equal-width bins over [0, 1], right-closed
    (``(0, 1/15], (1/15, 2/15], ... (14/15, 1]``; a confidence of exactly 0
    goes to the first bin). ECE is the sample-weighted mean, over non-empty
    bins, of ``|accuracy(bin) - mean confidence(bin)|``::

        ECE = sum_b |B_b| / N * |acc(B_b) - conf(B_b)|

    Args:
        y_true: Integer labels ``[N]``.
        proba: Predicted probabilities ``[N, K]``.
        n_bins: Number of bins (15 by default, as in Guo et al. 2017).

    Returns:
        The ECE in [0, 1]; ``nan`` for an empty input.

    Raises:
        DataError: Shapes disagree or labels are out of range.

    Example:
        >>> expected_calibration_error([0, 1], [[0.9, 0.1], [0.8, 0.2]])  # conf 0.9 right, 0.8 wrong
        0.45
    """
    y, p = _check(y_true, proba)
    if y.size == 0:
        return float("nan")
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, int(n_bins) + 1)
    bins = np.digitize(conf, edges[1:-1], right=True)  # right-closed bins, 0 .. n_bins-1
    count = np.bincount(bins, minlength=n_bins).astype(np.float64)
    acc = np.bincount(bins, weights=correct, minlength=n_bins)
    cs = np.bincount(bins, weights=conf, minlength=n_bins)
    nz = count > 0
    return float(round(np.sum(np.abs(acc[nz] - cs[nz])) / y.size, 12))


def _bin_index(values: np.ndarray, n_bins: int) -> np.ndarray:
    edges = np.linspace(0.0, 1.0, int(n_bins) + 1)
    out: np.ndarray = np.digitize(values, edges[1:-1], right=True)  # right-closed, as expected_calibration_error
    return out


def reliability_bins(y_true: Any, proba: Any, n_bins: int = ECE_BINS) -> ReliabilityBins:
    """Reliability-diagram bins of the top-class confidence (the bins of the ECE).

    Example:
        >>> bins = reliability_bins([0, 1], [[0.9, 0.1], [0.8, 0.2]], n_bins=5)
        >>> bins.counts, bins.accuracy[4]
        ((0, 0, 0, 1, 1), 1.0)
    """
    y, p = _check(y_true, proba)
    edges = np.linspace(0.0, 1.0, int(n_bins) + 1)
    if y.size == 0:
        none: tuple[float | None, ...] = (None,) * int(n_bins)
        return ReliabilityBins(tuple(float(e) for e in edges), (0,) * int(n_bins), none, none)
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    bins = _bin_index(conf, n_bins)
    count = np.bincount(bins, minlength=n_bins)
    acc = np.bincount(bins, weights=correct, minlength=n_bins)
    mean_conf = np.bincount(bins, weights=conf, minlength=n_bins)
    return ReliabilityBins(
        edges=tuple(float(e) for e in edges),
        counts=tuple(int(c) for c in count),
        accuracy=tuple(float(a / c) if c else None for a, c in zip(acc, count)),
        confidence=tuple(float(m / c) if c else None for m, c in zip(mean_conf, count)),
    )


def classwise_ece(y_true: Any, proba: Any, n_bins: int = ECE_BINS) -> float:
    """Classwise ECE (Kull et al. 2019): for each class, the ECE of ``p_k`` against ``[y = k]``; averaged over classes.

    Unlike the top-class ECE it also sees how well the probabilities of the
    classes not predicted are calibrated.

    Returns:
        The classwise ECE in [0, 1]; ``nan`` for an empty input.

    Example:
        >>> round(classwise_ece([0, 1], [[0.9, 0.1], [0.8, 0.2]]), 3)
        0.45
    """
    y, p = _check(y_true, proba)
    if y.size == 0:
        return float("nan")
    n, k = p.shape
    onehot = np.zeros_like(p)
    onehot[np.arange(n), y] = 1.0
    bins = _bin_index(p, n_bins) + np.arange(k)[None, :] * int(n_bins)  # one set of bins per class
    size = k * int(n_bins)
    freq = np.bincount(bins.ravel(), weights=onehot.ravel(), minlength=size)
    conf = np.bincount(bins.ravel(), weights=p.ravel(), minlength=size)
    return float(np.sum(np.abs(freq - conf)) / (n * k))


def brier_score(y_true: Any, proba: Any) -> float:
    """Multiclass Brier score ``mean_i sum_k (p_ik - [y_i = k])^2`` (0 perfect, 2 worst; ``nan`` when empty).

    Example:
        >>> brier_score([0, 1], [[1.0, 0.0], [0.5, 0.5]])
        0.25
    """
    y, p = _check(y_true, proba)
    if y.size == 0:
        return float("nan")
    d = p.copy()
    d[np.arange(y.size), y] -= 1.0
    return float(np.mean(np.sum(d * d, axis=1)))


def calibration_metrics(y_true: Any, proba: Any, n_bins: int = ECE_BINS) -> CalibrationMetrics:
    """ECE, classwise ECE, Brier score, NLL and reliability bins of one evaluation set.

    Raises:
        DataError: Shapes disagree or labels are out of range.
    """
    y, p = _check(y_true, proba)
    return CalibrationMetrics(
        n=int(y.size),
        ece=expected_calibration_error(y, p, n_bins),
        classwise_ece=classwise_ece(y, p, n_bins),
        brier=brier_score(y, p),
        nll=negative_log_likelihood(y, log_probabilities(p)) if y.size else float("nan"),
        reliability=reliability_bins(y, p, n_bins),
    )


# --------------------------------------------------------------------------------------------- selective prediction
def refer(proba: Any, below: float) -> np.ndarray:
    """Which predictions to refer: those whose top-class probability is under ``below`` (``bool [N]``).

    Nothing at or above ``below`` is ever referred.

    Raises:
        DataError: ``below`` is not in [0, 1].

    Example:
        >>> refer([[0.9, 0.1], [0.55, 0.45]], below=0.6).tolist()
        [False, True]
    """
    b = float(below)
    if not 0.0 <= b <= 1.0:
        raise DataError(f"Expected a referral threshold between 0 and 1 (e.g. 0.8), got {below!r}.")
    out: np.ndarray = _scores2d(proba).max(axis=1) < b
    return out


def coverage_threshold(confidence: Any, coverage: float) -> float:
    """The confidence threshold that keeps at least ``coverage`` of the samples (refers at most the rest).

    It is the confidence of the ``ceil(coverage * N)``-th most confident
    sample; keeping every sample at or above it keeps ``ceil(coverage * N)``
    samples or more (more when confidences tie), so referring those below it
    never refers more than ``floor((1 - coverage) * N)``.

    Raises:
        DataError: ``coverage`` not in (0, 1) or no samples.
    """
    c = _coverage(coverage)
    conf = np.sort(np.asarray(confidence, dtype=np.float64).reshape(-1))[::-1]
    if conf.size == 0:
        raise DataError("Cannot choose a referral threshold from no samples.")
    k = max(1, math.ceil(c * conf.size - 1e-9))
    return float(conf[k - 1])


def risk_coverage(
    y_true: Any, proba: Any, coverages: Sequence[float] = SELECTIVE_COVERAGES, max_points: int = 200
) -> RiskCoverage:
    """Risk-coverage curve of the top-class confidence, AURC and accuracy at given coverages.

    Samples are kept from the most confident down; where confidences tie,
    the curve only has a point after the whole tie group. The AURC is the
    curve's area, ``sum over groups (group size / N) * risk after the group``,
    which for distinct confidences is the mean risk over the ``N`` coverages
    ``1/N .. 1`` (Geifman et al. 2019).

    Args:
        y_true: Integer labels ``[N]``.
        proba: Probabilities ``[N, K]``.
        coverages: Coverages for :attr:`RiskCoverage.at`.
        max_points: Points of the curve kept in the record (evenly spaced; the area uses all).

    Raises:
        DataError: Shapes disagree, labels are out of range or there are no samples.

    Example:
        >>> rc = risk_coverage([0, 0, 1, 1], [[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.8, 0.2]])
        >>> rc.risk, rc.aurc  # the wrong one (confidence 0.8) is the second most confident
        ((0.0, 0.5, 0.3333333333333333, 0.25), 0.2708333333333333)
    """
    y, p = _check(y_true, proba)
    n = int(y.size)
    if n == 0:
        raise DataError("Cannot compute a risk-coverage curve of no samples.")
    conf = p.max(axis=1)
    wrong = (p.argmax(axis=1) != y).astype(np.float64)
    order = np.argsort(-conf, kind="stable")
    c = conf[order]
    cum = np.cumsum(wrong[order])
    ends = np.flatnonzero(np.append(c[1:] != c[:-1], True))  # last index of each tie group
    kept = ends + 1.0
    risk = cum[ends] / kept
    sizes = np.diff(np.concatenate(([0.0], kept)))
    aurc = float(np.sum(sizes * risk) / n)
    errors = int(cum[-1])
    k = np.arange(1, n + 1, dtype=np.float64)
    aurc_opt = float(np.sum(np.maximum(0.0, k - (n - errors)) / k) / n)
    points = []
    for target in coverages:
        t = coverage_threshold(conf, target)
        keep = conf >= t
        points.append(CoveragePoint(float(target), t, float(keep.mean()), float(1.0 - wrong[keep].mean())))
    idx = np.arange(ends.size)
    if ends.size > max_points:
        idx = np.unique(np.linspace(0, ends.size - 1, int(max_points)).round().astype(np.int64))
    return RiskCoverage(
        coverage=tuple(float(v) for v in kept[idx] / n),
        risk=tuple(float(v) for v in risk[idx]),
        aurc=aurc,
        aurc_optimal=aurc_opt,
        eaurc=aurc - aurc_opt,
        at=tuple(points),
    )


# --------------------------------------------------------------------------------------------- conformal sets
def _aps_cumulative(p: np.ndarray) -> np.ndarray:
    """For every class, the mass of the classes ranked above it plus half its own (ties: lower index first)."""
    order = np.argsort(-p, axis=1, kind="stable")
    cum = np.cumsum(np.take_along_axis(p, order, axis=1), axis=1)
    ranks = np.argsort(order, axis=1)
    out: np.ndarray = np.take_along_axis(cum, ranks, axis=1) - 0.5 * p
    return out


def conformal_scores(y_true: Any, proba: Any, method: str = DEFAULT_CONFORMAL) -> np.ndarray:
    """Non-conformity score of the true class of each sample (``float64 [N]``; larger = less plausible).

    LAC: ``1 - p_y``. APS: the probability mass of the classes ranked above ``y``
    plus half of ``p_y`` (the randomised APS score with its uniform draw fixed
    at its mean, 1/2: deterministic, and unlike the plain cumulative mass
    it does not give every last-ranked class the same score 1).

    Raises:
        DataError: Unknown method, shapes disagree or labels are out of range.
    """
    m = _method(method)
    y, p = _check(y_true, proba)
    rows = np.arange(y.size)
    out: np.ndarray = 1.0 - p[rows, y] if m == "lac" else _aps_cumulative(p)[rows, y]
    return out


def stored_scores(scores: Any) -> tuple[float, ...]:
    """Calibration scores as :class:`Calibration` stores them: sorted, rounded up to 6 decimals."""
    s = np.sort(np.asarray(scores, dtype=np.float64).reshape(-1))
    scale = 10.0**_SCORE_DECIMALS
    return tuple(float(v) for v in np.ceil(s * scale) / scale)


def conformal_threshold(scores: Any, coverage: float) -> float:
    """The split-conformal threshold: the ``ceil((n + 1) * coverage)``-th smallest of ``n`` calibration scores.

    ``inf`` (every class in every set) when that rank exceeds ``n``: too few
    calibration samples for the coverage asked.

    Raises:
        DataError: ``coverage`` not in (0, 1) or no scores.

    Example:
        >>> conformal_threshold([0.1, 0.2, 0.3, 0.4], 0.6)  # ceil(5 * 0.6) = 3rd smallest
        0.3
    """
    c = _coverage(coverage)
    s = np.sort(np.asarray(scores, dtype=np.float64).reshape(-1))
    if s.size == 0:
        raise DataError("Cannot calibrate prediction sets on no samples; the validation split is empty.")
    k = math.ceil((s.size + 1) * c - 1e-9)
    return float(s[k - 1]) if k <= s.size else math.inf


def prediction_sets(proba: Any, threshold: float, method: str = DEFAULT_CONFORMAL) -> np.ndarray:
    """Conformal prediction sets: ``bool [N, K]``, True where class ``k`` is in sample ``i``'s set.

    A class is in the set when its score (see :func:`conformal_scores`) is
    at most ``threshold``. A set may be empty (no class plausible enough)
    or hold several classes (the model cannot tell them apart).

    Raises:
        DataError: Unknown method or probabilities not 2-D.
    """
    m = _method(method)
    p = _scores2d(proba)
    out: np.ndarray = (1.0 - p if m == "lac" else _aps_cumulative(p)) <= float(threshold)
    return out


def conformal_metrics(
    y_true: Any, proba: Any, calibration_scores: Any, coverage: float, method: str = DEFAULT_CONFORMAL
) -> ConformalMetrics:
    """Empirical coverage and set sizes of conformal sets calibrated on ``calibration_scores``.

    Raises:
        DataError: See :func:`conformal_threshold` and :func:`prediction_sets`.
    """
    m = _method(method)
    y, p = _check(y_true, proba)
    cal = np.asarray(calibration_scores, dtype=np.float64).reshape(-1)
    q = conformal_threshold(cal, coverage)
    sets = prediction_sets(p, q, m)
    size = sets.sum(axis=1)
    n = int(y.size)
    covered = sets[np.arange(n), y] if n else np.zeros(0, bool)
    return ConformalMetrics(
        method=m,
        target=float(coverage),
        threshold=q if math.isfinite(q) else None,
        n_calibration=int(cal.size),
        n=n,
        coverage=float(covered.mean()) if n else float("nan"),
        mean_set_size=float(size.mean()) if n else float("nan"),
        singletons=float(np.mean(size == 1)) if n else float("nan"),
        empty=float(np.mean(size == 0)) if n else float("nan"),
        set_sizes=tuple(int(v) for v in np.bincount(size, minlength=p.shape[1] + 1)),
    )


# --------------------------------------------------------------------------------------------- a run's calibration
@dataclass(frozen=True)
class UncertaintyMetrics(Record):
    """Calibration, selective prediction and prediction sets on one evaluation set.

    Attributes:
        n: Samples.
        before: Calibration of the model's own probabilities.
        after: Calibration after temperature scaling (``None`` when the run has no calibration).
        risk_coverage: Risk-coverage curve, AURC and accuracy at 90% / 95% coverage, of the
            probabilities :func:`neuroxai.load` predictors return (calibrated where possible).
        conformal: Prediction sets per method (LAC first), empty when the run has no calibration.
    """

    n: int
    before: CalibrationMetrics
    after: CalibrationMetrics | None
    risk_coverage: RiskCoverage
    conformal: tuple[ConformalMetrics, ...] = ()

    def conformal_for(self, method: str) -> ConformalMetrics | None:
        """The prediction-set metrics of ``method`` (``None`` when not computed)."""
        return next((c for c in self.conformal if c.method == method), None)


@dataclass(frozen=True)
class CalibrationReport(Record):
    """Calibration, risk-coverage and conformal sets of a run on a split, plainly and de-duplicated.

    Part of the run's :class:`~neuroxai.runs.EvaluationReport` (``metrics.json``, key
    ``"calibration"``).

    Attributes:
        temperature: The run's temperature (``None``: the run has no calibration).
        calibration_split: The split the temperature and the conformal scores came from.
        n_calibration: Samples of that split.
        coverage: Target coverage of the prediction sets.
        metrics: On every image of the split.
        dedup: Without the test images byte-identical to a training image (``None`` when there are none).
        removed_duplicates: How many images ``dedup`` leaves out.
    """

    temperature: float | None
    calibration_split: str | None
    n_calibration: int
    coverage: float
    metrics: UncertaintyMetrics
    dedup: UncertaintyMetrics | None = None
    removed_duplicates: int = 0

    def headline(self) -> UncertaintyMetrics:
        """The metrics to quote: de-duplicated where test images repeat training images, else all."""
        return self.dedup if self.dedup is not None else self.metrics


def all_classified_right(y_true: Any, logits: Any) -> bool:
    """True when the top class of every row of ``logits`` ``[N, K]`` is its label (and ``N > 0``): temperature
    scaling then has nothing to fit (:func:`calibrate` keeps ``T = 1``)."""
    y, z = _check(y_true, logits)
    return _no_mistake(y, z)


def _no_mistake(y: np.ndarray, z: np.ndarray) -> bool:
    """:func:`all_classified_right` of checked arrays."""
    return bool(y.size) and bool(np.all(z.argmax(axis=1) == y))


def calibrate(y_true: Any, logits: Any, split: str = "val", n_bins: int = ECE_BINS) -> Calibration:
    """Fit a :class:`Calibration` on held-out logits: the temperature, then the conformal scores at that temperature.

    Where every held-out sample is classified right, the NLL has no minimum (it falls as ``T`` goes to 0: a
    temperature search ends on its lower bound and would make every later mistake near-certain), so the temperature
    stays 1 (:func:`all_classified_right` tells the caller why).

    Args:
        y_true: Integer labels ``[N]`` of the held-out split.
        logits: Their logits ``[N, K]`` (or log-probabilities).
        split: The split's name, recorded.
        n_bins: Bins of the ECE recorded.

    Raises:
        DataError: No samples, shapes disagree or labels are out of range.
    """
    y, z = _check(y_true, logits)
    if y.size == 0:
        raise DataError(f"Cannot calibrate on an empty {split!r} split; give the dataset a validation split.")
    t = 1.0 if _no_mistake(y, z) else fit_temperature(y, z)
    before, after = softmax(z), softmax(z, t)
    return Calibration(
        temperature=t,
        split=str(split),
        n=int(y.size),
        nll_before=negative_log_likelihood(y, z),
        nll_after=negative_log_likelihood(y, z, t),
        ece_before=expected_calibration_error(y, before, n_bins),
        ece_after=expected_calibration_error(y, after, n_bins),
        lac_scores=stored_scores(conformal_scores(y, after, "lac")),
        aps_scores=stored_scores(conformal_scores(y, after, "aps")),
    )


def _uncertainty(
    y: np.ndarray, z: np.ndarray, calibration: Calibration | None, coverage: float, n_bins: int
) -> UncertaintyMetrics:
    raw = softmax(z)
    cal = softmax(z, calibration.temperature) if calibration is not None else None
    used = cal if cal is not None else raw
    conformal: tuple[ConformalMetrics, ...] = ()
    if calibration is not None and calibration.n:
        conformal = tuple(conformal_metrics(y, used, calibration.scores(m), coverage, m) for m in CONFORMAL_METHODS)
    return UncertaintyMetrics(
        n=int(y.size),
        before=calibration_metrics(y, raw, n_bins),
        after=calibration_metrics(y, cal, n_bins) if cal is not None else None,
        risk_coverage=risk_coverage(y, used),
        conformal=conformal,
    )


def evaluate_calibration(
    y_true: Any,
    logits: Any,
    calibration: Calibration | None,
    *,
    duplicates: Any = (),
    coverage: float = 0.95,
    n_bins: int = ECE_BINS,
) -> CalibrationReport:
    """Calibration before/after, risk-coverage and conformal sets on one split, plainly and de-duplicated.

    Args:
        y_true: Integer labels ``[N]``.
        logits: Logits ``[N, K]`` (or log-probabilities).
        calibration: The run's calibration (``None``: only the model's own probabilities are measured).
        duplicates: Indices into the split to leave out of the de-duplicated metrics.
        coverage: Target coverage of the prediction sets.
        n_bins: Bins of the ECE.

    Raises:
        DataError: No samples, shapes disagree or labels are out of range.
    """
    y, z = _check(y_true, logits)
    if y.size == 0:
        raise DataError("Cannot evaluate calibration on no samples.")
    c = _coverage(coverage)
    dup = np.asarray(duplicates, dtype=np.int64).reshape(-1)
    dedup = None
    if dup.size:
        keep = np.ones(y.size, bool)
        keep[dup] = False
        if keep.any():
            dedup = _uncertainty(y[keep], z[keep], calibration, c, n_bins)
    return CalibrationReport(
        temperature=calibration.temperature if calibration is not None else None,
        calibration_split=calibration.split if calibration is not None else None,
        n_calibration=calibration.n if calibration is not None else 0,
        coverage=c,
        metrics=_uncertainty(y, z, calibration, c, n_bins),
        dedup=dedup,
        removed_duplicates=int(dup.size) if dedup is not None else 0,
    )
