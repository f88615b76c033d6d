"""Reading image files into uint8 arrays, probing files at index time, and model input.

One place decides how any image mode (bilevel, grayscale, palette, RGB, RGBA,
CMYK, 16-bit, 32-bit integer or float) becomes 8-bit pixels, so the index, the
tf.data pipeline's PIL fallback, :func:`load_images` and :func:`to_model_input`
all agree.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from neuroxai._progress import progress as _progress
from neuroxai.errors import DataError

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageInfo",
    "SkippedFile",
    "load_images",
    "to_model_input",
]

#: File name endings read as images (case-insensitive).
IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".tif", ".tiff", ".gif", ".webp"})

# Modes TensorFlow's own decoders handle exactly like PIL does; everything else
# (TIFF, BMP, GIF, WebP, 16-bit, CMYK ...) is decoded with PIL inside the pipeline.
_TF_FORMATS = {"JPEG": {"L", "RGB"}, "PNG": {"L", "LA", "RGB", "RGBA", "P"}}

#: Side of the grayscale thumbnail kept per image for perceptual hashing.
THUMB_SIZE = 32

_SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N", "I;16S"}


@dataclass(frozen=True)
class SkippedFile:
    """A file that was not used, and why.

    Attributes:
        path: The file or folder, as found on disk (or as listed in a manifest).
        reason: What was wrong and how to fix it.
    """

    path: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        """Return ``{"path": ..., "reason": ...}`` (JSON-able)."""
        return {"path": self.path, "reason": self.reason}


@dataclass(frozen=True)
class ImageInfo:
    """What indexing learnt about one readable image file.

    Attributes:
        format: PIL format name (``"JPEG"``, ``"PNG"`` ...).
        mode: PIL mode (``"L"``, ``"RGB"``, ``"I;16"`` ...).
        width: Width in pixels.
        height: Height in pixels.
        digest: Hex BLAKE2b digest of the file's bytes (exact-duplicate key).
        thumb: ``THUMB_SIZE`` x ``THUMB_SIZE`` uint8 grayscale thumbnail (perceptual hash input).
    """

    format: str
    mode: str
    width: int
    height: int
    digest: str
    thumb: np.ndarray

    @property
    def tf_decodable(self) -> bool:
        """True when ``tf.io.decode_image`` reads this file exactly (else PIL is used)."""
        return self.mode in _TF_FORMATS.get(self.format, set())


def digest_bytes(data: bytes) -> str:
    """BLAKE2b (128-bit) hex digest of ``data``."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def pil_to_array(img: Image.Image) -> np.ndarray:
    """Convert a PIL image of any mode to uint8 ``[H, W]`` (gray) or ``[H, W, 3]`` (colour).

    Alpha is dropped, palettes are expanded, 16-bit images are scaled by the
    full 16-bit range (``value * 255 / 65535``), 32-bit integer and float
    images are min-max scaled to 0..255.

    Args:
        img: A loaded PIL image.

    Returns:
        A uint8 array, 2-D for single-channel images and 3-D with 3 channels otherwise.
    """
    mode = img.mode
    if mode in _SIXTEEN_BIT:
        arr = np.asarray(img).astype(np.float32)
        return np.clip(np.rint(arr * (255.0 / 65535.0)), 0, 255).astype(np.uint8)
    if mode in ("I", "F"):
        arr = np.asarray(img).astype(np.float64)
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        scaled = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        return np.clip(np.rint(np.nan_to_num(scaled)), 0, 255).astype(np.uint8)
    if mode == "L":
        return np.asarray(img, dtype=np.uint8)
    if mode in ("1", "LA", "La"):
        return np.asarray(img.convert("L"), dtype=np.uint8)
    if mode == "P":
        conv = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
        return np.asarray(conv, dtype=np.uint8)[..., :3]
    if mode == "RGB":
        return np.asarray(img, dtype=np.uint8)
    if mode in ("RGBA", "RGBa", "RGBX"):
        return np.asarray(img, dtype=np.uint8)[..., :3]
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def to_channels(arr: np.ndarray, channels: int) -> np.ndarray:
    """Return ``arr`` (``[H,W]``, ``[H,W,1]``, ``[H,W,3]`` or ``[H,W,4]``) with ``channels`` channels.

    RGB to gray uses ITU-R 601-2 luma (as PIL, libjpeg and TensorFlow do).
    """
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.shape[-1] == 4:
        arr = arr[..., :3]
    have = arr.shape[-1]
    if have == channels:
        return arr
    if channels == 3 and have == 1:
        return np.repeat(arr, 3, axis=-1)
    if channels == 1 and have == 3:
        gray = arr[..., 0] * 0.299 + arr[..., 1] * 0.587 + arr[..., 2] * 0.114
        return np.clip(np.rint(gray), 0, 255).astype(np.uint8)[..., None]
    raise DataError(f"Cannot convert an image with {have} channels to {channels}; expected 1 or 3 channels.")


