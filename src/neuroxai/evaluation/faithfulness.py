"""Faithfulness of explanation maps: deletion and insertion curves (RISE).

Petsiuk, Das and Saenko, "RISE: Randomized input sampling for explanation of
black-box models", BMVC 2018.

- **Deletion**: starting from the image, replace its pixels with a baseline
  fill in order of decreasing importance (the map's highest pixels first),
  ``steps`` equal steps until every pixel is replaced, and record the model's
  probability of the target class after each step. A faithful map makes the
  probability fall fast: a *low* area under the curve (AUC) is good.
- **Insertion**: starting from the baseline, reveal the image's pixels in the
  same order. A faithful map makes the probability rise fast: a *high* AUC is
  good.

Each curve has ``steps + 1`` points at the fractions ``0, 1/steps, ..., 1``;
the AUC is the trapezoid rule over that fraction axis, so it lies in [0, 1].
Ties in a map are broken in a seeded random order (a constant map removes
pixels at random, not row by row). The same curves are computed for a seeded
*random* map, the reference a method has to beat.

Baseline fills (``"zero"``, ``"mean"``, ``"blur"`` or a number): the RISE
reference code deletes to zeros (black) and inserts into a blurred copy
(Gaussian, sigma 5 px at 224 px, scaled to the image size); those are the
defaults here.

All images and all steps run as batched, compiled forward passes: the
perturbed copies ``[n * (steps + 1), H, W, C]`` of a chunk of ``n`` images are
built inside one ``tf.function`` together with the forward pass, with no
per-image Python loop.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from neuroxai._cache import PerModel
from neuroxai._keras_backend import to_numpy
from neuroxai._records import Record
from neuroxai.errors import DataError, ExplainError
from neuroxai.evaluation._metric import ExplanationMetric, MetricInputs, Requirement

__all__ = [
    "CurveSummary",
    "DeletionInsertion",
    "DeletionInsertionCurves",
    "Faithfulness",
    "FaithfulnessResult",
    "FaithfulnessSettings",
    "auc",
    "baseline_fill",
    "deletion_insertion_curves",
    "faithfulness_report",
]

#: Compiled steps per model object (weak keys: an entry goes with its model).
_STEPS: PerModel[Any] = PerModel()


@dataclass(frozen=True, eq=False)
class DeletionInsertionCurves(Record):
    """Per-image deletion and insertion curves (:func:`deletion_insertion_curves`).

    Attributes:
        fractions: float64 ``[S+1]``, the fractions of pixels removed (deletion) or revealed (insertion).
        deletion: float64 ``[N, S+1]``, the target-class probability along each deletion curve.
        insertion: float64 ``[N, S+1]``, the same for insertion.
        deletion_auc: float64 ``[N]``, the area under each deletion curve (lower is better).
        insertion_auc: float64 ``[N]``, the area under each insertion curve (higher is better).
    """

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    deletion_auc: np.ndarray
    insertion_auc: np.ndarray

    def __post_init__(self) -> None:  # arrays also when read back from JSON lists
        for name in ("fractions", "deletion", "insertion", "deletion_auc", "insertion_auc"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=np.float64))


@dataclass(frozen=True)
class CurveSummary(Record):
    """One kind of curve (deletion or insertion) over a set of images.

    Attributes:
        auc: Mean area under the curve.
        auc_std: Standard deviation of the per-image areas.
        curve: The mean curve, one value per fraction.
        auc_per_image: The area of each image's curve.
    """

    auc: float
    auc_std: float
    curve: tuple[float, ...]
    auc_per_image: tuple[float, ...]


@dataclass(frozen=True)
class DeletionInsertion(Record):
    """Deletion and insertion of one map family (the method's maps, or the random map).

    Attributes:
        deletion: Deletion curves (lower area is better).
        insertion: Insertion curves (higher area is better).
        insertion_minus_deletion: Mean of insertion AUC minus deletion AUC (higher is better).
    """

    deletion: CurveSummary
    insertion: CurveSummary
    insertion_minus_deletion: float


@dataclass(frozen=True)
class FaithfulnessSettings(Record):
    """How deletion and insertion were run.

    Attributes:
        deletion_baseline: Fill of deleted pixels (``"zero"``, ``"mean"``, ``"blur"`` or a number).
        insertion_baseline: The image insertion starts from.
        blur_sigma_px: Sigma of the ``"blur"`` fill, in pixels at the image size.
        seed: Seed of the random map and of tie-breaking.
    """

    deletion_baseline: str | float
    insertion_baseline: str | float
    blur_sigma_px: float
    seed: int


@dataclass(frozen=True)
class FaithfulnessResult(Record):
    """Deletion/insertion of one method beside a seeded random map (:func:`faithfulness_report`).

    Attributes:
        n_images: Images measured.
        steps: Steps per curve (curves have ``steps + 1`` points).
        fractions: The fraction axis, ``steps + 1`` values from 0 to 1.
        settings: Baselines, blur and seed.
        method: Curves of the method's maps.
        random: Curves of the random map, the reference to beat.

    Example:
        >>> r = faithfulness_report(model, x, maps, y)  # doctest: +SKIP
        >>> r.method.deletion.auc < r.random.deletion.auc  # doctest: +SKIP
        True
    """

    n_images: int
    steps: int
    fractions: tuple[float, ...]
    settings: FaithfulnessSettings
    method: DeletionInsertion
    random: DeletionInsertion


def auc(curves: np.ndarray, fractions: np.ndarray | None = None) -> np.ndarray:
    """Area under curves ``[..., S]`` by the trapezoid rule over the fraction axis.

    Args:
        curves: Values at ``S`` equally spaced fractions of pixels (last axis).
        fractions: The x positions; default ``linspace(0, 1, S)``.

    Returns:
        ``curves.shape[:-1]`` areas.

    Example:
        >>> float(auc(np.array([1.0, 0.5, 0.0])))
        0.5
    """
    curves = np.asarray(curves, dtype=np.float64)
    if fractions is None:
        fractions = np.linspace(0.0, 1.0, curves.shape[-1])
    dx = np.diff(np.asarray(fractions, dtype=np.float64))
    return np.asarray(((curves[..., 1:] + curves[..., :-1]) * 0.5 * dx).sum(axis=-1), dtype=np.float64)


def baseline_fill(images: np.ndarray, fill: str | float = "blur", *, blur_sigma: float | None = None) -> np.ndarray:
    """The baseline image that deleted pixels are replaced with (or insertion starts from).

    Args:
        images: ``[N, H, W, C]`` model inputs.
        fill: ``"zero"`` (black in 0..1 and 0..255 input ranges), ``"mean"`` (each image's
            per-channel mean), ``"blur"`` (a Gaussian-blurred copy), or a number.
        blur_sigma: Blur sigma in pixels; default ``5 * max(H, W) / 224`` (RISE).

    Returns:
        float32 ``[N, H, W, C]``.

    Raises:
        ValueError: For an unknown ``fill``.

    Example:
        >>> x = np.arange(8, dtype=np.float32).reshape(1, 2, 2, 2)
        >>> baseline_fill(x, "mean")[0, 0, 0].tolist()
        [3.0, 4.0]
    """
    images = np.asarray(images, dtype=np.float32)
    if isinstance(fill, (int, float)) and not isinstance(fill, bool):
        return np.full_like(images, float(fill))
    if fill == "zero":
        return np.zeros_like(images)
    if fill == "mean":
        return np.array(np.broadcast_to(images.mean(axis=(1, 2), keepdims=True), images.shape), dtype=np.float32)
    if fill == "blur":
        from scipy import ndimage

        sigma = blur_sigma if blur_sigma is not None else 5.0 * max(images.shape[1:3]) / 224.0
        return np.asarray(ndimage.gaussian_filter(images, sigma=(0, sigma, sigma, 0), mode="nearest"), dtype=np.float32)
    raise ValueError(f"Unknown baseline fill {fill!r}; expected 'zero', 'mean', 'blur' or a number.")


def _ranks(maps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rank of each pixel, 0 = most important; ties in seeded random order. int32 [N, H, W]."""
    n = len(maps)
    flat = maps.reshape(n, -1)
    tiebreak = rng.random(flat.shape)
    order = np.lexsort((tiebreak, -flat), axis=1)
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.broadcast_to(np.arange(flat.shape[1]), flat.shape), axis=1)
    return ranks.reshape(maps.shape).astype(np.int32)


