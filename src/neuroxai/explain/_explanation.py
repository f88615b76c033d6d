"""The result of an explanation: maps, predictions and pictures.

Pictures a person reads (:meth:`Explanation.save`, :meth:`Explanation.picture`) show the scan at its own
resolution beside the overlay, the map upsampled to the scan's size, titled with the predicted class and
its probability (and the true class when known), with a colour bar. Maps are min-max scaled per map for
display by default (:func:`scale_map`); :attr:`Explanation.maps` keeps the method's own values.

An explanation of a volume model (maps ``[N, D, H, W]``) is drawn one axial slice per volume: the slice
where the map holds the most mass (:meth:`Explanation.peak_slice`), unless another is asked for.

In Jupyter an explanation shows itself (``_repr_html_``, ``_repr_png_``) as a grid of overlays with
titles and a colour bar, at most :data:`REPR_MAX_IMAGES` of them however large the batch.
"""

from __future__ import annotations

import base64
import html
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

__all__ = ["REPR_MAX_IMAGES", "Explanation", "MapScaling", "overlay_image", "scale_map", "upsample_map"]

#: How a map is scaled to [0, 1] for display: ``"minmax"`` (per map, lowest value 0 and highest 1; the
#: default), ``"max"`` (divided by its maximum: a map whose values all sit near the top fills the frame
#: with one colour) or ``"none"`` (clipped to [0, 1] as it is).
MapScaling = Literal["minmax", "max", "none"]
_SCALINGS = ("minmax", "max", "none")

