"""Localization of explanation maps against ground-truth tumour masks.

Every function takes a batch of maps ``[N, H, W]`` (any non-negative scores;
only their order and relative size matter) and a batch of boolean masks
``[N, H, W]`` and returns one score per image as a float64 array ``[N]``.
They are vectorised over the batch (no per-image Python loop). Maps and
masks of volumes (``[N, D, H, W]``, a 3-D model's) work the same way: a
voxel is a pixel, the pointing-game tolerance is a ball, the centre prior a
3-D Gaussian.

Ties and constant maps are handled the same way everywhere: a map that gives
every pixel the same score (for example the *uniform* reference map, or an
all-zero map) carries no localization information, and every metric then
returns the value expected from choosing pixels at random, which is the
share of the image covered by the mask (its *area fraction*). This makes the
uniform map a chance-level reference for every metric.

Metrics:

- :func:`pointing_game`: Zhang et al., "Top-down neural attention by
  excitation backprop", ECCV 2016 / IJCV 2018.
- :func:`energy_pointing_game`: Wang et al., "Score-CAM: Score-weighted
  visual explanations for convolutional neural networks", CVPR-W 2020.
- :func:`iou` and :func:`dice`: overlap of the thresholded map with the mask.
- :func:`pixel_average_precision`: average precision of the map as a
  pixel-wise tumour detector (the ranking metric of scikit-learn's
  ``average_precision_score``, computed for all images at once).
- :func:`localization_report`: all of the above, per class, beside the
  uniform and centre-prior reference maps, as a :class:`LocalizationResult`;
  :class:`Localization` is the same as a registered metric.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from scipy import ndimage

from neuroxai._records import Record
from neuroxai.errors import DataError, ExplainError
from neuroxai.evaluation._checks import as_maps, as_masks
from neuroxai.evaluation._metric import ExplanationMetric, MetricInputs, Requirement

__all__ = [
    "LOCALIZATION_METRICS",
    "Localization",
    "LocalizationGroup",
    "LocalizationMeans",
    "LocalizationResult",
    "LocalizationSettings",
    "center_prior_map",
    "dice",
    "energy_pointing_game",
    "iou",
    "localization_report",
    "localization_scores",
    "pixel_average_precision",
    "pointing_game",
    "tolerance_pixels",
    "uniform_map",
]

#: Names of the per-image localization metrics, in report order.
LOCALIZATION_METRICS: tuple[str, ...] = ("pointing_game", "energy", "iou", "dice", "pixel_ap")


@dataclass(frozen=True)
class LocalizationMeans(Record):
    """The mean of each localization metric over a set of images (``None`` when the set is empty).

    Attributes:
        pointing_game: Pointing game (hit rate).
        energy: Energy-based pointing game (share of the map's mass in the mask).
        iou: IoU of the thresholded map and the mask.
        dice: Dice of the thresholded map and the mask.
        pixel_ap: Pixel-level average precision.
    """

    pointing_game: float | None
    energy: float | None
    iou: float | None
    dice: float | None
    pixel_ap: float | None

    def value(self, metric: str) -> float | None:
        """The mean of ``metric`` (one of :data:`LOCALIZATION_METRICS`).

        Raises:
            DataError: An unknown metric name.
        """
        if metric not in LOCALIZATION_METRICS:
            raise DataError(f"Unknown localization metric {metric!r}; expected one of {', '.join(LOCALIZATION_METRICS)}.")
        value: float | None = getattr(self, metric)
        return value


@dataclass(frozen=True)
class LocalizationGroup(Record):
    """Localization of one group of images (one class, or all): the method beside both reference maps.

    Attributes:
        n_scored: Images of the group with a tumour in their mask (the ones scored).
        n_excluded_no_mask: Images of the group left out because their mask is empty.
        method: Means for the explanation method's maps.
        uniform: Means for the uniform map (chance level).
        center_prior: Means for the centre-prior map.
    """

    n_scored: int
    n_excluded_no_mask: int
    method: LocalizationMeans
    uniform: LocalizationMeans
    center_prior: LocalizationMeans


@dataclass(frozen=True)
class LocalizationSettings(Record):
    """How localization was scored.

    Attributes:
        tolerance_px_at_224: Pointing-game tolerance in pixels at 224 px.
        tolerance_px: The same tolerance at the maps' size.
        threshold: IoU/Dice threshold (fraction of each map's range); ``None`` when ``top_k`` is used.
        top_k: IoU/Dice keep this fraction of top pixels (``None``: the threshold is used).
        center_sigma: Width of the centre prior, as a fraction of the image side.
    """

    tolerance_px_at_224: float
    tolerance_px: int
    threshold: float | None
    top_k: float | None
    center_sigma: float


@dataclass(frozen=True)
class LocalizationResult(Record):
    """What :func:`localization_report` measured for one method.

    Attributes:
        n_images: Images given (with and without a tumour).
        settings: How it was scored.
        metrics: The metric names, in report order (:data:`LOCALIZATION_METRICS`).
        overall: All scorable images.
        per_class: One group per class name (``n_scored == 0`` and ``None`` means for a class without tumours).

    Example:
        >>> r = localization_report(maps, masks, labels, class_names=names)  # doctest: +SKIP
        >>> r.overall.method.pointing_game, r.overall.center_prior.pointing_game  # doctest: +SKIP
    """

    n_images: int
    settings: LocalizationSettings
    metrics: tuple[str, ...]
    overall: LocalizationGroup
    per_class: dict[str, LocalizationGroup]

    @property
    def n_scored(self) -> int:
        """Images scored (those with a tumour in their mask)."""
        return self.overall.n_scored

    @property
    def n_excluded_no_mask(self) -> int:
        """Images left out because their mask is empty."""
        return self.overall.n_excluded_no_mask


_REFERENCE_SIZE = 224  # Zhang et al. use a 15 px tolerance on 224 px inputs


def tolerance_pixels(image_size: Sequence[int], tolerance: float = 15.0) -> int:
    """Pointing-game tolerance in pixels, scaled from 224 px images to ``image_size``.

    Args:
        image_size: ``(H, W)`` of the maps.
        tolerance: Tolerance in pixels at a 224 px image (Zhang et al. use 15).

    Returns:
        ``round(tolerance * max(H, W) / 224)`` (0 means no tolerance).

    Example:
        >>> tolerance_pixels((224, 224)), tolerance_pixels((64, 64))
        (15, 4)
    """
    return round(float(tolerance) * max(int(s) for s in image_size) / _REFERENCE_SIZE)


def _dilate(masks: np.ndarray, radius: int) -> np.ndarray:
    """Dilate each mask of ``[N, H, W]`` by a disk of ``radius`` pixels (a ball for ``[N, D, H, W]``; not across images)."""
    if radius <= 0:
        return masks
    grid = np.mgrid[tuple(slice(-radius, radius + 1) for _ in range(masks.ndim - 1))]
    ball = (grid**2).sum(axis=0) <= radius**2
    return np.asarray(ndimage.binary_dilation(masks, structure=ball[None]), dtype=bool)


def _area_fraction(masks: np.ndarray) -> np.ndarray:
    return np.asarray(masks.reshape(len(masks), -1).mean(axis=1), dtype=np.float64)


def pointing_game(maps: Any, masks: Any, *, tolerance: float = 15.0) -> np.ndarray:
    """Pointing game: does the map's maximum fall inside the (slightly dilated) mask?

    Definition (Zhang et al. 2018, "Top-down neural attention by excitation
    backprop"): a hit when the pixel with the largest score lies inside the
    object, counting pixels within ``tolerance`` of it as inside. Here the
    mask is dilated by a disk of :func:`tolerance_pixels` pixels (15 px at
    224 px, scaled to the image size). When several pixels share the maximum
    the score is the share of them inside the dilated mask, the expected hit
    of picking one at random; for a constant map (every pixel ties) that is
    the dilated mask's area fraction.

    Args:
        maps: Explanation maps ``[N, H, W]`` (or ``[N, D, H, W]``).
        masks: Boolean masks of the same shape.
        tolerance: Tolerance in pixels at a 224 px image; 0 for none (a ball for volumes).

    Returns:
        float64 ``[N]`` in [0, 1]: 1 for a hit, 0 for a miss.

    Example:
        >>> import numpy as np
        >>> m = np.zeros((1, 4, 4)); m[0, 1, 1] = 1
        >>> pointing_game(m, m > 0, tolerance=0)
        array([1.])
    """
    maps = as_maps(maps, volumes=True)
    masks = as_masks(masks, maps.shape, volumes=True)
    target = _dilate(masks, tolerance_pixels(maps.shape[1:], tolerance))
    flat = maps.reshape(len(maps), -1)
    is_max = flat == flat.max(axis=1, keepdims=True)
    hits = (is_max & target.reshape(len(maps), -1)).sum(axis=1)
    return np.asarray(hits / is_max.sum(axis=1), dtype=np.float64)


def energy_pointing_game(maps: Any, masks: Any) -> np.ndarray:
    """Energy-based pointing game: the share of the map's mass inside the mask.

    Definition (Wang et al. 2020, "Score-CAM"): ``sum(map * mask) / sum(map)``
    with negative scores clipped to 0. An all-zero map counts as uniform and
    scores the mask's area fraction.

    Args:
        maps: Explanation maps ``[N, H, W]``.
        masks: Boolean masks ``[N, H, W]``.

    Returns:
        float64 ``[N]`` in [0, 1].

    Example:
        >>> import numpy as np
        >>> m = np.array([[[3.0, 1.0], [0.0, 0.0]]])
        >>> energy_pointing_game(m, np.array([[[True, False], [False, False]]]))
        array([0.75])
    """
    maps = np.clip(as_maps(maps, volumes=True), 0.0, None)
    masks = as_masks(masks, maps.shape, volumes=True)
    flat = maps.reshape(len(maps), -1)
    total = flat.sum(axis=1)
    inside = (flat * masks.reshape(len(maps), -1)).sum(axis=1)
    return np.where(total > 0, inside / np.where(total > 0, total, 1.0), _area_fraction(masks))


def _binarize(maps: np.ndarray, threshold: float | None, top_k: float | None) -> np.ndarray:
    flat = maps.reshape(len(maps), -1)
    if top_k is not None:
        if not 0.0 < top_k <= 1.0:
            raise ValueError(f"Expected top_k in (0, 1]; got {top_k}.")
        k = max(1, round(top_k * flat.shape[1]))
        kth = -np.partition(-flat, k - 1, axis=1)[:, k - 1 : k]
        out = flat >= kth
    else:
        thr = 0.5 if threshold is None else float(threshold)
        if not 0.0 <= thr <= 1.0:
            raise ValueError(f"Expected threshold in [0, 1] (a fraction of each map's maximum); got {thr}.")
        lo = flat.min(axis=1, keepdims=True)
        hi = flat.max(axis=1, keepdims=True)
        # relative to each map's own range: scale- and shift-free; a constant map selects everything
        out = flat >= lo + thr * (hi - lo)
    return out.reshape(maps.shape)


def _overlap(maps: Any, masks: Any, threshold: float | None, top_k: float | None) -> tuple[np.ndarray, ...]:
    maps = as_maps(maps, volumes=True)
    masks = as_masks(masks, maps.shape, volumes=True)
    pred = _binarize(maps, threshold, top_k).reshape(len(maps), -1)
    true = masks.reshape(len(maps), -1)
    inter = (pred & true).sum(axis=1).astype(np.float64)
    return inter, pred.sum(axis=1).astype(np.float64), true.sum(axis=1).astype(np.float64)


def iou(maps: Any, masks: Any, *, threshold: float = 0.5, top_k: float | None = None) -> np.ndarray:
    """Intersection over union of the thresholded map and the mask.

    The map is binarised per image at ``min + threshold * (max - min)`` (by
    default half of its range, so for non-negative maps with a zero minimum,
    half of its maximum), or, when ``top_k`` is given, to its ``top_k``
    fraction of highest pixels (ties at the cut are kept). IoU is
    ``|B & M| / |B | M|`` (the Jaccard index); an empty union scores 0.

    Args:
        maps: Explanation maps ``[N, H, W]``.
        masks: Boolean masks ``[N, H, W]``.
        threshold: Fraction of each map's range to binarise at (0..1).
        top_k: Instead of ``threshold``, keep this fraction of pixels (0..1].

    Returns:
        float64 ``[N]`` in [0, 1].

    Example:
        >>> import numpy as np
        >>> m = np.array([[[1.0, 1.0], [0.0, 0.0]]])
        >>> iou(m, np.array([[[True, False], [False, False]]]))
        array([0.5])
    """
    inter, npred, ntrue = _overlap(maps, masks, threshold, top_k)
    union = npred + ntrue - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def dice(maps: Any, masks: Any, *, threshold: float = 0.5, top_k: float | None = None) -> np.ndarray:
    """Dice coefficient (F1) of the thresholded map and the mask.

    ``2 |B & M| / (|B| + |M|)`` with the same binarisation as :func:`iou`;
    both sets empty score 0.

    Args:
        maps: Explanation maps ``[N, H, W]``.
        masks: Boolean masks ``[N, H, W]``.
        threshold: Fraction of each map's range to binarise at (0..1).
        top_k: Instead of ``threshold``, keep this fraction of pixels (0..1].

    Returns:
        float64 ``[N]`` in [0, 1].

    Example:
        >>> import numpy as np
        >>> m = np.array([[[1.0, 1.0], [0.0, 0.0]]])
        >>> dice(m, np.array([[[True, False], [False, False]]])).round(4)
        array([0.6667])
    """
    inter, npred, ntrue = _overlap(maps, masks, threshold, top_k)
    denom = npred + ntrue
    return np.where(denom > 0, 2.0 * inter / np.where(denom > 0, denom, 1.0), 0.0)


def pixel_average_precision(maps: Any, masks: Any) -> np.ndarray:
    """Average precision of the map as a pixel-wise detector of the mask.

    Pixels are ranked by score; AP is ``sum_n (R_n - R_{n-1}) P_n`` over the
    distinct score thresholds (precision and recall of the pixels scoring at
    least the threshold), exactly scikit-learn's ``average_precision_score``
    per image, vectorised over the batch. A constant map scores the mask's
    area fraction; an image with an empty mask scores NaN.

    Args:
        maps: Explanation maps ``[N, H, W]``.
        masks: Boolean masks ``[N, H, W]``.

    Returns:
        float64 ``[N]`` in [0, 1] (NaN where the mask is empty).

    Example:
        >>> import numpy as np
        >>> m = np.array([[[0.9, 0.8], [0.1, 0.0]]])
        >>> pixel_average_precision(m, np.array([[[True, False], [True, False]]])).round(4)
        array([0.8333])
    """
    maps = as_maps(maps, volumes=True)
    masks = as_masks(masks, maps.shape, volumes=True)
    n = len(maps)
    flat = maps.reshape(n, -1)
    true = masks.reshape(n, -1)
    order = np.argsort(-flat, axis=1, kind="stable")
    scores = np.take_along_axis(flat, order, axis=1)
    tp = np.cumsum(np.take_along_axis(true, order, axis=1), axis=1, dtype=np.float64)
    npos = tp[:, -1]
    # only the last pixel of each group of tied scores is a threshold
    boundary = np.ones_like(scores, dtype=bool)
    boundary[:, :-1] = scores[:, :-1] != scores[:, 1:]
    tp_at = np.where(boundary, tp, 0.0)
    prev = np.zeros_like(tp)
    prev[:, 1:] = np.maximum.accumulate(tp_at, axis=1)[:, :-1]  # tp is non-decreasing
    precision = tp / np.arange(1, flat.shape[1] + 1)
    gain = np.where(boundary, (tp - prev) * precision, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(npos > 0, gain / np.where(npos > 0, npos, 1.0), np.nan)


def uniform_map(shape: Sequence[int]) -> np.ndarray:
    """Reference map giving every pixel the same score (chance level).

    Args:
        shape: ``(N, H, W)`` (or ``(N, D, H, W)``).

    Returns:
        float32 ones of ``shape``. Every metric scores it at the mask's area
        fraction (see the module notes on ties).

    Example:
        >>> uniform_map((2, 3, 3)).shape
        (2, 3, 3)
    """
    return np.ones(tuple(shape), dtype=np.float32)


def center_prior_map(shape: Sequence[int], *, sigma: float = 0.25) -> np.ndarray:
    """Reference map: an isotropic Gaussian centred on the image (or the volume).

    Tumours (and most objects in curated images) sit near the middle more
    often than at the border; a method that does not beat this prior has not
    shown that it looks at the image.

    Args:
        shape: ``(N, H, W)``, or ``(N, D, H, W)`` for volumes.
        sigma: Standard deviation as a fraction of the image side.

    Returns:
        float32 ``shape`` in (0, 1], 1 at the centre.

    Example:
        >>> g = center_prior_map((1, 5, 5)); float(g[0, 2, 2])
        1.0
    """
    n, *sides = (int(s) for s in shape)
    if len(sides) not in (2, 3):
        raise DataError(f"Expected a shape (N, H, W) or (N, D, H, W); got {tuple(shape)}.")
    squared = np.zeros(tuple(sides), np.float64)
    for axis, side in enumerate(sides):
        offset = ((np.arange(side) - (side - 1) / 2.0) / (sigma * side)) ** 2
        squared = squared + offset.reshape([side if a == axis else 1 for a in range(len(sides))])
    g = np.exp(-0.5 * squared).astype(np.float32)
    return np.array(np.broadcast_to(g, (n, *sides)), dtype=np.float32)


def localization_scores(
    maps: Any,
    masks: Any,
    *,
    tolerance: float = 15.0,
    threshold: float = 0.5,
    top_k: float | None = None,
) -> dict[str, np.ndarray]:
    """All per-image localization metrics at once.

    Args:
        maps: Explanation maps ``[N, H, W]`` (or ``[N, D, H, W]``).
        masks: Boolean masks of the same shape (each should contain tumour pixels).
        tolerance: Pointing-game tolerance in pixels at 224 px.
        threshold: Binarisation threshold for IoU and Dice.
        top_k: Binarise to this fraction of top pixels instead.

    Returns:
        ``{metric: float64 [N]}`` for each name in :data:`LOCALIZATION_METRICS`.

    Example:
        >>> import numpy as np
        >>> m = np.zeros((1, 8, 8)); m[0, 2:4, 2:4] = 1
        >>> {k: float(v[0]) for k, v in localization_scores(m, m > 0).items()}["iou"]
        1.0
    """
    maps = as_maps(maps, volumes=True)
    masks = as_masks(masks, maps.shape, volumes=True)
    return {
        "pointing_game": pointing_game(maps, masks, tolerance=tolerance),
        "energy": energy_pointing_game(maps, masks),
        "iou": iou(maps, masks, threshold=threshold, top_k=top_k),
        "dice": dice(maps, masks, threshold=threshold, top_k=top_k),
        "pixel_ap": pixel_average_precision(maps, masks),
    }


def _means(scores: dict[str, np.ndarray], idx: np.ndarray) -> LocalizationMeans:
    if len(idx) == 0:
        return LocalizationMeans(None, None, None, None, None)
    return LocalizationMeans(**{k: float(np.nanmean(v[idx])) for k, v in scores.items()})


def _group(scores: dict[str, dict[str, np.ndarray]], idx: np.ndarray, n_excluded: int) -> LocalizationGroup:
    return LocalizationGroup(
        n_scored=len(idx),
        n_excluded_no_mask=int(n_excluded),
        method=_means(scores["method"], idx),
        uniform=_means(scores["uniform"], idx),
        center_prior=_means(scores["center_prior"], idx),
    )


def localization_report(
    maps: Any,
    masks: Any,
    labels: Any | None = None,
    *,
    class_names: Sequence[str] | None = None,
    tolerance: float = 15.0,
    threshold: float = 0.5,
    top_k: float | None = None,
    center_sigma: float = 0.25,
) -> LocalizationResult:
    """Localization metrics per class, beside a uniform and a centre-prior reference map.

    Images whose mask is empty (no tumour, e.g. class "notumor") cannot be
    scored and are left out; the result counts them. The two reference maps
    are scored on exactly the same images with the same settings, so each
    method number has its chance level (``uniform``) and a "looks at the
    middle" level (``center_prior``) beside it.

    Args:
        maps: Explanation maps ``[N, H, W]`` (or ``[N, D, H, W]`` of volumes).
        masks: Masks of the same shape (bool, or float with > 0.5 inside).
        labels: Integer class per image ``[N]``; ``None`` puts all in one class.
        class_names: Names for the label ids (default ``"0", "1", ...``; ``"all"`` without labels).
        tolerance: Pointing-game tolerance in pixels at 224 px (scaled to the size).
        threshold: IoU/Dice binarisation threshold, a fraction of each map's range.
        top_k: Binarise IoU/Dice to this fraction of top pixels instead.
        center_sigma: Width of the centre prior, as a fraction of the image side.

    Returns:
        A :class:`LocalizationResult`: ``overall`` and ``per_class[name]`` each hold the
        means of every metric for the method, the uniform and the centre-prior map
        (``None`` for a class with no scorable image) and the counts.

    Raises:
        DataError: Shapes that disagree, or not one label per map.

    Example:
        >>> import numpy as np
        >>> masks = np.zeros((2, 16, 16), bool); masks[0, 4:8, 4:8] = True
        >>> r = localization_report(masks.astype(float), masks, [0, 1], class_names=["glioma", "notumor"])
        >>> r.n_excluded_no_mask, r.per_class["glioma"].method.iou
        (1, 1.0)
    """
    maps = as_maps(maps, volumes=True)
    masks = as_masks(masks, maps.shape, volumes=True)
    n = len(maps)
    labels_arr = np.zeros(n, dtype=np.int64) if labels is None else np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(labels_arr) != n:
        raise DataError(f"Expected {n} labels (one per map); got {len(labels_arr)}.")
    if class_names is None:
        if labels is None:
            class_names = ["all"]
        else:
            k = int(labels_arr.max()) + 1 if n else 0
            class_names = [str(i) for i in range(k)]
    has_tumour = masks.reshape(n, -1).any(axis=1)
    keep = np.flatnonzero(has_tumour)
    sub_masks = masks[keep]
    shape = sub_masks.shape

    def score(m: np.ndarray) -> dict[str, np.ndarray]:
        return localization_scores(m, sub_masks, tolerance=tolerance, threshold=threshold, top_k=top_k)

    scores = {
        "method": score(maps[keep]),
        "uniform": score(uniform_map(shape)),
        "center_prior": score(center_prior_map(shape, sigma=center_sigma)),
    }
    kept_labels = labels_arr[keep]
    per_class = {
        str(name): _group(scores, np.flatnonzero(kept_labels == c), int(((labels_arr == c) & ~has_tumour).sum()))
        for c, name in enumerate(class_names)
    }
    return LocalizationResult(
        n_images=int(n),
        settings=LocalizationSettings(
            tolerance_px_at_224=float(tolerance),
            tolerance_px=tolerance_pixels(maps.shape[1:], tolerance),
            threshold=None if top_k is not None else float(threshold),
            top_k=None if top_k is None else float(top_k),
            center_sigma=float(center_sigma),
        ),
        metrics=LOCALIZATION_METRICS,
        overall=_group(scores, np.arange(len(keep)), n - len(keep)),
        per_class=per_class,
    )


@dataclass(frozen=True)
class Localization(ExplanationMetric):
    """Localization against tumour masks, beside the uniform and centre-prior maps (:func:`localization_report`).

    Needs maps and masks; labels give the per-class breakdown.

    Args:
        tolerance: Pointing-game tolerance in pixels at 224 px (scaled to the image size).
        threshold: IoU/Dice binarisation threshold, a fraction of each map's range.
        top_k: Binarise IoU/Dice to this fraction of top pixels instead.
        center_sigma: Width of the centre prior, as a fraction of the image side.

    Example:
        >>> Localization(tolerance=0.0).settings()["tolerance"]
        0.0
    """

    name: ClassVar[str] = "localization"
    requires: ClassVar[frozenset[Requirement]] = frozenset({"maps", "masks"})
    result_type: ClassVar[type[Record]] = LocalizationResult
    description: ClassVar[str] = "pointing game, energy, IoU, Dice and pixel AP vs tumour masks, beside uniform and centre prior"

    tolerance: float = 15.0
    threshold: float = 0.5
    top_k: float | None = None
    center_sigma: float = 0.25

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ExplainError(f"Localization threshold must be in [0, 1]; got {self.threshold}.")
        if self.top_k is not None and not 0.0 < self.top_k <= 1.0:
            raise ExplainError(f"Localization top_k must be in (0, 1]; got {self.top_k}.")
        if self.tolerance < 0 or self.center_sigma <= 0:
            raise ExplainError(
                f"Localization tolerance must be >= 0 and center_sigma > 0; got {self.tolerance} and {self.center_sigma}."
            )

    def compute(self, inputs: MetricInputs) -> LocalizationResult:
        """Score ``inputs.maps`` against ``inputs.masks`` (per class when labels are given)."""
        return localization_report(
            inputs.require_maps(),
            inputs.require_masks(),
            inputs.labels,
            class_names=inputs.class_names if inputs.labels is not None else None,
            tolerance=self.tolerance,
            threshold=self.threshold,
            top_k=self.top_k,
            center_sigma=self.center_sigma,
        )
