"""Localization of explanation maps against ground-truth tumour masks.

Every function takes a batch of maps ``[N, H, W]`` (any non-negative scores;
only their order and relative size matter) and a batch of boolean masks
``[N, H, W]`` and returns one score per image as a float64 array ``[N]``.
They are vectorised over the batch (no per-image Python loop).

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
  uniform and centre-prior reference maps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from neuroxai.evaluation._checks import as_maps, as_masks

__all__ = [
    "LOCALIZATION_METRICS",
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
    """Dilate each mask of ``[N, H, W]`` by a disk of ``radius`` pixels (not across images)."""
    if radius <= 0:
        return masks
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    disk = (yy**2 + xx**2) <= radius**2
    return ndimage.binary_dilation(masks, structure=disk[None])


def _area_fraction(masks: np.ndarray) -> np.ndarray:
    return masks.reshape(len(masks), -1).mean(axis=1)


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
        maps: Explanation maps ``[N, H, W]``.
        masks: Boolean masks ``[N, H, W]``.
        tolerance: Tolerance in pixels at a 224 px image; 0 for none.

    Returns:
        float64 ``[N]`` in [0, 1]: 1 for a hit, 0 for a miss.

    Example:
        >>> import numpy as np
        >>> m = np.zeros((1, 4, 4)); m[0, 1, 1] = 1
        >>> pointing_game(m, m > 0, tolerance=0)
        array([1.])
    """
    maps = as_maps(maps)
    masks = as_masks(masks, maps.shape)
    target = _dilate(masks, tolerance_pixels(maps.shape[1:], tolerance))
    flat = maps.reshape(len(maps), -1)
    is_max = flat == flat.max(axis=1, keepdims=True)
    hits = (is_max & target.reshape(len(maps), -1)).sum(axis=1)
    return hits / is_max.sum(axis=1)


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
    maps = np.clip(as_maps(maps), 0.0, None)
    masks = as_masks(masks, maps.shape)
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
    maps = as_maps(maps)
    masks = as_masks(masks, maps.shape)
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
    maps = as_maps(maps)
    masks = as_masks(masks, maps.shape)
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
        shape: ``(N, H, W)``.

    Returns:
        float32 ones of ``shape``. Every metric scores it at the mask's area
        fraction (see the module notes on ties).

    Example:
        >>> uniform_map((2, 3, 3)).shape
        (2, 3, 3)
    """
    return np.ones(tuple(shape), dtype=np.float32)


def center_prior_map(shape: Sequence[int], *, sigma: float = 0.25) -> np.ndarray:
    """Reference map: an isotropic Gaussian centred on the image.

    Tumours (and most objects in curated images) sit near the middle more
    often than at the border; a method that does not beat this prior has not
    shown that it looks at the image.

    Args:
        shape: ``(N, H, W)``.
        sigma: Standard deviation as a fraction of the image side.

    Returns:
        float32 ``shape`` in (0, 1], 1 at the centre.

    Example:
        >>> g = center_prior_map((1, 5, 5)); float(g[0, 2, 2])
        1.0
    """
    n, h, w = (int(s) for s in shape)
    yy = (np.arange(h) - (h - 1) / 2.0) / (sigma * h)
    xx = (np.arange(w) - (w - 1) / 2.0) / (sigma * w)
    g = np.exp(-0.5 * (yy[:, None] ** 2 + xx[None, :] ** 2)).astype(np.float32)
    return np.broadcast_to(g, (n, h, w)).copy()


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
        maps: Explanation maps ``[N, H, W]``.
        masks: Boolean masks ``[N, H, W]`` (each should contain tumour pixels).
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
    maps = as_maps(maps)
    masks = as_masks(masks, maps.shape)
    return {
        "pointing_game": pointing_game(maps, masks, tolerance=tolerance),
        "energy": energy_pointing_game(maps, masks),
        "iou": iou(maps, masks, threshold=threshold, top_k=top_k),
        "dice": dice(maps, masks, threshold=threshold, top_k=top_k),
        "pixel_ap": pixel_average_precision(maps, masks),
    }


def _summary(scores: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, float | None]:
    if len(idx) == 0:
        return dict.fromkeys(scores)
    return {k: float(np.nanmean(v[idx])) for k, v in scores.items()}


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
) -> dict[str, Any]:
    """Localization metrics per class, beside a uniform and a centre-prior reference map.

    Images whose mask is empty (no tumour, e.g. class "notumor") cannot be
    scored and are left out; the result counts them. The two reference maps
    are scored on exactly the same images with the same settings, so each
    method number has its chance level (``uniform``) and a "looks at the
    middle" level (``center_prior``) beside it.

    Args:
        maps: Explanation maps ``[N, H, W]``.
        masks: Masks ``[N, H, W]`` (bool, or float with > 0.5 inside).
        labels: Integer class per image ``[N]``; ``None`` puts all in one class.
        class_names: Names for the label ids (default ``"0", "1", ...``).
        tolerance: Pointing-game tolerance in pixels at 224 px (scaled to the size).
        threshold: IoU/Dice binarisation threshold, a fraction of each map's range.
        top_k: Binarise IoU/Dice to this fraction of top pixels instead.
        center_sigma: Width of the centre prior, as a fraction of the image side.

    Returns:
        A JSON-able dict::

            {"n_images": N, "n_scored": n, "n_excluded_no_mask": N - n,
             "settings": {...}, "metrics": [...],
             "overall": {"method": {metric: mean}, "uniform": {...}, "center_prior": {...}},
             "per_class": {name: {"n_scored": k, "n_excluded_no_mask": e,
                                  "method": {...}, "uniform": {...}, "center_prior": {...}}}}

        Means are ``None`` for a class with no scorable image.

    Example:
        >>> import numpy as np
        >>> masks = np.zeros((2, 16, 16), bool); masks[0, 4:8, 4:8] = True
        >>> r = localization_report(masks.astype(float), masks, [0, 1], class_names=["glioma", "notumor"])
        >>> r["n_excluded_no_mask"], r["per_class"]["glioma"]["method"]["iou"]
        (1, 1.0)
    """
    maps = as_maps(maps)
    masks = as_masks(masks, maps.shape)
    n = len(maps)
    labels_arr = np.zeros(n, dtype=np.int64) if labels is None else np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(labels_arr) != n:
        from neuroxai.errors import DataError

        raise DataError(f"Expected {n} labels (one per map); got {len(labels_arr)}.")
    if class_names is None:
        k = int(labels_arr.max()) + 1 if n else 0
        class_names = [str(i) for i in range(k)]
    has_tumour = masks.reshape(n, -1).any(axis=1)
    keep = np.flatnonzero(has_tumour)
    kw = {"tolerance": tolerance, "threshold": threshold, "top_k": top_k}
    sub_masks = masks[keep]
    shape = sub_masks.shape
    scores = {
        "method": localization_scores(maps[keep], sub_masks, **kw),
        "uniform": localization_scores(uniform_map(shape), sub_masks, **kw),
        "center_prior": localization_scores(center_prior_map(shape, sigma=center_sigma), sub_masks, **kw),
    }
    kept_labels = labels_arr[keep]
    per_class: dict[str, Any] = {}
    for c, name in enumerate(class_names):
        idx = np.flatnonzero(kept_labels == c)
        per_class[str(name)] = {
            "n_scored": len(idx),
            "n_excluded_no_mask": int(((labels_arr == c) & ~has_tumour).sum()),
            **{ref: _summary(s, idx) for ref, s in scores.items()},
        }
    all_idx = np.arange(len(keep))
    return {
        "n_images": int(n),
        "n_scored": len(keep),
        "n_excluded_no_mask": int(n - len(keep)),
        "settings": {
            "tolerance_px_at_224": float(tolerance),
            "tolerance_px": tolerance_pixels(maps.shape[1:], tolerance),
            "threshold": None if top_k is not None else float(threshold),
            "top_k": top_k,
            "center_sigma": float(center_sigma),
        },
        "metrics": list(LOCALIZATION_METRICS),
        "overall": {ref: _summary(s, all_idx) for ref, s in scores.items()},
        "per_class": per_class,
    }
