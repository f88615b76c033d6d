"""Sanity checks for saliency maps: cascading model-parameter randomization.

Adebayo et al., "Sanity checks for saliency maps", NeurIPS 2018.

An explanation that is about the model must change when the model's learned
weights are destroyed. The check works on a **clone** of the model (the
user's model is never touched): starting at the output layer and moving
towards the input, each layer that has weights is re-initialised in turn,
cumulatively, and after each step the maps are recomputed and compared with
the original maps by

- the absolute Spearman rank correlation between the two maps of each image
  (as in the paper, which takes the absolute value because some methods flip
  sign); a constant map has no ranking and counts as 0; and
- SSIM (Wang et al. 2004, "Image quality assessment: from error visibility to
  structural similarity") with an 11-tap Gaussian window (sigma 1.5) on maps
  rescaled to [0, 1] by their own maximum.

Re-initialisation: every *trainable* weight tensor of the layer is replaced by
seeded normal noise with mean 0 and the tensor's own standard deviation (so
the scale of activations stays sensible); a tensor that is constant (for
example a fresh zero bias) keeps its values. Non-trainable state (batch-norm
moving statistics) is kept. Layers without weights are skipped.

**Pass rule.** A method passes when, after the whole model is randomized,
the mean absolute Spearman correlation with the original maps is below
``threshold`` (default 0.5: the two rankings then share under a quarter of
their variance). Adebayo et al. judge by eye that maps of a randomized model
must differ; this is a fixed, documented cut on their rank measure. SSIM is
reported beside it (per step, with its spread) but does not decide: on
sparse maps such as CAMs, which are zero over most of the image, SSIM
rewards agreement on the empty background, so a randomized model whose maps
collapse to zero can still score an SSIM above 0.5 against a sparse
original. An explainer that ignores the model (an edge detector) stays at
similarity 1 on both measures and fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from neuroxai._records import Record
from neuroxai.errors import ExplainError
from neuroxai.evaluation._metric import ExplainFn, ExplanationMetric, MetricInputs, Requirement

__all__ = [
    "Sanity",
    "SanityResult",
    "Similarity",
    "cascading_randomization",
    "randomizable_layers",
    "spearman_similarity",
    "ssim",
]


@dataclass(frozen=True)
class Similarity(Record):
    """Mean similarity of maps to the original maps.

    Attributes:
        spearman: Mean absolute Spearman rank correlation.
        ssim: Mean SSIM.
    """

    spearman: float
    ssim: float


@dataclass(frozen=True)
class SanityResult(Record):
    """The cascading randomization check of one method (:func:`cascading_randomization`).

    Attributes:
        n_images: Images explained at every step.
        layers: ``"original"``, then the layers randomized, in order (output to input).
        spearman: Mean absolute Spearman correlation with the original maps per step (step 0 is 1.0).
        spearman_std: Its standard deviation over images, per step.
        ssim: Mean SSIM with the original maps per step.
        ssim_std: Its standard deviation over images, per step.
        final: Both similarities after the last step.
        threshold: The pass threshold on ``final.spearman``.
        rule: The pass rule, in words.
        passed: Whether the method passed.
        seed: Seed of the re-initialisation noise.

    Example:
        >>> r = cascading_randomization(model, x[:16], y[:16], explain_fn)  # doctest: +SKIP
        >>> r.passed, r.final.spearman  # doctest: +SKIP
    """

    n_images: int
    layers: tuple[str, ...]
    spearman: tuple[float, ...]
    spearman_std: tuple[float, ...]
    ssim: tuple[float, ...]
    ssim_std: tuple[float, ...]
    final: Similarity
    threshold: float
    rule: str
    passed: bool
    seed: int


def spearman_similarity(a: Any, b: Any, *, absolute: bool = True) -> np.ndarray:
    """Spearman rank correlation between paired maps, vectorised over the batch.

    Ranks with ties averaged (as ``scipy.stats.spearmanr``), then the Pearson
    correlation of the ranks. A pair where either map is constant has no
    defined correlation and scores 0.

    Args:
        a: Maps ``[N, H, W]``.
        b: Maps ``[N, H, W]``.
        absolute: Return ``|rho|`` (Adebayo et al.).

    Returns:
        float64 ``[N]``.

    Example:
        >>> import numpy as np
        >>> x = np.arange(16.0).reshape(1, 4, 4)
        >>> spearman_similarity(x, -x).tolist(), spearman_similarity(x, -x, absolute=False).tolist()
        ([1.0], [-1.0])
    """
    from scipy.stats import rankdata

    from neuroxai.evaluation._checks import as_maps

    a = as_maps(a, "maps a")
    b = as_maps(b, "maps b")
    if a.shape != b.shape:
        raise ValueError(f"Expected paired maps of one shape; got {a.shape} and {b.shape}.")
    ra = rankdata(a.reshape(len(a), -1), axis=1)
    rb = rankdata(b.reshape(len(b), -1), axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    den = np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))
    rho = np.where(den > 0, (ra * rb).sum(axis=1) / np.where(den > 0, den, 1.0), 0.0)
    rho = np.clip(rho, -1.0, 1.0)
    return np.abs(rho) if absolute else rho


def ssim(a: Any, b: Any, *, sigma: float = 1.5, data_range: float = 1.0, normalize: bool = True) -> np.ndarray:
    """Structural similarity (Wang et al. 2004) of paired maps, mean over pixels.

    Gaussian-weighted local means, variances and covariance (window sigma 1.5,
    truncated at 11 taps as in the paper), ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``.

    Args:
        a: Maps ``[N, H, W]``.
        b: Maps ``[N, H, W]``.
        sigma: Gaussian window sigma in pixels.
        data_range: ``L``, the value range.
        normalize: Rescale each map to [0, 1] by its maximum first (maps whose max is 0 stay 0).

    Returns:
        float64 ``[N]`` in [-1, 1] (1 for identical maps).

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).random((2, 16, 16))
        >>> np.round(ssim(x, x), 6).tolist()
        [1.0, 1.0]
    """
    s = _ssim_map(a, b, sigma=sigma, data_range=data_range, normalize=normalize)
    return np.asarray(s.reshape(len(s), -1).mean(axis=1), dtype=np.float64)


def _ssim_map(a: Any, b: Any, *, sigma: float, data_range: float, normalize: bool) -> np.ndarray:
    from scipy import ndimage

    from neuroxai.evaluation._checks import as_maps

    a = as_maps(a, "maps a")
    b = as_maps(b, "maps b")
    if a.shape != b.shape:
        raise ValueError(f"Expected paired maps of one shape; got {a.shape} and {b.shape}.")
    if normalize:

        def _norm(x: np.ndarray) -> np.ndarray:
            mx = x.reshape(len(x), -1).max(axis=1)[:, None, None]
            return np.where(mx > 0, x / np.where(mx > 0, mx, 1.0), 0.0)

        a, b = _norm(a), _norm(b)
    truncate = 5.0 / sigma  # 11-tap window: radius 5

    def f(x: np.ndarray) -> np.ndarray:
        return np.asarray(ndimage.gaussian_filter(x, sigma=(0, sigma, sigma), truncate=truncate, mode="reflect"))

    mu_a, mu_b = f(a), f(b)
    va = f(a * a) - mu_a**2
    vb = f(b * b) - mu_b**2
    cov = f(a * b) - mu_a * mu_b
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    return np.asarray(((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (va + vb + c2)))


def _walk(layer: Any) -> list[Any]:
    """Layers in graph order, nested models expanded in place."""
    out = []
    for sub in getattr(layer, "layers", []):
        if getattr(sub, "layers", None):
            out.extend(_walk(sub))
        else:
            out.append(sub)
    return out


def randomizable_layers(model: Any) -> list[Any]:
    """Layers with trainable weights, from the output towards the input (nested models expanded).

    Args:
        model: A Keras model.

    Returns:
        The layers in the order the cascade randomizes them.

    Example:
        >>> [l.name for l in randomizable_layers(model)]  # doctest: +SKIP
        ['logits', 'conv3', 'conv2', 'conv1']
    """
    return [layer for layer in reversed(_walk(model)) if layer.trainable_weights]


def _randomize(layer: Any, rng: np.random.Generator) -> None:
    for v in layer.trainable_weights:
        w = np.asarray(v.numpy())
        std = float(w.std())
        if std > 0:
            v.assign(rng.normal(0.0, std, size=w.shape).astype(w.dtype))


def _clone(model: Any) -> Any:
    import keras

    try:
        clone = keras.models.clone_model(model)
    except Exception as exc:  # subclassed models cannot always be cloned
        raise ExplainError(
            f"Cannot clone the model for the randomization check ({type(exc).__name__}: {exc}). "
            "Expected a functional or Sequential Keras model; rebuild it as one, or skip the sanity check."
        ) from exc
    clone.set_weights(model.get_weights())
    return clone


def cascading_randomization(
    model: Any,
    images: Any,
    targets: Any,
    explain_fn: ExplainFn,
    *,
    seed: int = 0,
    threshold: float = 0.5,
    max_layers: int | None = None,
    progress: bool = False,
    original_maps: Any | None = None,
) -> SanityResult:
    """Cascading randomization sanity check (Adebayo et al. 2018) for one explainer.

    Args:
        model: The trained Keras model; it is cloned and never modified.
        images: Model inputs ``[N, H, W, C]`` (a few dozen are plenty).
        targets: Class index per image ``[N]``; maps are always for these classes.
        explain_fn: ``explain_fn(model, images, targets) -> maps [N, H, W]``, called on the
            original model and on the clone after each randomization step.
        seed: Seed of the re-initialisation noise.
        threshold: Pass when the final mean absolute Spearman correlation is below it.
        max_layers: Randomize only this many layers from the top (default all); the pass rule
            then applies to the last step taken.
        progress: Show a progress bar over layers.
        original_maps: The maps of the trained model for these images and targets, when already
            computed (saves explaining them again); default: ``explain_fn(model, images, targets)``.

    Returns:
        A :class:`SanityResult`: ``layers`` (names, in order), ``spearman`` and ``ssim`` (mean per
        step, step 0 = original model, so ``(1.0, ...)``), their standard deviations, ``final``
        (after the last step), ``threshold``, ``rule`` (in words), ``passed``, ``n_images``.

    Raises:
        ExplainError: When the model cannot be cloned or maps have the wrong shape.
        BackendError: The Keras backend is none of TensorFlow, JAX and PyTorch.

    Example:
        >>> r = cascading_randomization(model, x[:16], y[:16], my_explain_fn)  # doctest: +SKIP
        >>> r.passed, r.final.spearman  # doctest: +SKIP
    """
    from neuroxai._progress import progress as _progress
    from neuroxai.evaluation._checks import require_model_backend

    require_model_backend("The randomization sanity check")
    x = np.asarray(images, dtype=np.float32)
    t = np.asarray(targets, dtype=np.int64).reshape(-1)
    if original_maps is None:
        original_maps = explain_fn(model, x, t)
    original = np.asarray(original_maps, dtype=np.float64)
    if original.ndim == 4 and original.shape[-1] == 1:
        original = original[..., 0]
    if original.shape != x.shape[:3]:
        raise ExplainError(f"Expected explain_fn to return maps of shape {x.shape[:3]}; got {original.shape}.")
    clone = _clone(model)
    layers = randomizable_layers(clone)
    if max_layers is not None:
        layers = layers[: int(max_layers)]
    if not layers:
        raise ExplainError("The model has no trainable weights to randomize; the sanity check needs a trained model.")
    rng = np.random.default_rng(seed)
    sp_mean, sp_std, ss_mean, ss_std = [1.0], [0.0], [1.0], [0.0]
    for layer in _progress(layers, total=len(layers), desc="randomization", unit="layer", enabled=progress):
        _randomize(layer, rng)
        maps = np.asarray(explain_fn(clone, x, t), dtype=np.float64)
        if maps.ndim == 4 and maps.shape[-1] == 1:
            maps = maps[..., 0]
        maps = np.nan_to_num(maps, nan=0.0, posinf=0.0, neginf=0.0)
        sp = spearman_similarity(original, maps)
        ss = ssim(original, maps)
        sp_mean.append(float(sp.mean()))
        sp_std.append(float(sp.std()))
        ss_mean.append(float(ss.mean()))
        ss_std.append(float(ss.std()))
    final = Similarity(spearman=sp_mean[-1], ssim=ss_mean[-1])
    return SanityResult(
        n_images=len(x),
        layers=("original", *(str(layer.name) for layer in layers)),
        spearman=tuple(sp_mean),
        spearman_std=tuple(sp_std),
        ssim=tuple(ss_mean),
        ssim_std=tuple(ss_std),
        final=final,
        threshold=float(threshold),
        rule=(
            f"pass when, after randomizing {'all' if max_layers is None else len(layers)} layers with weights "
            f"(output to input), mean |Spearman| with the original maps < {threshold} (SSIM reported, not used)"
        ),
        passed=bool(final.spearman < threshold),
        seed=int(seed),
    )


@dataclass(frozen=True)
class Sanity(ExplanationMetric):
    """Adebayo et al.'s cascading model-parameter randomization check (:func:`cascading_randomization`).

    Needs the model and the explainer (it explains a randomized clone again after each layer).

    Args:
        n_images: Images used (the first ones; each is explained once per layer).
        threshold: Pass when the final mean absolute Spearman correlation is below it.
        max_layers: Randomize only this many layers from the top (default: all).

    Raises:
        ExplainError: ``n_images`` below 0, ``threshold`` outside [0, 1] or ``max_layers`` below 1.

    Example:
        >>> Sanity(n_images=8).threshold
        0.5
    """

    name: ClassVar[str] = "sanity"
    requires: ClassVar[frozenset[Requirement]] = frozenset({"model", "maps", "explain_fn"})
    result_type: ClassVar[type[Record]] = SanityResult
    description: ClassVar[str] = "cascading randomization of the model's weights (Adebayo et al.), pass/fail"

    n_images: int = 16
    threshold: float = 0.5
    max_layers: int | None = None

    def __post_init__(self) -> None:
        if self.n_images < 0:
            raise ExplainError(f"Sanity n_images must be >= 0; got {self.n_images}.")
        if not 0.0 <= self.threshold <= 1.0:
            raise ExplainError(f"Sanity threshold must be in [0, 1]; got {self.threshold}.")
        if self.max_layers is not None and self.max_layers < 1:
            raise ExplainError(f"Sanity max_layers must be >= 1 or None; got {self.max_layers}.")

    def compute(self, inputs: MetricInputs) -> SanityResult:
        """Randomize a clone of ``inputs.model`` layer by layer and compare the maps of the first ``n_images``."""
        maps = inputs.require_maps()
        n = min(len(maps), int(self.n_images))
        if n == 0:
            raise ExplainError("The sanity check needs at least one image; got n_images=0 or no images.")
        return cascading_randomization(
            inputs.model,
            inputs.images[:n],
            inputs.targets[:n],
            inputs.require_explain_fn(),
            seed=inputs.seed,
            threshold=self.threshold,
            max_layers=self.max_layers,
            progress=inputs.progress,
            original_maps=maps[:n],
        )
