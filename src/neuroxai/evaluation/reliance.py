"""Tumour reliance: does the *model* need the tumour? An explainer-free check.

A heatmap can be made to look right while the model uses something else;
localization scores only the map. Tumour reliance asks the model directly.
For every image with a tumour mask it measures

- the **tumour drop**: the true class's probability on the image minus its
  probability after the tumour region is replaced by a baseline (default: a
  blurred copy of the image, :func:`~neuroxai.evaluation.baseline_fill`);
- the **control drop**: the same after an equal-area region *outside* the
  tumour is replaced the same way: the mask's own shape, moved by a seeded
  random offset to a place that lies inside the image, does not touch the
  tumour dilated by a margin (15 px at 224 px), and lies inside the head
  where a simple foreground test finds one (:func:`head_foreground`); when no
  such place exists inside the head, anywhere else in the image is used (and
  recorded), and an image where the shape fits nowhere is left out and counted;
- their **ratio**, ``(max(T, 0) + eps) / (max(C, 0) + eps)`` of the mean
  drops ``T`` and ``C`` (``eps = 0.01``): about 1 for a model that ignores
  the tumour as much as any other region (including one that ignores both,
  where both drops are about 0), large for a model whose evidence is the
  tumour. Issue 12 asks for at least 5 on held-out patients.

Replacing any region changes the image in a way the model never saw in
training; the control region receives exactly the same change elsewhere, so
the ratio cancels that effect and keeps what is specific to the tumour.

The blur is strong by default (sigma 10 px at 224 px, scaled to the image
size, as the blur perturbation of Fong and Vedaldi, "Interpretable
explanations of black boxes by meaningful perturbation", ICCV 2017): the
deletion baseline of RISE (5 px) leaves a large tumour visible.

All images run as batched, compiled forward passes (the perturbed copies are
built inside one ``tf.function`` with the forward pass); the model's
probabilities on the unperturbed images are reused when given.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from scipy import ndimage

from neuroxai._cache import PerModel
from neuroxai._keras_backend import to_numpy
from neuroxai._records import Record
from neuroxai.errors import DataError, ExplainError
from neuroxai.evaluation._checks import as_masks
from neuroxai.evaluation._metric import ExplanationMetric, MetricInputs, Requirement

__all__ = [
    "ControlRegions",
    "RelianceSettings",
    "RelianceSummary",
    "TumourReliance",
    "TumourRelianceResult",
    "control_regions",
    "head_foreground",
    "tumour_reliance",
]

#: Compiled steps per model object (weak keys: an entry goes with its model).
_STEPS: PerModel[Any] = PerModel()

_REFERENCE_SIZE = 224


def _scaled(px_at_224: float, image_size: Sequence[int]) -> float:
    return float(px_at_224) * max(int(s) for s in image_size) / _REFERENCE_SIZE


@dataclass(frozen=True)
class RelianceSummary(Record):
    """Mean drops of the true-class probability over a group of images (one class, or all).

    Attributes:
        n: Images in the group that were scored.
        probability: Mean true-class probability on the unperturbed images.
        tumour_drop: Mean drop when the tumour region is replaced (positive: the probability fell).
        control_drop: Mean drop when the equal-area control region is replaced.
        ratio: ``(max(tumour_drop, 0) + eps) / (max(control_drop, 0) + eps)``; about 1 when the model
            needs the tumour no more than any other region, large when its evidence is the tumour.

    Values are ``None`` for a group without scored images.
    """

    n: int
    probability: float | None
    tumour_drop: float | None
    control_drop: float | None
    ratio: float | None


@dataclass(frozen=True)
class RelianceSettings(Record):
    """How tumour reliance was measured.

    Attributes:
        baseline: What replaced the regions (``"blur"``, ``"zero"``, ``"mean"`` or a number).
        blur_sigma_px: Sigma of the blur, in pixels at the image size.
        margin_px: Gap kept between the (dilated) tumour and the control region, in pixels at the image size.
        foreground_threshold: Foreground test of :func:`head_foreground` (``None``: not used).
        ratio_epsilon: The ``eps`` of the ratio.
        seed: Seed of the control placement.
    """

    baseline: str | float
    blur_sigma_px: float
    margin_px: int
    foreground_threshold: float | None
    ratio_epsilon: float
    seed: int


@dataclass(frozen=True)
class TumourRelianceResult(Record):
    """What :func:`tumour_reliance` measured; per-image values in input order of the scored images.

    Attributes:
        n_images: Images given.
        n_scored: Images scored (a tumour in the mask and a place for the control region).
        n_excluded_no_mask: Images left out because their mask is empty.
        n_unplaced: Images left out because the mask's shape fits nowhere outside the dilated tumour.
        settings: How it was measured.
        overall: Means over all scored images.
        per_class: Means per class name (true class).
        index: Position of each scored image in the input.
        label: Its true class.
        probability: Its true-class probability on the unperturbed image.
        tumour_drop: Its drop when the tumour region is replaced.
        control_drop: Its drop when the control region is replaced.
        control_offset: The ``(dy, dx)`` shift from the tumour to the control region.
        control_inside_head: Whether the control region lies inside the head foreground.
        area_px: The tumour's (and the control region's) area in pixels.

    Example:
        >>> r = tumour_reliance(model, x, masks, y)  # doctest: +SKIP
        >>> r.overall.tumour_drop, r.overall.control_drop, r.ratio  # doctest: +SKIP
        (0.41, 0.03, 10.5)
    """

    n_images: int
    n_scored: int
    n_excluded_no_mask: int
    n_unplaced: int
    settings: RelianceSettings
    overall: RelianceSummary
    per_class: dict[str, RelianceSummary]
    index: tuple[int, ...]
    label: tuple[int, ...]
    probability: tuple[float, ...]
    tumour_drop: tuple[float, ...]
    control_drop: tuple[float, ...]
    control_offset: tuple[tuple[int, int], ...]
    control_inside_head: tuple[bool, ...]
    area_px: tuple[int, ...]

    @property
    def ratio(self) -> float | None:
        """The overall ratio of the tumour drop to the control drop (``overall.ratio``)."""
        return self.overall.ratio


@dataclass(frozen=True, eq=False)
class ControlRegions:
    """Where :func:`control_regions` put each image's control region.

    Attributes:
        masks: bool ``[N, H, W]``, the control regions (all ``False`` where none was placed).
        offsets: int ``[N, 2]``, the ``(dy, dx)`` shift from the tumour mask.
        placed: bool ``[N]``, whether a place was found.
        inside_head: bool ``[N]``, whether that place lies inside the head foreground.
    """

    masks: np.ndarray
    offsets: np.ndarray
    placed: np.ndarray
    inside_head: np.ndarray


def head_foreground(images: Any, threshold: float = 0.1) -> np.ndarray:
    """A simple foreground (head) test: pixels brighter than ``threshold`` of each image's range, holes filled.

    Args:
        images: ``[N, H, W, C]`` or ``[N, H, W]`` images (channels are averaged).
        threshold: Fraction of each image's ``max - min`` above its minimum.

    Returns:
        bool ``[N, H, W]``; all ``True`` for a constant image.

    Example:
        >>> x = np.zeros((1, 5, 5)); x[0, 1:4, 1:4] = 1.0; x[0, 2, 2] = 0.0   # a ring
        >>> head_foreground(x)[0].sum()  # the hole is filled
        9
    """
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 4:
        x = x.mean(axis=-1)
    if x.ndim != 3:
        raise DataError(f"Expected images [N, H, W, C] or [N, H, W]; got shape {x.shape}.")
    lo = x.min(axis=(1, 2), keepdims=True)
    hi = x.max(axis=(1, 2), keepdims=True)
    fg = x > lo + float(threshold) * (hi - lo)
    in_plane = np.zeros((3, 3, 3), bool)
    in_plane[1] = ndimage.generate_binary_structure(2, 1)  # holes are filled per image, not across images
    fg = ndimage.binary_fill_holes(fg, structure=in_plane)
    fg[(hi <= lo)[:, 0, 0]] = True
    return np.asarray(fg, dtype=bool)


def _overlap(region: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """``out[n, dy + H - 1, dx + W - 1]`` = pixels of ``masks[n]`` shifted by ``(dy, dx)`` that fall in ``region[n]``."""
    from scipy.signal import fftconvolve

    out = fftconvolve(region.astype(np.float32), masks[:, ::-1, ::-1].astype(np.float32), mode="full", axes=(1, 2))
    return np.asarray(out)


def _shift(masks: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Shift each mask by its ``(dy, dx)``; pixels moved out of the image are dropped."""
    n, h, w = masks.shape
    rows = np.arange(h)[None, :] - offsets[:, :1]  # [N, H] source row of each target row
    cols = np.arange(w)[None, :] - offsets[:, 1:]
    ok = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    src = masks[np.arange(n)[:, None, None], np.clip(rows, 0, h - 1)[:, :, None], np.clip(cols, 0, w - 1)[:, None, :]]
    return np.asarray(src & ok, dtype=bool)