def read_array(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one image file into uint8 ``[H, W]`` or ``[H, W, 3]`` (see :func:`pil_to_array`)."""
    with Image.open(path) as img:
        img.load()
        return pil_to_array(img)


def _decode_file(path: str) -> tuple[bytes, Image.Image] | str:
    """Read a file fully and decode every pixel; returns ``(bytes, loaded image)`` or why it is unusable.

    Reading every byte and decoding every pixel catches zero-byte, truncated,
    corrupt and non-image files, with a reason that says how to fix them.
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc}); check the path and the file's permissions"
    if not data:
        return "zero-byte file (empty); re-copy it from the source or delete it"
    try:
        img = Image.open(io.BytesIO(data))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img.load()
    except UnidentifiedImageError:
        return "not an image PIL can identify (wrong extension or corrupt header); convert it to PNG or JPEG or remove it"
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError, Image.DecompressionBombError) as exc:
        text = str(exc) or type(exc).__name__
        if "truncated" in text.lower():
            return f"truncated image ({text}); the file was cut short, re-copy it from the source"
        return f"corrupt image ({text}); re-export or remove it"
    return data, img


def probe_file(path: str) -> ImageInfo | str:
    """Read a file fully and return its :class:`ImageInfo`, or a reason it is unusable.

    Run at index time, so broken files never reach training.
    """
    decoded = _decode_file(path)
    if isinstance(decoded, str):
        return decoded
    data, img = decoded
    with img:
        fmt, mode, (width, height) = str(img.format), img.mode, img.size
        arr = pil_to_array(img)
    gray = to_channels(arr, 1)[..., 0]
    thumb = np.asarray(Image.fromarray(gray).resize((THUMB_SIZE, THUMB_SIZE), Image.BILINEAR), dtype=np.uint8)
    return ImageInfo(format=fmt, mode=mode, width=int(width), height=int(height), digest=digest_bytes(data), thumb=thumb)


def probe_files(paths: Sequence[str], *, progress: bool = False, desc: str = "Reading images") -> list[ImageInfo | str]:
    """Probe many files on a thread pool (PIL releases the GIL while decoding).

    Returns:
        One :class:`ImageInfo` or reason string per path, in the order given.
    """
    if not paths:
        return []
    workers = min(32, (os.cpu_count() or 1) * 4)
    out: list[ImageInfo | str] = []
    bar = _progress(total=len(paths), desc=desc, enabled=progress and len(paths) > 200)
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for result in pool.map(probe_file, paths, chunksize=16):
                out.append(result)
                bar.update(1)
    finally:
        bar.close()
    return out


def resize_batch(arrays: Sequence[np.ndarray], image_size: tuple[int, int]) -> np.ndarray:
    """Resize uint8 ``[H,W,C]`` arrays to ``image_size`` with the pipeline's resize.

    Arrays of equal shape are resized together in one ``tf.image.resize`` call
    (bilinear, antialiased), exactly as the tf.data pipeline resizes.

    Returns:
        float32 ``[N, H, W, C]`` on the 0..255 scale, rounded like the pipeline's cache.
    """
    import tensorflow as tf

    height, width = int(image_size[0]), int(image_size[1])
    n = len(arrays)
    if n == 0:
        return np.zeros((0, height, width, 1), np.float32)
    channels = arrays[0].shape[-1]
    out = np.empty((n, height, width, channels), np.float32)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, arr in enumerate(arrays):
        groups.setdefault(arr.shape, []).append(i)
    for shape, idx in groups.items():
        for start in range(0, len(idx), 256):
            chunk = idx[start : start + 256]
            batch = np.stack([arrays[i] for i in chunk])
            if shape[0] == height and shape[1] == width:
                out[chunk] = batch.astype(np.float32)
                continue
            resized = tf.image.resize(batch, (height, width), method="bilinear", antialias=True)
            out[chunk] = np.clip(np.rint(resized.numpy()), 0, 255)
    return out


def scale_to_range(x: np.ndarray, input_range: tuple[float, float]) -> np.ndarray:
    """Map 0..255 values to ``input_range`` (``(0, 1)`` divides by 255; ``(0, 255)`` keeps them)."""
    lo, hi = float(input_range[0]), float(input_range[1])
    if (lo, hi) == (0.0, 255.0):
        return x.astype(np.float32, copy=False)
    return (x * np.float32((hi - lo) / 255.0) + np.float32(lo)).astype(np.float32, copy=False)


def _check_size(image_size: Any, channels: int, input_range: Any) -> tuple[tuple[int, int], int, tuple[float, float]]:
    try:
        h, w = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise DataError(f"image_size must be (height, width); got {image_size!r}.") from None
    if h <= 0 or w <= 0:
        raise DataError(f"image_size must be positive; got {image_size!r}.")
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 (grayscale) or 3 (RGB); got {channels!r}.")
    try:
        lo, hi = (float(v) for v in input_range)
    except (TypeError, ValueError):
        raise DataError(f"input_range must be (low, high), e.g. (0, 1) or (0, 255); got {input_range!r}.") from None
    if not hi > lo:
        raise DataError(f"input_range must have high > low; got {input_range!r}.")
    return (h, w), channels, (lo, hi)


