"""The result of an explanation: maps, predictions and pictures.

Pictures a person reads (:meth:`Explanation.save`, :meth:`Explanation.picture`) show the scan at its own
resolution beside the overlay, the map upsampled to the scan's size, titled with the predicted class and
its probability (and the true class when known), with a colour bar. Maps are min-max scaled per map for
display by default (:func:`scale_map`); :attr:`Explanation.maps` keeps the method's own values.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from neuroxai.errors import ExplainError
from neuroxai.models._graph import ScoreSource
from neuroxai.models._heads import Head

__all__ = ["Explanation", "MapScaling", "overlay_image", "scale_map", "upsample_map"]

#: How a map is scaled to [0, 1] for display: ``"minmax"`` (per map, lowest value 0 and highest 1; the
#: default), ``"max"`` (divided by its maximum: a map whose values all sit near the top fills the frame
#: with one colour) or ``"none"`` (clipped to [0, 1] as it is).
MapScaling = Literal["minmax", "max", "none"]
_SCALINGS = ("minmax", "max", "none")

#: Pictures of scans smaller than this (longest side, pixels) are enlarged by a whole factor, pixel for pixel.
MIN_PANEL_PX = 256
#: Resolution of written pictures: one figure pixel per image pixel at this dpi.
_DPI = 100


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


def scale_map(heatmap: Any, how: MapScaling = "minmax") -> np.ndarray:
    """Scale maps to [0, 1] for display, each map on its own.

    Args:
        heatmap: One map ``[H, W]`` or a batch ``[N, H, W]`` (non-finite values count as 0).
        how: ``"minmax"`` (default; ``(m - min) / (max - min)``, so the least important pixel is 0 and the
            most important 1 whatever the map's range), ``"max"`` (``m / max``, negatives clipped to 0) or
            ``"none"`` (clipped to [0, 1]). A constant map becomes all zeros under ``"minmax"``; an all-zero
            map stays zero.

    Returns:
        float32 maps of the same shape, in [0, 1].

    Raises:
        ExplainError: An unknown ``how`` or a map that is not 2-D or 3-D.

    Example:
        >>> scale_map(np.array([[0.8, 0.9], [1.0, 0.8]])).round(2).tolist()
        [[0.0, 0.5], [1.0, 0.0]]
    """
    if how not in _SCALINGS:
        raise ExplainError(f"Unknown map scaling {how!r}; expected one of {', '.join(_SCALINGS)}.")
    m = np.nan_to_num(np.asarray(heatmap, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if m.ndim not in (2, 3):
        raise ExplainError(f"Expected a map [H, W] or maps [N, H, W]; got shape {m.shape}.")
    batch = m if m.ndim == 3 else m[None]
    if how == "minmax":
        lo = batch.min(axis=(1, 2), keepdims=True)
        span = batch.max(axis=(1, 2), keepdims=True) - lo
        out = np.divide(batch - lo, span, out=np.zeros_like(batch), where=span > 1e-12)
    elif how == "max":
        peak = batch.max(axis=(1, 2), keepdims=True)
        out = np.divide(np.maximum(batch, 0.0), peak, out=np.zeros_like(batch), where=peak > 1e-12)
    else:
        out = batch
    scaled: np.ndarray = np.clip(out, 0.0, 1.0).astype(np.float32)
    return scaled if m.ndim == 3 else scaled[0]


def upsample_map(heatmap: Any, size: tuple[int, int]) -> np.ndarray:
    """Resize one map ``[h, w]`` to ``size = (H, W)`` with bilinear interpolation (the map at a scan's resolution).

    The model saw the whole scan resized to its input size, so the map covers the whole scan and is
    resized back the same way.

    Example:
        >>> upsample_map(np.eye(2, dtype=np.float32), (4, 6)).shape
        (4, 6)
    """
    from PIL import Image

    m = np.nan_to_num(np.asarray(heatmap, dtype=np.float32))
    h, w = int(size[0]), int(size[1])
    if m.shape == (h, w):
        return m
    out: np.ndarray = np.asarray(Image.fromarray(m, mode="F").resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32)
    return out


def _outline(mask: np.ndarray, thickness: int) -> np.ndarray:
    """Boolean outline of a boolean mask: its pixels within ``thickness`` of the outside (4-neighbour erosion)."""
    inner = mask.copy()
    for _ in range(max(1, int(thickness))):
        shrunk = inner.copy()
        shrunk[1:, :] &= inner[:-1, :]
        shrunk[:-1, :] &= inner[1:, :]
        shrunk[:, 1:] &= inner[:, :-1]
        shrunk[:, :-1] &= inner[:, 1:]
        inner = shrunk
    edge: np.ndarray = mask & ~inner
    return edge


def _as_scan(original: Any) -> np.ndarray:
    """An original scan given as an array, a PIL image or a file path, as an array ``[H, W]`` or ``[H, W, C]``."""
    from PIL import Image

    if isinstance(original, (str, os.PathLike)):
        from neuroxai.data._images import read_array

        try:
            return read_array(original)
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise ExplainError(f"Could not read the original scan {os.fspath(original)!r}: {exc}. Check the file.") from exc
    if isinstance(original, Image.Image):
        from neuroxai.data._images import pil_to_array

        return pil_to_array(original)
    arr = np.asarray(original)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)):
        raise ExplainError(f"Expected an original scan [H, W] or [H, W, C] with C in 1, 3, 4; got shape {arr.shape}.")
    return arr


def _as_mask(mask: Any, size: tuple[int, int]) -> np.ndarray | None:
    """A tumour mask (array, or file path) as boolean ``[H, W]`` at ``size`` (nearest-neighbour resize); ``None`` passes."""
    from PIL import Image

    if mask is None:
        return None
    arr = _as_scan(mask)
    if arr.ndim == 3:
        arr = arr.max(axis=-1)
    arr = np.asarray(arr, dtype=np.float32)
    hi = float(arr.max()) if arr.size else 0.0
    binary = arr > (0.5 if hi <= 1.0 else 127.5)
    if binary.shape != size:
        img = Image.fromarray(binary.astype(np.uint8) * 255).resize((size[1], size[0]), Image.Resampling.NEAREST)
        binary = np.asarray(img) > 127
    return binary


class _PictureCanvas:
    """One reusable Agg figure for pictures of one scan size: scan, overlay, colour bar and a title.

    Drawing many pictures of one size reuses the figure and only swaps the pixels and the text (building
    a matplotlib figure costs far more than drawing one), so saving a folder of scans stays fast.
    """

    def __init__(self, height: int, width: int, cmap: str, scaling: MapScaling, method: str) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize
        from matplotlib.figure import Figure

        k = max(1, math.ceil(MIN_PANEL_PX / max(height, width)))
        pw, ph = width * k, height * k
        left, gap, cgap, cbar, right, top, label, bottom = 8, 12, 8, 14, 62, 58, 20, 8
        fw, fh = left + 2 * pw + gap + cgap + cbar + right, top + label + ph + bottom
        self.size = (fh, fw)
        self.fig = Figure(figsize=(fw / _DPI, fh / _DPI), dpi=_DPI)
        self.canvas: Any = FigureCanvasAgg(self.fig)

        def box(x: float, w: float) -> tuple[float, float, float, float]:
            return (x / fw, bottom / fh, w / fw, ph / fh)

        self.ax_scan = self.fig.add_axes(box(left, pw))
        self.ax_over = self.fig.add_axes(box(left + pw + gap, pw))
        cax = self.fig.add_axes(box(left + 2 * pw + gap + cgap, cbar))
        blank = np.zeros((height, width, 3), np.uint8)
        self.im_scan = self.ax_scan.imshow(blank, interpolation="nearest", aspect="auto")
        self.im_over = self.ax_over.imshow(blank, interpolation="nearest", aspect="auto")
        for ax in (self.ax_scan, self.ax_over):
            ax.set_xticks([])
            ax.set_yticks([])
        self.ax_scan.set_title(f"scan ({width} x {height} px)", fontsize=9)
        self.ax_over.set_title(f"{method} map over the scan", fontsize=9)
        what = {"minmax": "min-max per map", "max": "divided by the map's maximum", "none": "as computed"}[scaling]
        bar = self.fig.colorbar(ScalarMappable(norm=Normalize(0.0, 1.0), cmap=cmap), cax=cax)
        bar.set_label(f"importance ({what})", fontsize=8)
        bar.ax.tick_params(labelsize=8)
        self.title = self.fig.text(0.5, 1.0 - 6 / fh, "", ha="center", va="top", fontsize=10, linespacing=1.3)

    def draw(self, scan: np.ndarray, overlay: np.ndarray, title: str) -> np.ndarray:
        """The picture as uint8 RGB ``[H, W, 3]`` (figure pixels)."""
        self.im_scan.set_data(scan)
        self.im_over.set_data(overlay)
        self.title.set_text(title)
        self.canvas.draw()
        rgba = np.asarray(self.canvas.buffer_rgba())
        return np.array(rgba[..., :3], dtype=np.uint8)


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
        head: What the model outputs (``"softmax"``, ``"logits"``, ``"sigmoid"``, ``"binary"``); the
            probabilities are probabilities for every head (two columns for a one-unit binary output).

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
    head: Head = "softmax"

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

    def overlay(self, i: int, alpha: float = 0.4, cmap: str = "jet", *, scaling: MapScaling = "minmax") -> np.ndarray:
        """The map of image ``i`` blended over the image as the model saw it (model input size).

        Args:
            i: Image index.
            alpha: Heatmap weight in [0, 1].
            cmap: Matplotlib colormap name.
            scaling: How the map is scaled for display (:func:`scale_map`; default min-max per map).

        Returns:
            ``uint8`` RGB array ``[H, W, 3]``.

        Raises:
            ExplainError: Bad index, alpha, colormap or scaling.
        """
        i = self._index(i)
        return overlay_image(self.images[i], scale_map(self.maps[i], scaling), alpha=alpha, cmap=cmap)

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
        scaling: MapScaling = "minmax",
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
            scaling: How each map is scaled for display (:func:`scale_map`; default min-max per map).

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
            ax.imshow(self.overlay(i, alpha=alpha, cmap=cmap, scaling=scaling))
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

    def title(self, i: int, true_label: int | str | None = None) -> str:
        """The title of image ``i``'s picture: predicted class and probability, the true class when known.

        Example:
            >>> print(exp.title(0, true_label="glioma"))  # doctest: +SKIP
            predicted: meningioma (p = 0.912)
            true: glioma ✗ wrong
        """
        i = self._index(i)
        pred = int(self.predicted[i])
        lines = [f"predicted: {self.class_names[pred]} (p = {float(self.probabilities[i, pred]):.3f})"]
        if true_label is not None:
            truth = self._class_index(true_label)
            lines.append(f"true: {self.class_names[truth]} " + ("\u2713 right" if truth == pred else "\u2717 wrong"))
        if int(self.targets[i]) != pred:
            lines.append(f"explained: {self.class_names[int(self.targets[i])]}")
        return "\n".join(lines)

    def picture(
        self,
        i: int,
        *,
        original: Any = None,
        true_label: int | str | None = None,
        mask: Any = None,
        alpha: float = 0.4,
        cmap: str = "jet",
        scaling: MapScaling = "minmax",
    ) -> np.ndarray:
        """Image ``i`` as a person reads it: the scan at its own resolution beside the map over it.

        The map is scaled for display (``scaling``, default min-max per map) and upsampled to the scan's
        size; the picture is titled with the predicted class and its probability (and the true class when
        given) and has a colour bar. Scans smaller than 256 px are enlarged by a whole factor, pixel for
        pixel, so the text fits.

        Args:
            i: Image index.
            original: The scan before resizing for the model: an array, a PIL image or a file path
                (default: the model input).
            true_label: The true class (index or name), shown in the title.
            mask: A tumour mask (array or file path, any size: resized to the scan's) drawn as an outline.
            alpha: Heatmap weight in [0, 1].
            cmap: Matplotlib colormap name.
            scaling: How the map is scaled for display (:func:`scale_map`).

        Returns:
            ``uint8`` RGB array of the whole picture.

        Raises:
            ExplainError: Bad index, label, alpha, colormap, scaling or original.
        """
        return self._pictures([self._index(i)], [original], [true_label], [mask], alpha, cmap, scaling, {})[0][1]

    def _pictures(
        self,
        indices: Sequence[int],
        originals: Sequence[Any],
        true_labels: Sequence[int | str | None],
        masks: Sequence[Any],
        alpha: float,
        cmap: str,
        scaling: MapScaling,
        canvases: dict[tuple[int, int], _PictureCanvas],
    ) -> list[tuple[str, np.ndarray]]:
        """``(title, picture)`` per index; ``canvases`` holds one reusable figure per scan size."""
        import matplotlib

        if cmap not in matplotlib.colormaps:
            raise ExplainError(f"Unknown matplotlib colormap {cmap!r}; try 'jet', 'inferno', 'viridis' or 'turbo'.")
        scaled = scale_map(self.maps[list(indices)], scaling) if len(indices) else np.zeros((0, 1, 1), np.float32)
        out = []
        for n, i in enumerate(indices):
            scan = _as_scan(self.images[i] if originals[n] is None else originals[n])
            size = (int(scan.shape[0]), int(scan.shape[1]))
            heat = upsample_map(scaled[n], size)
            shown = np.clip(np.round(_display_image(scan) * 255.0), 0, 255).astype(np.uint8)
            over = overlay_image(scan, heat, alpha=alpha, cmap=cmap)
            outline = _as_mask(masks[n], size)
            if outline is not None:
                edge = _outline(outline, max(1, round(max(size) / 256)))
                shown[edge] = over[edge] = (0, 255, 0)
            title = self.title(i, true_labels[n])
            canvas = canvases.get(size)
            if canvas is None:
                canvas = canvases[size] = _PictureCanvas(size[0], size[1], cmap, scaling, self.method)
            out.append((title, canvas.draw(shown, over, title)))
        return out

    def save(
        self,
        directory: str | os.PathLike[str],
        *,
        names: Sequence[str] | None = None,
        originals: Sequence[Any] | None = None,
        true_labels: Sequence[int | str | None] | None = None,
        masks: Sequence[Any] | None = None,
        alpha: float = 0.4,
        cmap: str = "jet",
        scaling: MapScaling = "minmax",
    ) -> list[Path]:
        """Write one picture per image (see :meth:`picture`) as PNG, atomically.

        Each picture shows the scan at its own resolution beside the map over it (map scaled per map, by
        default min-max, and upsampled to the scan), titled with the predicted class and probability (and
        the true class when given), with a colour bar. The title is also stored in the PNG's ``Title``
        text field. :attr:`maps` keeps the method's own values.

        Args:
            directory: Output folder (created if needed).
            names: File stems, one per image (default ``"0000_<predicted>"``...).
            originals: The scans before resizing, one per image: arrays, PIL images or file paths
                (default: the model inputs).
            true_labels: True class per image (index, name or ``None``), shown in the titles.
            masks: Tumour masks per image (arrays, file paths or ``None``), drawn as outlines.
            alpha: Heatmap weight.
            cmap: Colormap.
            scaling: How each map is scaled for display (:func:`scale_map`).

        Returns:
            The written paths, in image order.

        Raises:
            ExplainError: A per-image list has the wrong length, or a bad label, colormap or scaling.
        """
        from PIL import Image, PngImagePlugin

        from neuroxai._io import write_bytes

        n = len(self)
        for what, seq in (("names", names), ("originals", originals), ("true_labels", true_labels), ("masks", masks)):
            if seq is not None and len(seq) != n:
                raise ExplainError(f"{what} has {len(seq)} entries; expected {n} (one per image).")
        out = Path(directory)
        canvases: dict[tuple[int, int], _PictureCanvas] = {}
        paths = []
        for i in range(n):
            stem = names[i] if names is not None else f"{i:04d}_{self.predicted_names[i]}"
            ((title, picture),) = self._pictures(
                [i],
                [None if originals is None else originals[i]],
                [None if true_labels is None else true_labels[i]],
                [None if masks is None else masks[i]],
                alpha,
                cmap,
                scaling,
                canvases,
            )
            info = PngImagePlugin.PngInfo()
            info.add_text("Title", title.replace("\n", "; "))
            info.add_text("Software", "neuroxai")
            buf = io.BytesIO()
            Image.fromarray(picture).save(buf, format="PNG", pnginfo=info)
            paths.append(write_bytes(out / f"{stem}.png", buf.getvalue()))
        return paths