#: Pictures of scans smaller than this (longest side, pixels) are enlarged by a whole factor, pixel for pixel.
MIN_PANEL_PX = 256
#: Resolution of written pictures: one figure pixel per image pixel at this dpi.
_DPI = 100
#: Most images an explanation draws when it shows itself in a notebook (the first ones; the rest are counted).
REPR_MAX_IMAGES = 16
#: Resolution of the notebook grid (a panel is 2.4 x 2.4 inches: about 170 px).
_REPR_DPI = 72


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
    """Explanations for a batch of images or volumes (frozen: fields cannot be reassigned).

    Attributes:
        maps: float32 ``[N, H, W]`` in [0, 1], finite, at the input height and width; ``[N, D, H, W]`` for a
            volume model (at the input's depth, height and width).
        probabilities: float32 ``[N, K]`` model probabilities.
        predicted: int ``[N]`` predicted class indices.
        targets: int ``[N]`` explained class indices; ``-1`` where a callable target was explained (see
            :attr:`objectives`).
        class_names: ``K`` class names (``"0"``, ``"1"`` ... when unknown).
        layer: The target layer (a name, or a tuple path into nested models), ``None`` for pixel methods.
        method: The method's name.
        images: The input images ``[N, H, W, C]`` (volumes ``[N, D, H, W, C]``) as given to the model.
        score_source: What was explained: ``"logits"`` (pre-softmax scores, reached without touching the
            model), ``"probabilities"`` (a softmax that could not be bypassed) or ``"output"`` (a model
            output without softmax).
        options: The method's options, defaults filled in (a copy).
        batch_size: The explainer's batch size (forward passes per compiled call).
        head: What the model outputs (``"softmax"``, ``"logits"``, ``"sigmoid"``, ``"binary"``); the
            probabilities are probabilities for every head (two columns for a one-unit binary output).
        objectives: Per image, the name of the callable target explained (``"glioma - meningioma"``), or
            ``None`` where a class was; empty when every target is a class.

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
    objectives: tuple[str | None, ...] = ()

    def __len__(self) -> int:
        return int(self.maps.shape[0])

    @property
    def is_volume(self) -> bool:
        """Whether the maps are volumes ``[N, D, H, W]`` (a 3-D model) rather than images."""
        return bool(self.maps.ndim == 4)

    @property
    def predicted_names(self) -> tuple[str, ...]:
        """Predicted class names, one per image."""
        return tuple(self.class_names[int(i)] for i in self.predicted)

    @property
    def target_names(self) -> tuple[str, ...]:
        """What was explained, one per image: the class name, or the callable target's name."""
        return tuple(self._target_name(i) for i in range(len(self)))

    def _target_name(self, i: int) -> str:
        if self.objectives and self.objectives[i] is not None:
            return str(self.objectives[i])
        return self.class_names[int(self.targets[i])]

    def _explained(self, i: int) -> str | None:
        """What image ``i``'s map explains when it is not simply the predicted class (for titles), else ``None``."""
        if (self.objectives and self.objectives[i] is not None) or int(self.targets[i]) != int(self.predicted[i]):
            return self._target_name(i)
        return None

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

    def peak_slice(self, i: int) -> int | None:
        """For a volume: the axial slice (depth index) of volume ``i`` where its map holds the most mass; else ``None``."""
        i = self._index(i)
        return self._view(i)[2] if self.is_volume else None

    def _view(self, i: int, depth: int | None = None) -> tuple[np.ndarray, np.ndarray, int | None]:
        """``(image [H, W, C], map [H, W], slice)`` of image ``i``: for a volume, one axial slice of both."""
        if not self.is_volume:
            if depth is not None:
                raise ExplainError("depth= picks a slice of a volume; this explanation holds 2-D images.")
            return self.images[i], self.maps[i], None
        z = (
            int(np.argmax(np.nan_to_num(self.maps[i]).reshape(self.maps.shape[1], -1).sum(axis=1)))
            if depth is None
            else int(depth)
        )
        if not 0 <= z < self.maps.shape[1]:
            raise ExplainError(
                f"Slice {depth!r} out of range; the volumes have {self.maps.shape[1]} slices (0..{self.maps.shape[1] - 1})."
            )
        return self.images[i, z], self.maps[i, z], z

    def overlay(
        self, i: int, alpha: float = 0.4, cmap: str = "jet", *, scaling: MapScaling = "minmax", depth: int | None = None
    ) -> np.ndarray:
        """The map of image ``i`` blended over the image as the model saw it (model input size).

        Args:
            i: Image index.
            alpha: Heatmap weight in [0, 1].
            cmap: Matplotlib colormap name.
            scaling: How the map is scaled for display (:func:`scale_map`; default min-max per map).
            depth: For a volume: the axial slice drawn (default :meth:`peak_slice`). The map is scaled over
                the whole volume, so slices compare.

        Returns:
            ``uint8`` RGB array ``[H, W, 3]``.

        Raises:
            ExplainError: Bad index, alpha, colormap, scaling or slice.
        """
        i = self._index(i)
        image, _, z = self._view(i, depth)
        scaled = self._scaled(i, scaling)
        return overlay_image(image, scaled if z is None else scaled[z], alpha=alpha, cmap=cmap)

    def _scaled(self, i: int, scaling: MapScaling) -> np.ndarray:
        """Map ``i`` scaled for display: per image, or per whole volume."""
        m = self.maps[i]
        if m.ndim == 3:  # a volume: one scaling for all its slices
            whole: np.ndarray = scale_map(m.reshape(1, m.shape[0] * m.shape[1], m.shape[2]), scaling).reshape(m.shape)
            return whole
        return scale_map(m, scaling)

    def _panel_title(self, i: int, truth: int | None, z: int | None) -> str:
        pred = int(self.predicted[i])
        lines = []
        if truth is not None:
            mark = "" if truth == pred else " \u2717"
            lines.append(f"true: {self.class_names[truth]}{mark}")
        lines.append(f"pred: {self.class_names[pred]} ({self.probabilities[i, pred]:.2f})")
        explained = self._explained(i)
        if explained is not None:
            lines.append(f"explained: {explained}")
        if z is not None:
            lines.append(f"slice {z} of {self.maps.shape[1]}")
        return "\n".join(lines)

    def _grid(
        self,
        fig: Any,
        count: int,
        truths: list[int] | None,
        *,
        ncols: int,
        alpha: float,
        cmap: str,
        show_image: bool,
        scaling: MapScaling,
    ) -> None:
        """Draw ``count`` titled overlays, a colour bar and a heading into the empty figure ``fig``."""
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        per = 2 if show_image else 1
        ncols = max(1, min(int(ncols), max(count, 1))) * per
        nrows = max(1, -(-count * per // ncols))
        axes = np.asarray(fig.subplots(nrows, ncols, squeeze=False))
        for ax in axes.ravel():
            ax.axis("off")
        for i in range(count):
            ax = axes.ravel()[i * per]
            image, _, z = self._view(i)
            if show_image:
                ax.imshow(_display_image(image))
                ax = axes.ravel()[i * per + 1]
            ax.imshow(self.overlay(i, alpha=alpha, cmap=cmap, scaling=scaling))
            ax.set_title(self._panel_title(i, None if truths is None else truths[i], z), fontsize=8)
        what = {"minmax": "min-max per map", "max": "divided by the map's maximum", "none": "as computed"}[scaling]
        bar = fig.colorbar(ScalarMappable(norm=Normalize(0.0, 1.0), cmap=cmap), ax=axes.ravel().tolist(), shrink=0.8)
        bar.set_label(f"importance ({what})", fontsize=8)
        bar.ax.tick_params(labelsize=7)
        layer = self.layer if isinstance(self.layer, str) or self.layer is None else "/".join(self.layer)
        shown = f" (first {count} of {len(self)})" if count < len(self) else ""
        fig.suptitle(f"{self.method}" + (f" @ {layer}" if layer else "") + shown, fontsize=10)

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
        """A grid of overlays titled with true class, predicted class and confidence, with a colour bar.

        A volume is drawn at its :meth:`peak_slice` (the title says which).

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
            The matplotlib ``Figure`` (a pyplot figure: ``fig.savefig(...)``, ``plt.show()``).

        Raises:
            ExplainError: ``true_labels`` has the wrong length or unknown names.
        """
        import matplotlib.pyplot as plt

        count = min(len(self), 32) if n is None else max(0, min(int(n), len(self)))
        truths = self._truths(true_labels, count)
        fig = plt.figure(figsize=figsize or self._grid_size(count, ncols, show_image), layout="constrained")
        self._grid(fig, count, truths, ncols=ncols, alpha=alpha, cmap=cmap, show_image=show_image, scaling=scaling)
        return fig

    def _truths(self, true_labels: Sequence[int | str] | None, count: int) -> list[int] | None:
        if true_labels is None:
            return None
        labels = list(true_labels)
        if len(labels) < count:
            raise ExplainError(f"true_labels has {len(labels)} entries; expected at least {count} (one per image).")
        return [self._class_index(v) for v in labels[:count]]

    @staticmethod
    def _grid_size(count: int, ncols: int, show_image: bool) -> tuple[float, float]:
        per = 2 if show_image else 1
        cols = max(1, min(int(ncols), max(count, 1))) * per
        rows = max(1, -(-count * per // cols))
        return (2.6 * cols + 0.9, 3.1 * rows)  # room for every title and the colour bar

    def _repr_png_(self) -> bytes:
        """The notebook picture: the first :data:`REPR_MAX_IMAGES` overlays, titled, with a colour bar (PNG bytes)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        count = min(len(self), REPR_MAX_IMAGES)
        fig = Figure(figsize=self._grid_size(count, 4, False), dpi=_REPR_DPI, layout="constrained")
        FigureCanvasAgg(fig)
        self._grid(fig, count, None, ncols=4, alpha=0.4, cmap="jet", show_image=False, scaling="minmax")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=_REPR_DPI)  # a plain Figure, never pyplot's: nothing else is shown
        return buf.getvalue()

    def _repr_html_(self) -> str:
        """The notebook view: a one-line summary above the grid of :meth:`_repr_png_` (bounded in size)."""
        layer = self.layer if isinstance(self.layer, str) or self.layer is None else " / ".join(self.layer)
        kind = "volume" if self.is_volume else "image"
        n = len(self)
        parts = [f"<b>{html.escape(self.method)}</b>", f"{n} {kind}{'s' if n != 1 else ''}"]
        if layer:
            parts.append(f"layer <code>{html.escape(str(layer))}</code>")
        parts.append(f"gradients of {html.escape(self.score_source)}")
        if n > REPR_MAX_IMAGES:
            parts.append(f"showing the first {REPR_MAX_IMAGES}")
        head = " &middot; ".join(parts)
        if n == 0:
            return f"<div class='neuroxai-explanation'>{head}</div>"
        png = base64.b64encode(self._repr_png_()).decode("ascii")
        alt = html.escape(f"{self.method} maps of {min(n, REPR_MAX_IMAGES)} {kind}s")
        return (
            f"<div class='neuroxai-explanation'><div>{head}</div>"
            f"<img src='data:image/png;base64,{png}' alt='{alt}' style='max-width:100%'/></div>"
        )

    def __repr__(self) -> str:
        layer = f", layer={self.layer!r}" if self.layer is not None else ""
        return f"Explanation(method={self.method!r}, n={len(self)}, maps={tuple(self.maps.shape)}{layer})"

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
        explained = self._explained(i)
        if explained is not None:
            lines.append(f"explained: {explained}")
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
        if self.is_volume and any(o is not None for o in originals):
            raise ExplainError(
                "originals= gives 2-D scans; a volume explanation is drawn on its own slices. To map a volume's map "
                "back onto its scanner file, use neuroxai.volumes.explain_volume_3d."
            )
        out = []
        for n, i in enumerate(indices):
            image, _, z = self._view(i)
            scaled = self._scaled(i, scaling)
            scan = _as_scan(image if originals[n] is None else originals[n])
            size = (int(scan.shape[0]), int(scan.shape[1]))
            heat = upsample_map(scaled if z is None else scaled[z], size)
            shown = np.clip(np.round(_display_image(scan) * 255.0), 0, 255).astype(np.uint8)
            over = overlay_image(scan, heat, alpha=alpha, cmap=cmap)
            outline = _as_mask(masks[n], size)
            if outline is not None:
                edge = _outline(outline, max(1, round(max(size) / 256)))
                shown[edge] = over[edge] = (0, 255, 0)
            title = self.title(i, true_labels[n])
            if z is not None:
                title += f"\nslice {z} of {self.maps.shape[1]} (most map mass)"
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
