"""Input validation shared by the evaluation metrics."""

from __future__ import annotations

from typing import Any

import numpy as np

from neuroxai.errors import DataError

#: What runs on other backends for explanation metrics (the hint of every refusal in this layer).
_OTHER_BACKENDS = (
    "On other backends, score maps with the localization functions (pointing_game, iou, dice ...), which need no model."
)


def require_model_backend(feature: str) -> None:
    """Refuse a metric that runs the model on a backend it is not ported to (it runs on TensorFlow, JAX and PyTorch)."""
    from neuroxai._keras_backend import EXPLAIN_BACKENDS, require

    require(feature, EXPLAIN_BACKENDS, hint=_OTHER_BACKENDS)


def _squeeze(arr: np.ndarray, volumes: bool) -> np.ndarray:
    """A trailing channel axis of 1 dropped (``[N, H, W, 1]``, and ``[N, D, H, W, 1]`` when volumes are allowed)."""
    if (arr.ndim == 4 or (volumes and arr.ndim == 5)) and arr.shape[-1] == 1:
        arr = arr[..., 0]
    return arr[None] if arr.ndim == 2 else arr


def as_maps(maps: Any, name: str = "maps", *, volumes: bool = False) -> np.ndarray:
    """Return ``maps`` as float64 ``[N, H, W]``; a ``[N, H, W, 1]`` array is squeezed.

    With ``volumes``, maps of volumes ``[N, D, H, W]`` (or ``[N, D, H, W, 1]``) pass too.
    """
    arr = _squeeze(np.asarray(maps, dtype=np.float64), volumes)
    if arr.ndim != 3 and not (volumes and arr.ndim == 4):
        shapes = "[N, H, W] (or [N, H, W, 1]), or [N, D, H, W] for volumes" if volumes else "[N, H, W] (or [N, H, W, 1])"
        raise DataError(
            f"Expected {name} of shape {shapes}; got shape {arr.shape}. Pass one map per image stacked along the first axis."
        )
    if not np.all(np.isfinite(arr)):
        raise DataError(f"Expected finite {name}; got NaN or inf values. Check the explainer that produced them.")
    return arr


def as_masks(masks: Any, shape: tuple[int, ...] | None = None, name: str = "masks", *, volumes: bool = False) -> np.ndarray:
    """Return ``masks`` as bool ``[N, H, W]`` (values > 0.5 are inside), checked against ``shape``.

    With ``volumes``, masks of volumes ``[N, D, H, W]`` pass too.
    """
    arr = _squeeze(np.asarray(masks), volumes)
    if arr.ndim != 3 and not (volumes and arr.ndim == 4):
        raise DataError(f"Expected {name} of shape [N, H, W]{' or [N, D, H, W]' if volumes else ''}; got shape {arr.shape}.")
    arr = arr > 0.5 if arr.dtype != bool else arr
    if shape is not None and arr.shape != tuple(shape):
        raise DataError(
            f"Expected {name} with the same shape as the maps {tuple(shape)}; got {arr.shape}. "
            f"Resize the masks to the model's input size (Dataset.arrays(..., with_masks=True) does this)."
        )
    return arr