def _read_for_model(path: str) -> np.ndarray | str:
    decoded = _decode_file(path)
    if isinstance(decoded, str):
        return decoded
    with decoded[1] as img:
        return pil_to_array(img)


def load_images(
    paths: Sequence[str | os.PathLike[str]],
    *,
    image_size: tuple[int, int],
    channels: int,
    input_range: tuple[float, float] = (0.0, 1.0),
    progress: bool = False,
) -> tuple[np.ndarray, list[str], list[SkippedFile]]:
    """Read image files for a model, skipping (and reporting) the ones that cannot be read.

    Files are decoded on a thread pool, converted to ``channels`` channels and
    resized in batches with the same resize the tf.data pipeline uses, then
    scaled to ``input_range``.

    Args:
        paths: Image files (any format and mode :mod:`PIL` reads).
        image_size: ``(height, width)`` of the output.
        channels: 1 (grayscale) or 3 (RGB).
        input_range: Value range the model expects; ``(0, 1)`` divides by 255,
            ``(0, 255)`` keeps 8-bit values.
        progress: Show a progress bar.

    Returns:
        ``(images, ok_paths, skipped)``: float32 ``[N, H, W, C]`` for the files read,
        their paths in the same order, and a :class:`SkippedFile` per bad file.

    Raises:
        DataError: If ``image_size``, ``channels`` or ``input_range`` are invalid.

    Example:
        >>> x, ok, skipped = load_images(["scan.png"], image_size=(128, 128), channels=1)  # doctest: +SKIP
    """
    size, channels, rng = _check_size(image_size, channels, input_range)
    names = [os.fspath(p) for p in paths]
    results: list[np.ndarray | str] = []
    if names:
        bar = _progress(total=len(names), desc="Loading images", enabled=progress)
        with ThreadPoolExecutor(max_workers=min(32, (os.cpu_count() or 1) * 4)) as pool:
            for res in pool.map(_read_for_model, names, chunksize=8):
                results.append(res)
                bar.update(1)
        bar.close()
    ok_paths: list[str] = []
    arrays: list[np.ndarray] = []
    skipped: list[SkippedFile] = []
    for name, res in zip(names, results):
        if isinstance(res, str):
            skipped.append(SkippedFile(name, res))
        else:
            ok_paths.append(name)
            arrays.append(to_channels(res, channels))
    x = resize_batch(arrays, size) if arrays else np.zeros((0, size[0], size[1], channels), np.float32)
    return scale_to_range(x, rng), ok_paths, skipped


def to_model_input(
    images: Any,
    image_size: tuple[int, int],
    channels: int,
    input_range: tuple[float, float] = (0.0, 1.0),
) -> np.ndarray:
    """Turn PIL images or arrays into a model-ready float32 batch.

    Args:
        images: A PIL image, a list of PIL images or arrays, or one array
            ``[H,W]``, ``[H,W,C]`` or ``[N,H,W,C]``. uint8 arrays are on the 0..255
            scale; uint16 arrays on the 16-bit scale; float arrays with a
            maximum <= 1 are taken as 0..1, other floats as 0..255.
        image_size: ``(height, width)`` of the output.
        channels: 1 or 3.
        input_range: Value range the model expects.

    Returns:
        float32 ``[N, H, W, channels]`` scaled to ``input_range``.

    Raises:
        DataError: If an input is not an image-shaped array or PIL image.

    Example:
        >>> import numpy as np
        >>> to_model_input(np.zeros((64, 64), np.uint8), (32, 32), 3).shape
        (1, 32, 32, 3)
    """
    size, channels, rng = _check_size(image_size, channels, input_range)
    if isinstance(images, Image.Image):
        items: list[Any] = [images]
    elif isinstance(images, np.ndarray):
        if images.ndim == 2 or (images.ndim == 3 and images.shape[-1] in (1, 3, 4) and images.shape[0] > 4):
            items = [images]
        elif images.ndim in (3, 4):
            items = list(images)
        else:
            raise DataError(f"Expected an image array [H,W], [H,W,C] or [N,H,W,C]; got shape {images.shape}.")
    else:
        items = list(images)
    arrays = [to_channels(as_uint8(item), channels) for item in items]
    return scale_to_range(resize_batch(arrays, size), rng)


def as_uint8(item: Any) -> np.ndarray:
    """Convert a PIL image or an array to uint8 ``[H,W]`` or ``[H,W,C]`` (see :func:`to_model_input`)."""
    if isinstance(item, Image.Image):
        return pil_to_array(item)
    arr = np.asarray(item)
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (1, 3, 4)):
        raise DataError(f"Expected an image array [H,W] or [H,W,C] with C in 1, 3, 4; got shape {arr.shape}.")
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if arr.dtype == np.uint16:
        return np.clip(np.rint(arr.astype(np.float32) * (255.0 / 65535.0)), 0, 255).astype(np.uint8)
    arr = arr.astype(np.float32)
    if arr.size and float(np.nanmax(arr)) <= 1.0:
        arr = arr * 255.0
    return np.clip(np.rint(np.nan_to_num(arr)), 0, 255).astype(np.uint8)
