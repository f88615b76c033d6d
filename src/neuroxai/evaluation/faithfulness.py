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

from typing import Any

import numpy as np

from neuroxai.errors import DataError

__all__ = ["auc", "baseline_fill", "deletion_insertion_curves", "faithfulness_report"]


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
    return ((curves[..., 1:] + curves[..., :-1]) * 0.5 * dx).sum(axis=-1)


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
        return np.broadcast_to(images.mean(axis=(1, 2), keepdims=True), images.shape).copy()
    if fill == "blur":
        from scipy import ndimage

        sigma = blur_sigma if blur_sigma is not None else 5.0 * max(images.shape[1:3]) / 224.0
        return ndimage.gaussian_filter(images, sigma=(0, sigma, sigma, 0), mode="nearest").astype(np.float32)
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
    return e / e.sum(axis=1, keepdims=True)


def _make_step(model: Any) -> Any:
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def step(images, ranks, del_base, ins_base, n_removed):
        # images/bases [b, H, W, C]; ranks [b, H, W]; n_removed [S]
        b = tf.shape(images)[0]
        s = tf.shape(n_removed)[0]
        hit = ranks[:, None, :, :] < n_removed[None, :, None, None]  # [b, S, H, W]
        hit = hit[..., None]
        x_del = tf.where(hit, del_base[:, None], images[:, None])
        x_ins = tf.where(hit, images[:, None], ins_base[:, None])
        x = tf.concat([x_del, x_ins], axis=0)  # [2b, S, H, W, C]
        x = tf.reshape(x, tf.concat([[2 * b * s], tf.shape(images)[1:]], axis=0))
        out = model(x, training=False)
        if isinstance(out, (list, tuple)):
            out = out[0]
        return tf.reshape(tf.cast(out, tf.float32), [2, b, s, -1])

    return step


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
) -> dict[str, np.ndarray]:
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
        A dict with the arrays ``fractions`` ``[S+1]``, ``deletion`` and
        ``insertion`` ``[N, S+1]``, ``deletion_auc`` and ``insertion_auc`` ``[N]``.

    Raises:
        DataError: When shapes disagree.

    Example:
        >>> curves = deletion_insertion_curves(model, x, maps, y, steps=10)  # doctest: +SKIP
        >>> curves["deletion_auc"].mean()  # doctest: +SKIP
    """
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
    step = _make_step(model)
    deletion = np.empty((n, steps + 1))
    insertion = np.empty((n, steps + 1))
    starts = range(0, n, chunk)
    for i in _progress(starts, total=len(starts), desc="deletion/insertion", unit="chunk", enabled=progress):
        j = min(n, i + chunk)
        sl = slice(i, j)
        pad = chunk - (j - i)  # constant chunk shape: one trace only

        def _p(a: np.ndarray) -> np.ndarray:
            return np.concatenate([a, np.repeat(a[-1:], pad, axis=0)]) if pad else a

        out = step(_p(x[sl]), _p(ranks[sl]), _p(del_base[sl]), _p(ins_base[sl]), n_removed).numpy()
        out = out[:, : j - i]  # [2, b, S, K]
        probs = _as_probabilities(out.reshape(-1, out.shape[-1])).reshape((*out.shape[:-1], -1))
        tgt = t[sl][None, :, None, None]
        sel = np.take_along_axis(probs, np.broadcast_to(tgt, (*probs.shape[:-1], 1)), axis=-1)[..., 0]
        deletion[sl] = sel[0]
        insertion[sl] = sel[1]
    return {
        "fractions": fractions,
        "deletion": deletion,
        "insertion": insertion,
        "deletion_auc": auc(deletion, fractions),
        "insertion_auc": auc(insertion, fractions),
    }


def _summarise(curves: dict[str, np.ndarray]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in ("deletion", "insertion"):
        a = curves[f"{kind}_auc"]
        out[kind] = {
            "auc": float(a.mean()),
            "auc_std": float(a.std()),
            "curve": curves[kind].mean(axis=0).tolist(),
            "auc_per_image": a.tolist(),
        }
    out["insertion_minus_deletion"] = float((curves["insertion_auc"] - curves["deletion_auc"]).mean())
    return out


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
) -> dict[str, Any]:
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
        JSON-able ``{"n_images", "steps", "fractions", "settings", "method": {...}, "random": {...}}``;
        each of ``method``/``random`` holds ``deletion`` and ``insertion`` with ``auc``, ``auc_std``,
        the mean ``curve`` and ``auc_per_image``, and ``insertion_minus_deletion``.

    Example:
        >>> r = faithfulness_report(model, x, maps, y)  # doctest: +SKIP
        >>> r["method"]["deletion"]["auc"] < r["random"]["deletion"]["auc"]  # doctest: +SKIP
        True
    """
    kw = {
        "steps": steps,
        "deletion_baseline": deletion_baseline,
        "insertion_baseline": insertion_baseline,
        "blur_sigma": blur_sigma,
        "batch_size": batch_size,
        "progress": progress,
    }
    m = np.asarray(maps)
    method = deletion_insertion_curves(model, images, m, targets, seed=seed, **kw)
    rand_maps = np.random.default_rng(seed + 1).random(m.shape[:3] if m.ndim >= 3 else m.shape)
    rand = deletion_insertion_curves(model, images, rand_maps, targets, seed=seed, **kw)
    x = np.asarray(images)
    sigma = blur_sigma if blur_sigma is not None else 5.0 * max(x.shape[1:3]) / 224.0
    return {
        "n_images": len(x),
        "steps": int(steps),
        "fractions": method["fractions"].tolist(),
        "settings": {
            "deletion_baseline": deletion_baseline,
            "insertion_baseline": insertion_baseline,
            "blur_sigma_px": float(sigma),
            "seed": int(seed),
        },
        "method": _summarise(method),
        "random": _summarise(rand),
    }