def control_regions(
    masks: Any,
    foreground: Any | None = None,
    *,
    margin_px: int = 0,
    seed: int = 0,
    chunk: int = 16,
) -> ControlRegions:
    """Move each mask's shape to a seeded random place outside the dilated tumour, inside the image (and head).

    The shifted shape never overlaps the tumour dilated by a disk of
    ``margin_px`` and always lies inside the image. Among such places, one
    inside ``foreground`` is chosen where one exists; otherwise any.

    Args:
        masks: Tumour masks ``[N, H, W]``; each should contain tumour pixels.
        foreground: bool ``[N, H, W]`` head foreground (:func:`head_foreground`), or ``None``.
        margin_px: Dilation of the tumour that the control region must not touch, in pixels.
        seed: Seed of the random placement.
        chunk: Images per vectorised step (bounds memory: about ``chunk * 4 * H * W`` floats).

    Returns:
        :class:`ControlRegions`.

    Raises:
        DataError: Masks that are not ``[N, H, W]`` or a foreground of another shape.

    Example:
        >>> m = np.zeros((1, 16, 16), bool); m[0, 2:5, 2:5] = True
        >>> c = control_regions(m, margin_px=2, seed=0)
        >>> bool(c.placed[0]), int(c.masks[0].sum()), bool((c.masks[0] & m[0]).any())
        (True, 9, False)
    """
    from neuroxai.evaluation.localization import _dilate

    m = as_masks(masks)
    n, h, w = m.shape
    fg = None if foreground is None else as_masks(foreground, m.shape, name="foreground")
    forbidden = _dilate(m, int(margin_px))
    rng = np.random.default_rng(seed)
    dys = np.arange(-(h - 1), h)
    dxs = np.arange(-(w - 1), w)
    offsets = np.zeros((n, 2), np.int64)
    placed = np.zeros(n, bool)
    inside = np.zeros(n, bool)
    rows_any = np.asarray(m.any(axis=2), dtype=bool)
    cols_any = np.asarray(m.any(axis=1), dtype=bool)
    for start in range(0, n, max(1, int(chunk))):
        sl = slice(start, min(n, start + max(1, int(chunk))))
        mk = m[sl]
        k = len(mk)
        has = np.asarray(mk.reshape(k, -1).any(axis=1), dtype=bool)
        # bounding box of each mask: the shift keeps it inside the image
        y0 = np.where(has, rows_any[sl].argmax(axis=1), 0)
        y1 = np.where(has, h - 1 - rows_any[sl][:, ::-1].argmax(axis=1), h - 1)
        x0 = np.where(has, cols_any[sl].argmax(axis=1), 0)
        x1 = np.where(has, w - 1 - cols_any[sl][:, ::-1].argmax(axis=1), w - 1)
        in_y = (dys[None, :] >= -y0[:, None]) & (dys[None, :] <= (h - 1 - y1)[:, None])
        in_x = (dxs[None, :] >= -x0[:, None]) & (dxs[None, :] <= (w - 1 - x1)[:, None])
        ok = in_y[:, :, None] & in_x[:, None, :] & (_overlap(forbidden[sl], mk) < 0.5)
        ok &= has[:, None, None]
        if fg is not None:
            strict = ok & (_overlap(~fg[sl], mk) < 0.5)
            use_strict = strict.reshape(k, -1).any(axis=1)
            ok = np.where(use_strict[:, None, None], strict, ok)
            inside[sl] = use_strict
        score = np.where(ok, rng.random(ok.shape), -1.0).reshape(k, -1)
        best = score.argmax(axis=1)
        placed[sl] = score[np.arange(k), best] >= 0
        iy, ix = np.unravel_index(best, ok.shape[1:])
        offsets[sl, 0] = dys[iy]
        offsets[sl, 1] = dxs[ix]
    offsets[~placed] = 0
    inside &= placed
    shifted = _shift(m, offsets)
    shifted[~placed] = False
    return ControlRegions(masks=shifted, offsets=offsets, placed=placed, inside_head=inside)


