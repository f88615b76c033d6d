"""A 3-D model's explanation of a scan, written back on the scan's own grid.

A volume model (``Conv3D`` networks: input ``(batch, depth, height, width, channels)``) sees the whole scan
at once. :func:`explain_volume_3d` reads a scan (:func:`neuroxai.data.read_volume`), resizes its windowed
voxels to the model's input (:func:`neuroxai.data.resize_volume`: trilinear, antialiased) and scales them to
the input range, explains it in one compiled call, and resizes the map back onto the scan's display grid,
so :meth:`Volume3DExplanation.save` writes it as a NIfTI file with the scan's own shape and affine (the
same writer as the slice-model path, :func:`neuroxai.data.write_nifti`) beside a picture of three
orthogonal slices through the map's peak.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from neuroxai.errors import ExplainError
from neuroxai.volumes._explain import HEATMAP_SUFFIX, VolumeOutputs

if TYPE_CHECKING:  # pragma: no cover
    from neuroxai.data import Volume
    from neuroxai.explain import Explainer, Explanation

__all__ = ["VIEWS_SUFFIX", "Volume3DExplanation", "explain_volume_3d", "volume_input"]

#: File name ending of the orthogonal-views picture :meth:`Volume3DExplanation.save` writes after the volume's name.
VIEWS_SUFFIX = "_views.png"


def volume_input(volume: Volume, input_shape: tuple[int | None, ...], input_range: tuple[float, float]) -> np.ndarray:
    """A scan as one model-ready volume ``[1, D, H, W, C]``: windowed voxels resized and scaled to the input range.

    Args:
        volume: A volume from :func:`neuroxai.data.read_volume` (its 8-bit windowed slices are what the model sees).
        input_shape: The model's ``(depth, height, width, channels)``.
        input_range: The model's pixel range (0..255 maps onto it linearly).

    Returns:
        float32 ``[1, D, H, W, C]`` (one channel repeated into ``C``).

    Raises:
        ExplainError: ``input_shape`` is not a fixed volume shape.
    """
    from neuroxai.data import resize_volume

    if len(input_shape) != 4 or any(s is None for s in input_shape):
        raise ExplainError(
            f"Expected a volume model with a fixed input (depth, height, width, channels); got input shape {input_shape}. "
            "For a 2-D slice classifier use neuroxai.volumes.explain_volume."
        )
    d, h, w, c = (int(s) for s in input_shape if s is not None)
    pixels = np.clip(resize_volume(volume.slices_uint8(), (d, h, w)), 0.0, 255.0)
    lo, hi = float(input_range[0]), float(input_range[1])
    x = (pixels * np.float32((hi - lo) / 255.0) + np.float32(lo)).astype(np.float32)  # 0..255 onto the range, as for images
    return np.repeat(x[None, ..., None], c, axis=-1)


@dataclass(frozen=True, eq=False)
class Volume3DExplanation:
    """A volume model's explanation of one scan (frozen: fields cannot be reassigned).

    Attributes:
        volume: The scan explained.
        explanation: The :class:`~neuroxai.explain.Explanation` of the scan at the model's input size
            (one volume: its probabilities, predicted class and map ``[1, D, H, W]``).
        heatmap: float32 ``[Z, H, W]`` in [0, 1]: the map resized onto the scan's display grid
            (:attr:`neuroxai.data.Volume.voxels`).
        target: What was explained (a class name, or a callable target's name).
        method: The explanation method's name.
    """

    volume: Volume = field(repr=False)
    explanation: Explanation = field(repr=False)
    heatmap: np.ndarray = field(repr=False)
    target: str
    method: str

    @property
    def name(self) -> str:
        """The volume's output stem."""
        return str(self.volume.name)

    @property
    def predicted(self) -> str:
        """The model's class for the scan."""
        return str(self.explanation.predicted_names[0])

    @property
    def confidence(self) -> float:
        """The model's probability of :attr:`predicted`."""
        return float(self.explanation.confidence[0])

    def peak(self) -> tuple[int, int, int]:
        """The voxel ``(z, row, col)`` of the display grid where the heatmap is highest."""
        index = np.unravel_index(int(np.argmax(self.heatmap)), self.heatmap.shape)
        return int(index[0]), int(index[1]), int(index[2])

    def views(self, *, alpha: float = 0.4, cmap: str = "jet") -> np.ndarray:
        """Three orthogonal slices through the heatmap's peak (axial, coronal, sagittal), the map over the scan.

        Returns:
            uint8 RGB ``[H, W, 3]``, titled with the answer and what was explained.
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        from neuroxai.explain import overlay_image

        scan = self.volume.slices_uint8()
        z, r, c = self.peak()
        cuts = [
            (f"axial z={z}", scan[z], self.heatmap[z]),
            (f"coronal row={r}", scan[:, r, :][::-1], self.heatmap[:, r, :][::-1]),
            (f"sagittal col={c}", scan[:, :, c][::-1], self.heatmap[:, :, c][::-1]),
        ]
        fig = Figure(figsize=(9.0, 3.6), dpi=100, layout="constrained")
        canvas: Any = FigureCanvasAgg(fig)
        for ax, (title, image, heat) in zip(fig.subplots(1, 3), cuts):
            ax.imshow(overlay_image(image, heat, alpha=alpha, cmap=cmap), interpolation="nearest")
            ax.set_title(title, fontsize=9)
            ax.axis("off")
        fig.suptitle(self._headline(), fontsize=10)
        canvas.draw()
        return np.array(np.asarray(canvas.buffer_rgba())[..., :3], dtype=np.uint8)

    def _headline(self) -> str:
        return f"{self.name}: {self.predicted} (p = {self.confidence:.3f}); {self.method} of {self.target} (3-D model, not a diagnosis)"

    def save(
        self,
        directory: str | os.PathLike[str],
        *,
        name: str | None = None,
        overwrite: bool = False,
        alpha: float = 0.4,
        cmap: str = "jet",
    ) -> VolumeOutputs:
        """Write ``<name>_heatmap.nii.gz`` (the scan's grid and affine) and ``<name>_views.png``, atomically.

        Args:
            directory: Output folder (created if needed).
            name: File stem (default: the volume's name).
            overwrite: Replace an existing heatmap file neuroxai wrote (an input is never replaced).
            alpha: Heatmap weight in the views.
            cmap: Colormap of the views.

        Returns:
            The written files (:class:`~neuroxai.volumes.VolumeOutputs`; ``montage`` is the views picture).
        """
        from PIL import Image, PngImagePlugin

        from neuroxai._io import write_bytes
        from neuroxai.data import write_nifti

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        stem = name or self.name
        heat = out / f"{stem}{HEATMAP_SUFFIX}"
        write_nifti(heat, self.heatmap, self.volume, overwrite=overwrite)
        info = PngImagePlugin.PngInfo()
        info.add_text("Title", self._headline())
        info.add_text("Software", "neuroxai")
        buf = io.BytesIO()
        Image.fromarray(self.views(alpha=alpha, cmap=cmap)).save(buf, format="PNG", pnginfo=info)
        views = write_bytes(out / f"{stem}{VIEWS_SUFFIX}", buf.getvalue())
        return VolumeOutputs(heatmap=str(heat), montage=str(views))


def explain_volume_3d(explainer: Explainer, volume: Volume, *, target: Any = None) -> Volume3DExplanation:
    """Explain a scan with a volume model, and put the map back on the scan's grid.

    Args:
        explainer: An :class:`~neuroxai.Explainer` of a volume model (input ``(batch, depth, height, width,
            channels)``); its ``input_range`` (the predictor's, or the one given) scales the voxels, ``(0, 1)``
            when it declares none.
        volume: A scan from :func:`neuroxai.data.read_volume`.
        target: What to explain, as for :meth:`~neuroxai.Explainer.explain`: ``None`` (the predicted class), a
            class index or name, or a callable on the model output.

    Returns:
        A :class:`Volume3DExplanation`; its :meth:`~Volume3DExplanation.save` writes the NIfTI heatmap and the views.

    Raises:
        ExplainError: The explainer's model is not a volume model with a fixed input size, or a bad target.

    Example:
        >>> explainer = Explainer(volume_model, "gradcam", class_names=names, input_range=(0, 1))  # doctest: +SKIP
        >>> explain_volume_3d(explainer, read_volume("scan.nii.gz")).save("out")  # doctest: +SKIP
        VolumeOutputs(heatmap='out/scan_heatmap.nii.gz', montage='out/scan_views.png')
    """
    from neuroxai.data import resize_volume

    x = volume_input(volume, explainer.input_shape, explainer.input_range or (0.0, 1.0))
    exp = explainer.explain(x, targets=target)
    heat = np.clip(resize_volume(exp.maps[0], volume.voxels.shape), 0.0, 1.0).astype(np.float32)
    return Volume3DExplanation(volume, exp, heat, exp.target_names[0], exp.method)