def _as_probabilities(out: np.ndarray) -> np.ndarray:
    """Softmax ``out`` unless it already looks like probabilities."""
    if out.ndim == 1:
        out = out[:, None]
    if out.shape[1] == 1:  # a single sigmoid unit: P(class 1)
        p = out[:, 0]
        if p.min() < 0 or p.max() > 1:
            p = 1.0 / (1.0 + np.exp(-p))
        return np.stack([1.0 - p, p], axis=1)
    if out.min() >= 0 and np.allclose(out.sum(axis=1), 1.0, atol=1e-3):
        return out
    z = out - out.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float64)


def _make_step(model: Any) -> Any:
    """The compiled perturbation step for ``model``, built once per model object (held weakly, dies with it)."""
    from neuroxai.evaluation._checks import require_model_backend

    require_model_backend("The deletion/insertion (faithfulness) metric")
    return _STEPS.get(model, _build_step)


def _build_step(model: Any) -> Any:
    from neuroxai._keras_backend import compile_model_function

    ref = weakref.ref(model)

    def step(images: Any, ranks: Any, del_base: Any, ins_base: Any, n_removed: Any) -> Any:
        from keras import ops

        # images/bases [b, H, W, C]; ranks [b, H, W]; n_removed [S]
        b, s = ops.shape(images)[0], ops.shape(n_removed)[0]  # ints where static (always on JAX and PyTorch), else tensors
        hit = ops.expand_dims(ranks[:, None, :, :] < n_removed[None, :, None, None], -1)  # [b, S, H, W, 1]
        x_del = ops.where(hit, del_base[:, None], images[:, None])
        x_ins = ops.where(hit, images[:, None], ins_base[:, None])
        x = ops.concatenate([x_del, x_ins], axis=0)  # [2b, S, H, W, C]
        x = ops.reshape(x, (-1, *ops.shape(images)[1:]))
        out = ref()(x, training=False)  # type: ignore[misc]  # alive: the cache entry goes with the model
        if isinstance(out, (list, tuple)):
            out = out[0]
        return ops.reshape(ops.cast(out, "float32"), (2, b, s, -1))

    return compile_model_function(model, step)