def _make_step(model: Any) -> Any:
    """The compiled perturbation step for ``model``, built once per model object (held weakly, dies with it)."""
    return _STEPS.get(model, _build_step)


def _build_step(model: Any) -> Any:
    from neuroxai._keras_backend import compile_model_function

    ref = weakref.ref(model)

    def step(images: Any, base: Any, regions: Any) -> Any:
        from keras import ops

        # images/base [b, H, W, C]; regions [b, V, H, W] bool -> outputs [b, V, K]
        b, v = ops.shape(images)[0], ops.shape(regions)[1]  # ints where static (always on JAX and PyTorch), else tensors
        x = ops.where(ops.expand_dims(regions, -1), base[:, None], images[:, None])  # [b, V, H, W, C]
        x = ops.reshape(x, (-1, *ops.shape(images)[1:]))
        out = ref()(x, training=False)  # type: ignore[misc]  # alive: the cache entry goes with the model
        if isinstance(out, (list, tuple)):
            out = out[0]
        return ops.reshape(ops.cast(out, "float32"), (b, v, -1))

    return compile_model_function(model, step)


def _summary(probability: np.ndarray, tumour: np.ndarray, control: np.ndarray, eps: float) -> RelianceSummary:
    if len(tumour) == 0:
        return RelianceSummary(n=0, probability=None, tumour_drop=None, control_drop=None, ratio=None)
    t = float(tumour.mean())
    c = float(control.mean())
    return RelianceSummary(
        n=len(tumour),
        probability=float(probability.mean()),
        tumour_drop=t,
        control_drop=c,
        ratio=(max(t, 0.0) + eps) / (max(c, 0.0) + eps),
    )


