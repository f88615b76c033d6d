"""The result of an explanation: maps, predictions and pictures."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neuroxai.errors import ExplainError
from neuroxai.models._graph import ScoreSource

__all__ = ["Explanation", "overlay_image"]


def _display_image(image: np.ndarray) -> np.ndarray:
    """Scale one image ``[H, W, C]`` (any range) to RGB float in [0, 1] for display."""
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 2:
        img = img[..., None]
    img = np.where(np.isfinite(img), img, 0.0)
    lo, hi = float(img.min()), float(img.max())
    img = (img - lo) / (hi - lo) if hi - lo > 1e-12 else np.zeros_like(img)
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    elif img.shape[-1] > 3:
        img = img[..., :3]
    return img


def overlay_image(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.4, cmap: str = "jet") -> np.ndarray:
    """Blend a heatmap in [0, 1] over an image.

    Args:
        image: ``[H, W]`` or ``[H, W, C]`` image in any value range (scaled to [0, 1] for display).
        heatmap: ``[H, W]`` map in [0, 1].
        alpha: Weight of the heatmap, 0 (image only) to 1 (heatmap only).
        cmap: A matplotlib colormap name.

    Returns:
        ``uint8`` RGB array ``[H, W, 3]``.

    Raises:
        ExplainError: ``alpha`` outside [0, 1], an unknown colormap or mismatched sizes.
    """
    import matplotlib

    if not 0.0 <= float(alpha) <= 1.0:
        raise ExplainError(f"alpha must be between 0 and 1; got {alpha!r}.")
    try:
        colormap = matplotlib.colormaps[cmap]
    except KeyError:
        raise ExplainError(f"Unknown matplotlib colormap {cmap!r}; try 'jet', 'inferno', 'viridis' or 'turbo'.") from None
    img = _display_image(image)
    heat = np.clip(np.nan_to_num(np.asarray(heatmap, dtype=np.float32)), 0.0, 1.0)
    if heat.shape != img.shape[:2]:
        raise ExplainError(f"Heatmap shape {heat.shape} does not match image size {img.shape[:2]}.")
    colored = colormap(heat)[..., :3]
    blended = (1.0 - alpha) * img + alpha * colored
    return np.clip(np.round(blended * 255.0), 0, 255).astype(np.uint8)


@dataclass(frozen=True, eq=False)
class Explanation:
    """Explanations for a batch of images (frozen: fields cannot be reassigned).

    Attributes:
        maps: float32 ``[N, H, W]`` in [0, 1], finite, at the input height and width.
        probabilities: float32 ``[N, K]`` model probabilities.
        predicted: int ``[N]`` predicted class indices.
        targets: int ``[N]`` explained class indices.
        class_names: ``K`` class names (``"0"``, ``"1"`` ... when unknown).
        layer: The target layer (a name, or a tuple path into nested models), ``None`` for pixel methods.
        method: The method's name.
        images: The input images ``[N, H, W, C]`` as given to the model.
        score_source: What was explained: ``"logits"`` (pre-softmax scores, reached without touching the
            model), ``"probabilities"`` (a softmax that could not be bypassed) or ``"output"`` (a model
            output without softmax).
        options: The method's options, defaults filled in (a copy).
        batch_size: The explainer's batch size (forward passes per compiled call).

    Example:
        >>> exp = Explainer(model).explain(images)  # doctest: +SKIP
        >>> exp.maps.shape, exp.predicted_names[:2], exp.score_source  # doctest: +SKIP
        ((8, 224, 224), ('glioma', 'notumor'), 'logits')
    """

    maps: np.ndarray
    probabilities: np.ndarray
    predicted: np.ndarray
    targets: np.ndarray
    class_names: tuple[str, ...]
    layer: str | tuple[str, ...] | None
    method: str
    images: np.ndarray
    score_source: ScoreSource = "output"
    options: Mapping[str, Any] = field(default_factory=dict)
    batch_size: int = 32

    def __len__(self) -> int:
        return int(self.maps.shape[0])

    @property
    def predicted_names(self) -> tuple[str, ...]:
        """Predicted class names, one per image."""
        return tuple(self.class_names[int(i)] for i in self.predicted)

    @property
    def target_names(self) -> tuple[str, ...]:
        """Explained class names, one per image."""
        return tuple(self.class_names[int(i)] for i in self.targets)

    @property
    def confidence(self) -> np.ndarray:
        """Probability of the predicted class, one per image."""
        confidence: np.ndarray = self.probabilities[np.arange(len(self)), self.predicted]
        return confidence

    def _index(self, i: int) -> int:
        n = len(self)
        if not isinstance(i, (int, np.integer)) or not -n <= int(i) < n:
            raise ExplainError(f"Image index {i!r} out of range for an explanation of {n} image(s).")
        return int(i) % n

    def overlay(self, i: int, alpha: float = 0.4, cmap: str = "jet") -> np.ndarray:
        """The map of image ``i`` blended over the image.

        Args:
            i: Image index.
            alpha: Heatmap weight in [0, 1].
            cmap: Matplotlib colormap name.

        Returns:
            ``uint8`` RGB array ``[H, W, 3]``.

        Raises:
            ExplainError: Bad index, alpha or colormap.
        """
        i = self._index(i)
        return overlay_image(self.images[i], self.maps[i], alpha=alpha, cmap=cmap)

    def plot(
        self,
        n: int | None = None,
        true_labels: Sequence[int | str] | None = None,
        *,
        ncols: int = 4,
        alpha: float = 0.4,
        cmap: str = "jet",
        show_image: bool = False,
        figsize: tuple[float, float] | None = None,
    ) -> Any:
        """A grid of overlays titled with true class, predicted class and confidence.

        Args:
            n: How many images (the first ``n``; default all, at most 32).
            true_labels: True class per image (indices or names), shown in the titles; a wrong label is
                marked with a cross.
            ncols: Panels per row.
            alpha: Heatmap weight.
            cmap: Colormap.
            show_image: Also show each plain image beside its overlay.
            figsize: Figure size in inches (default from the grid size).

        Returns:
            The matplotlib ``Figure``.

        Raises:
            ExplainError: ``true_labels`` has the wrong length or unknown names.
        """
        import matplotlib.pyplot as plt

        count = min(len(self), 32) if n is None else max(0, min(int(n), len(self)))
        truths: list[int] | None = None
        if true_labels is not None:
            labels = list(true_labels)
            if len(labels) < count:
                raise ExplainError(f"true_labels has {len(labels)} entries; expected at least {count} (one per image).")
            truths = [self._class_index(v) for v in labels[:count]]
        per = 2 if show_image else 1
        ncols = max(1, min(int(ncols), max(count, 1))) * per
        nrows = max(1, -(-count * per // ncols))
        fig, axes = plt.subplots(
            nrows, ncols, figsize=figsize or (2.6 * ncols, 3.1 * nrows), squeeze=False, layout="constrained"
        )  # room for every title, unlike tight_layout
        for ax in axes.ravel():
            ax.axis("off")
        for i in range(count):
            ax = axes.ravel()[i * per]
            if show_image:
                ax.imshow(_display_image(self.images[i]))
                ax = axes.ravel()[i * per + 1]
            ax.imshow(self.overlay(i, alpha=alpha, cmap=cmap))
            pred = int(self.predicted[i])
            lines = []
            if truths is not None:
                mark = "" if truths[i] == pred else " \u2717"
                lines.append(f"true: {self.class_names[truths[i]]}{mark}")
            lines.append(f"pred: {self.class_names[pred]} ({self.probabilities[i, pred]:.2f})")
            if int(self.targets[i]) != pred:
                lines.append(f"explained: {self.class_names[int(self.targets[i])]}")
            ax.set_title("\n".join(lines), fontsize=8)
        layer = self.layer if isinstance(self.layer, str) or self.layer is None else "/".join(self.layer)
        fig.suptitle(f"{self.method}" + (f" @ {layer}" if layer else ""), fontsize=10)
        return fig

    def _class_index(self, value: int | str) -> int:
        if isinstance(value, (int, np.integer)) and 0 <= int(value) < len(self.class_names):
            return int(value)
        if isinstance(value, str) and value in self.class_names:
            return self.class_names.index(value)
        raise ExplainError(
            f"Unknown class {value!r}; expected an index < {len(self.class_names)} or one of {list(self.class_names)}."
        )

    def save(
        self,
        directory: str | os.PathLike[str],
        *,
        names: Sequence[str] | None = None,
        alpha: float = 0.4,
        cmap: str = "jet",
    ) -> list[Path]:
        """Write one overlay PNG per image, atomically.

        Args:
            directory: Output folder (created if needed).
            names: File stems, one per image (default ``"0000_<predicted>"``...).
            alpha: Heatmap weight.
            cmap: Colormap.

        Returns:
            The written paths, in image order.

        Raises:
            ExplainError: ``names`` has the wrong length.
        """
        from PIL import Image

        from neuroxai._io import write_bytes

        out = Path(directory)
        if names is not None and len(names) != len(self):
            raise ExplainError(f"names has {len(names)} entries; expected {len(self)} (one per image).")
        paths = []
        for i in range(len(self)):
            stem = names[i] if names is not None else f"{i:04d}_{self.predicted_names[i]}"
            buf = io.BytesIO()
            Image.fromarray(self.overlay(i, alpha=alpha, cmap=cmap)).save(buf, format="PNG")
            paths.append(write_bytes(out / f"{stem}.png", buf.getvalue()))
        return paths