def deletion_insertion_curves(
    model: Any,
    images: Any,
    maps: Any,
    targets: Any,
    *,
    steps: int = 20,
    deletion_baseline: str | float = "zero",
    insertion_baseline: str | float = "blur",
    blur_sigma: float | None = None,
    batch_size: int = 256,
    seed: int = 0,
    progress: bool = False,
) -> DeletionInsertionCurves:
    """Deletion and insertion curves of the target-class probability, batched.

    Args:
        model: A Keras model mapping ``[B, H, W, C]`` inputs to class probabilities
            (logits are softmaxed automatically).
        images: Model inputs ``[N, H, W, C]`` (already preprocessed).
        maps: Importance maps ``[N, H, W]`` (higher = more important).
        targets: Class index per image ``[N]``.
        steps: Number of steps; curves have ``steps + 1`` points.
        deletion_baseline: Fill for deleted pixels (see :func:`baseline_fill`).
        insertion_baseline: Image insertion starts from.
        blur_sigma: Sigma of the ``"blur"`` fill in pixels (default RISE's, scaled).
        batch_size: Forward-pass batch size (perturbed images per call, roughly).
        seed: Seed of the tie-breaking order.
        progress: Show a progress bar over chunks.

    Returns:
        A :class:`DeletionInsertionCurves`: ``fractions`` ``[S+1]``, ``deletion`` and
        ``insertion`` ``[N, S+1]``, ``deletion_auc`` and ``insertion_auc`` ``[N]``.

    Raises:
        DataError: When shapes disagree.
        BackendError: The Keras backend is none of TensorFlow, JAX and PyTorch.

    Example:
        >>> curves = deletion_insertion_curves(model, x, maps, y, steps=10)  # doctest: +SKIP
        >>> curves.deletion_auc.mean()  # doctest: +SKIP
    """
    return _curves(
        model,
        images,
        maps,
        targets,
        None,
        steps=steps,
        deletion_baseline=deletion_baseline,
        insertion_baseline=insertion_baseline,
        blur_sigma=blur_sigma,
        batch_size=batch_size,
        seed=seed,
        progress=progress,
    )