def tumour_reliance(
    model: Any,
    images: Any,
    masks: Any,
    labels: Any,
    *,
    class_names: Sequence[str] | None = None,
    probabilities: Any | None = None,
    baseline: str | float = "blur",
    blur_sigma: float | None = None,
    margin: float = 15.0,
    foreground_threshold: float | None = 0.1,
    ratio_epsilon: float = 0.01,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = False,
) -> TumourRelianceResult:
    """How much the true class's probability drops when the tumour is replaced, beside an equal area elsewhere.

    See the module notes for the definition of the control region and the ratio.

    Args:
        model: A Keras model returning class probabilities (logits are softmaxed).
        images: Model inputs ``[N, H, W, C]``, already scaled to the model's input range.
        masks: Tumour masks ``[N, H, W]``; images with an empty mask are left out and counted.
        labels: True class per image ``[N]``.
        class_names: Names for the label ids (default ``"0"``, ``"1"`` ...).
        probabilities: The model's probabilities on ``images`` ``[N, K]`` when already computed
            (saves one forward pass); default: computed here.
        baseline: What replaces a region: ``"blur"`` (default), ``"zero"``, ``"mean"`` or a number
            (:func:`~neuroxai.evaluation.baseline_fill`).
        blur_sigma: Blur sigma in pixels (default 10 px at 224 px, scaled to the image size).
        margin: Gap between the tumour and the control region, in pixels at 224 px (scaled).
        foreground_threshold: Keep the control region inside the head found by
            :func:`head_foreground` with this threshold where possible; ``None`` to skip the test.
        ratio_epsilon: The ``eps`` of the ratio (in probability units).
        batch_size: Perturbed images per forward pass (about).
        seed: Seed of the control placement.
        progress: Show a progress bar over chunks.

    Returns:
        A :class:`TumourRelianceResult`.

    Raises:
        DataError: Shapes that disagree, labels out of range, or an unknown baseline.
        BackendError: The Keras backend is none of TensorFlow, JAX and PyTorch.

    Example:
        >>> r = tumour_reliance(model, x, masks, y, class_names=names)  # doctest: +SKIP
        >>> r.overall.ratio >= 5  # doctest: +SKIP
        True
    """
    from neuroxai._progress import progress as _progress
    from neuroxai.evaluation._checks import require_model_backend
    from neuroxai.evaluation.faithfulness import _as_probabilities, baseline_fill

    require_model_backend("The tumour-reliance metric")
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise DataError(f"Expected images [N, H, W, C]; got shape {x.shape}.")
    n, h, w, _ = x.shape
    mk = as_masks(masks, (n, h, w))
    y = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(y) != n:
        raise DataError(f"Expected one label per image ({n}); got {len(y)}.")
    if isinstance(baseline, str) and baseline not in ("blur", "zero", "mean"):
        raise DataError(f"Unknown baseline {baseline!r}; expected 'blur', 'zero', 'mean' or a number.")
    sigma = float(blur_sigma) if blur_sigma is not None else _scaled(10.0, (h, w))
    margin_px = round(_scaled(margin, (h, w)))
    has = mk.reshape(n, -1).any(axis=1)
    fg = head_foreground(x, foreground_threshold) if foreground_threshold is not None else None
    regions = control_regions(mk, fg, margin_px=margin_px, seed=seed)
    keep = np.flatnonzero(has & regions.placed)

    probs_given = None
    if probabilities is not None:
        probs_given = np.asarray(probabilities, dtype=np.float64)
        if probs_given.ndim != 2 or len(probs_given) != n:
            raise DataError(f"Expected probabilities [N={n}, K]; got shape {probs_given.shape}.")
    if len(keep):
        k_out = probs_given.shape[1] if probs_given is not None else None
        if k_out is not None and (y[keep].min() < 0 or y[keep].max() >= k_out):
            raise DataError(f"Labels must be class indices 0..{k_out - 1}; got {sorted(set(y[keep].tolist()))}.")

    variants = [mk, regions.masks]  # tumour replaced, control replaced
    if probs_given is None:
        variants.insert(0, np.zeros_like(mk))  # the image itself
    v = len(variants)
    stacked = np.stack(variants, axis=1)  # [N, V, H, W]
    base = baseline_fill(x, baseline, blur_sigma=sigma) if len(keep) else x
    per_call = max(1, int(batch_size) // v)
    step: Any = _make_step(model) if len(keep) else None
    p_true = np.empty((len(keep), v))
    starts = range(0, len(keep), per_call)
    for i in _progress(starts, total=len(starts), desc="tumour reliance", unit="chunk", enabled=progress):
        idx = keep[i : i + per_call]
        pad = per_call - len(idx)  # constant batch shape: one trace only
        full = np.concatenate([idx, np.repeat(idx[-1:], pad)]) if pad else idx
        out = to_numpy(step(x[full], base[full], stacked[full]))[: len(idx)]
        probs = _as_probabilities(out.reshape(-1, out.shape[-1]).astype(np.float64)).reshape(len(idx), v, -1)
        lab = y[idx]
        if probs.shape[-1] <= lab.max() or lab.min() < 0:
            raise DataError(f"Labels must be class indices 0..{probs.shape[-1] - 1}; got {sorted(set(lab.tolist()))}.")
        p_true[i : i + len(idx)] = probs[np.arange(len(idx)), :, lab]
    if probs_given is not None:
        p0 = probs_given[keep, y[keep]] if len(keep) else np.zeros(0)
        p_tumour, p_control = p_true[:, 0], p_true[:, 1]
    else:
        p0, p_tumour, p_control = p_true[:, 0], p_true[:, 1], p_true[:, 2]
    tumour_drop = p0 - p_tumour
    control_drop = p0 - p_control

    eps = float(ratio_epsilon)
    kept_labels = y[keep]
    if class_names is None:
        k = int(y.max(initial=-1)) + 1
        class_names = [str(i) for i in range(k)]
    per_class = {}
    for c, cname in enumerate(class_names):
        sel = kept_labels == c
        per_class[str(cname)] = _summary(p0[sel], tumour_drop[sel], control_drop[sel], eps)
    return TumourRelianceResult(
        n_images=int(n),
        n_scored=len(keep),
        n_excluded_no_mask=int((~has).sum()),
        n_unplaced=int((has & ~regions.placed).sum()),
        settings=RelianceSettings(
            baseline=baseline,
            blur_sigma_px=sigma,
            margin_px=int(margin_px),
            foreground_threshold=None if foreground_threshold is None else float(foreground_threshold),
            ratio_epsilon=eps,
            seed=int(seed),
        ),
        overall=_summary(p0, tumour_drop, control_drop, eps),
        per_class=per_class,
        index=tuple(int(i) for i in keep),
        label=tuple(int(c) for c in kept_labels),
        probability=tuple(float(p) for p in p0),
        tumour_drop=tuple(float(d) for d in tumour_drop),
        control_drop=tuple(float(d) for d in control_drop),
        control_offset=tuple((int(a), int(b)) for a, b in regions.offsets[keep]),
        control_inside_head=tuple(bool(b) for b in regions.inside_head[keep]),
        area_px=tuple(int(a) for a in mk[keep].sum(axis=(1, 2))),
    )


@dataclass(frozen=True)
class TumourReliance(ExplanationMetric):
    """Tumour reliance (:func:`tumour_reliance`): an explainer-free, model-level metric.

    Needs the model, tumour masks and true labels; runs once per report, not per method.

    Args:
        baseline: What replaces a region: ``"blur"`` (default), ``"zero"``, ``"mean"`` or a number.
        blur_sigma: Blur sigma in pixels (default 10 px at 224 px, scaled).
        margin: Gap between the tumour and the control region, in pixels at 224 px.
        foreground_threshold: Head foreground test threshold (``None``: no head test).
        ratio_epsilon: The ``eps`` of the ratio.

    Raises:
        ExplainError: An unknown baseline or a negative margin or epsilon.

    Example:
        >>> TumourReliance(baseline="mean").name
        'reliance'
    """

    name: ClassVar[str] = "reliance"
    requires: ClassVar[frozenset[Requirement]] = frozenset({"model", "masks", "labels"})
    result_type: ClassVar[type[Record]] = TumourRelianceResult
    description: ClassVar[str] = "drop of the true-class probability when the tumour is blurred, beside an equal area elsewhere"

    baseline: str | float = "blur"
    blur_sigma: float | None = None
    margin: float = 15.0
    foreground_threshold: float | None = 0.1
    ratio_epsilon: float = 0.01

    def __post_init__(self) -> None:
        ok = (not isinstance(self.baseline, bool)) and (
            isinstance(self.baseline, (int, float)) or self.baseline in ("blur", "zero", "mean")
        )
        if not ok:
            raise ExplainError(f"Reliance baseline must be 'blur', 'zero', 'mean' or a number; got {self.baseline!r}.")
        if self.margin < 0 or self.ratio_epsilon < 0:
            raise ExplainError(f"Reliance margin and ratio_epsilon must be >= 0; got {self.margin} and {self.ratio_epsilon}.")

    def compute(self, inputs: MetricInputs) -> TumourRelianceResult:
        """Measure the model in ``inputs`` on its images, masks and labels (probabilities reused)."""
        return tumour_reliance(
            inputs.model,
            inputs.images,
            inputs.require_masks(),
            inputs.require_labels(),
            class_names=inputs.class_names,
            probabilities=inputs.probabilities,
            baseline=self.baseline,
            blur_sigma=self.blur_sigma,
            margin=self.margin,
            foreground_threshold=self.foreground_threshold,
            ratio_epsilon=self.ratio_epsilon,
            batch_size=inputs.batch_size,
            seed=inputs.seed,
            progress=inputs.progress,
        )