def _curves(
    model: Any,
    images: Any,
    maps: Any,
    targets: Any,
    step: Any,
    *,
    steps: int,
    deletion_baseline: str | float,
    insertion_baseline: str | float,
    blur_sigma: float | None,
    batch_size: int,
    seed: int,
    progress: bool,
) -> DeletionInsertionCurves:
    """:func:`deletion_insertion_curves` with a compiled ``step`` to reuse (``None``: compile one)."""
    from neuroxai._progress import progress as _progress
    from neuroxai.evaluation._checks import as_maps

    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 3:
        x = x[..., None]
    m = as_maps(maps)
    t = np.asarray(targets, dtype=np.int64).reshape(-1)
    if x.ndim != 4 or m.shape != x.shape[:3] or len(t) != len(x):
        raise DataError(
            f"Expected images [N, H, W, C], maps [N, H, W] and targets [N] that agree; got images {x.shape}, "
            f"maps {m.shape}, targets {t.shape}. Explain the same images you evaluate, at the model's input size."
        )
    if steps < 1:
        raise ValueError(f"Expected steps >= 1; got {steps}.")
    n, h, w, _ = x.shape
    rng = np.random.default_rng(seed)
    ranks = _ranks(m, rng)
    del_base = baseline_fill(x, deletion_baseline, blur_sigma=blur_sigma)
    ins_base = baseline_fill(x, insertion_baseline, blur_sigma=blur_sigma)
    fractions = np.linspace(0.0, 1.0, steps + 1)
    n_removed = np.round(fractions * h * w).astype(np.int32)
    chunk = max(1, int(batch_size) // (2 * (steps + 1)))
    if step is None:
        step = _make_step(model)
    deletion = np.empty((n, steps + 1))
    insertion = np.empty((n, steps + 1))
    starts = range(0, n, chunk)
    for i in _progress(starts, total=len(starts), desc="deletion/insertion", unit="chunk", enabled=progress):
        j = min(n, i + chunk)
        sl = slice(i, j)
        pad = chunk - (j - i)  # constant chunk shape: one trace only

        def _p(a: np.ndarray, pad: int = pad) -> np.ndarray:
            return np.concatenate([a, np.repeat(a[-1:], pad, axis=0)]) if pad else a

        out = to_numpy(step(_p(x[sl]), _p(ranks[sl]), _p(del_base[sl]), _p(ins_base[sl]), n_removed))
        out = out[:, : j - i]  # [2, b, S, K]
        probs = _as_probabilities(out.reshape(-1, out.shape[-1])).reshape((*out.shape[:-1], -1))
        tgt = t[sl][None, :, None, None]
        sel = np.take_along_axis(probs, np.broadcast_to(tgt, (*probs.shape[:-1], 1)), axis=-1)[..., 0]
        deletion[sl] = sel[0]
        insertion[sl] = sel[1]
    return DeletionInsertionCurves(
        fractions=fractions,
        deletion=deletion,
        insertion=insertion,
        deletion_auc=auc(deletion, fractions),
        insertion_auc=auc(insertion, fractions),
    )


def _curve_summary(curves: np.ndarray, areas: np.ndarray) -> CurveSummary:
    return CurveSummary(
        auc=float(areas.mean()) if len(areas) else float("nan"),
        auc_std=float(areas.std()) if len(areas) else float("nan"),
        curve=tuple(float(v) for v in curves.mean(axis=0)) if len(curves) else (),
        auc_per_image=tuple(float(v) for v in areas),
    )


def _summarise(curves: DeletionInsertionCurves) -> DeletionInsertion:
    gap = curves.insertion_auc - curves.deletion_auc
    return DeletionInsertion(
        deletion=_curve_summary(curves.deletion, curves.deletion_auc),
        insertion=_curve_summary(curves.insertion, curves.insertion_auc),
        insertion_minus_deletion=float(gap.mean()) if len(gap) else float("nan"),
    )


def faithfulness_report(
    model: Any,
    images: Any,
    maps: Any,
    targets: Any,
    *,
    steps: int = 20,
    deletion_baseline: str | float = "zero",
    insertion_baseline: str | float = "blur",
    blur_sigma: float | None = None,
    batch_size: int = 256,
    seed: int = 0,
    progress: bool = False,
) -> FaithfulnessResult:
    """Deletion/insertion AUCs and mean curves of the maps, beside a seeded random map.

    Read it as: ``method.deletion.auc`` should be clearly *below*
    ``random.deletion.auc`` and ``method.insertion.auc`` clearly *above*
    ``random.insertion.auc``; ``insertion_minus_deletion`` sums both up
    (higher is better).

    Args:
        model: Keras model returning class probabilities (or logits).
        images: Model inputs ``[N, H, W, C]``.
        maps: Importance maps ``[N, H, W]``.
        targets: Class index per image ``[N]``.
        steps: Number of steps (curves have ``steps + 1`` points).
        deletion_baseline: Fill for deleted pixels.
        insertion_baseline: Image insertion starts from.
        blur_sigma: Sigma of the ``"blur"`` fill in pixels.
        batch_size: Forward-pass batch size.
        seed: Seed of the random map and of tie-breaking.
        progress: Show progress bars.

    Returns:
        A :class:`FaithfulnessResult`; each of ``method`` and ``random`` holds ``deletion`` and
        ``insertion`` (``auc``, ``auc_std``, the mean ``curve``, ``auc_per_image``) and
        ``insertion_minus_deletion``.

    Raises:
        DataError: When shapes disagree.

    Example:
        >>> r = faithfulness_report(model, x, maps, y)  # doctest: +SKIP
        >>> r.method.deletion.auc < r.random.deletion.auc  # doctest: +SKIP
        True
    """
    m = np.asarray(maps)
    step = _make_step(model)  # one compiled function for the method's and the random map's curves

    def curves(which: np.ndarray) -> DeletionInsertionCurves:
        return _curves(
            model,
            images,
            which,
            targets,
            step,
            steps=steps,
            deletion_baseline=deletion_baseline,
            insertion_baseline=insertion_baseline,
            blur_sigma=blur_sigma,
            batch_size=batch_size,
            seed=seed,
            progress=progress,
        )

    method = curves(m)
    rand = curves(np.random.default_rng(seed + 1).random(m.shape[:3] if m.ndim >= 3 else m.shape))
    x = np.asarray(images)
    sigma = blur_sigma if blur_sigma is not None else 5.0 * max(x.shape[1:3]) / 224.0
    return FaithfulnessResult(
        n_images=len(x),
        steps=int(steps),
        fractions=tuple(float(f) for f in method.fractions),
        settings=FaithfulnessSettings(
            deletion_baseline=deletion_baseline,
            insertion_baseline=insertion_baseline,
            blur_sigma_px=float(sigma),
            seed=int(seed),
        ),
        method=_summarise(method),
        random=_summarise(rand),
    )


def _check_fill(fill: str | float, what: str) -> None:
    if isinstance(fill, bool) or not (isinstance(fill, (int, float)) or fill in ("zero", "mean", "blur")):
        raise ExplainError(f"{what} must be 'zero', 'mean', 'blur' or a number; got {fill!r}.")


@dataclass(frozen=True)
class Faithfulness(ExplanationMetric):
    """Deletion and insertion curves (RISE) of each method beside a random map (:func:`faithfulness_report`).

    Needs the model and the maps. Every image and step runs as batched, compiled forward passes.

    Args:
        steps: Steps per curve (curves have ``steps + 1`` points).
        n_images: Use only the first this many images (default: all).
        deletion_baseline: Fill of deleted pixels (``"zero"``, ``"mean"``, ``"blur"`` or a number).
        insertion_baseline: The image insertion starts from.
        blur_sigma: Sigma of the ``"blur"`` fill in pixels (default 5 px at 224 px, scaled).

    Raises:
        ExplainError: ``steps`` below 1, ``n_images`` below 0, or an unknown baseline.

    Example:
        >>> Faithfulness(steps=10, deletion_baseline="blur").steps
        10
    """

    name: ClassVar[str] = "faithfulness"
    requires: ClassVar[frozenset[Requirement]] = frozenset({"model", "maps"})
    result_type: ClassVar[type[Record]] = FaithfulnessResult
    description: ClassVar[str] = "deletion/insertion curves and their areas, beside a random map"

    steps: int = 20
    n_images: int | None = None
    deletion_baseline: str | float = "zero"
    insertion_baseline: str | float = "blur"
    blur_sigma: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ExplainError(f"Faithfulness steps must be an integer >= 1; got {self.steps!r}.")
        if self.n_images is not None and self.n_images < 0:
            raise ExplainError(f"Faithfulness n_images must be >= 0 or None; got {self.n_images}.")
        _check_fill(self.deletion_baseline, "deletion_baseline")
        _check_fill(self.insertion_baseline, "insertion_baseline")

    def compute(self, inputs: MetricInputs) -> FaithfulnessResult:
        """Deletion/insertion of ``inputs.maps`` (the first ``n_images``) beside a random map."""
        maps = inputs.require_maps()
        n = len(maps) if self.n_images is None else min(len(maps), int(self.n_images))
        return faithfulness_report(
            inputs.model,
            inputs.images[:n],
            maps[:n],
            inputs.targets[:n],
            steps=self.steps,
            deletion_baseline=self.deletion_baseline,
            insertion_baseline=self.insertion_baseline,
            blur_sigma=self.blur_sigma,
            batch_size=max(256, inputs.batch_size, 2 * (self.steps + 1)),
            seed=inputs.seed,
            progress=inputs.progress,
        )
