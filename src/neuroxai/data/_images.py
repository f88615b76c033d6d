"""Reading image files into uint8 arrays, probing files at index time, and model input.

One place decides how any image mode (bilevel, grayscale, palette, RGB, RGBA,
CMYK, 16-bit, 32-bit integer or float) becomes 8-bit pixels, so the index, the
tf.data pipeline's PIL fallback, :func:`load_images` and :func:`to_model_input`
all agree.

Memory stays bounded whatever the files hold: an image of more than
:data:`MAX_IMAGE_PIXELS` pixels is refused from its header alone (skipped and
reported, never decoded); one of more than :data:`REDUCE_ABOVE_PIXELS` is
decoded reduced (JPEG's DCT scaling through ``Image.draft``, then an integer
box ``Image.reduce``; palette, bilevel and 16-bit images are first converted
to the 8-bit pixels :func:`pil_to_array` gives, since a box average of palette
indices means nothing) to no less than the size it is needed at, one such
image at a time; and no full-resolution image is converted to float64.

Orientation: an EXIF ``Orientation`` tag (a phone or camera photo of a film, a
JPEG exported rotated) is applied, so the pixels are the image as viewers show
it. Every reader applies it: the index, :func:`load_images`, ``neuroxai
predict``/``explain`` and the tf.data pipeline (which decodes such files with
PIL instead of TensorFlow's decoders, as those ignore the tag), so training and
prediction see the same pixels.

Only regular files are opened (a named pipe would wait for a writer forever).
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import threading
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from neuroxai._progress import progress as _progress
from neuroxai.data._checks import check_channels, check_image_size, check_input_range, size_limit
from neuroxai.data._files import SkippedFile, special_file
from neuroxai.data._transforms import resize_batch, scale_to_range, to_channels
from neuroxai.errors import DataError

__all__ = [
    "MAX_IMAGE_PIXELS",
    "MAX_IMAGE_PIXELS_VARIABLE",
    "REDUCE_ABOVE_PIXELS",
    "ImageInfo",
    "as_uint8",
    "image_pixel_limit",
    "load_images",
    "open_image",
    "pil_to_array",
    "probe_files",
    "read_array",
    "to_model_input",
]

#: Largest image (width x height) neuroxai reads by default: 40 megapixels, well below Pillow's own
#: decompression-bomb limit (about 89 megapixels warns, 179 fails). Larger files are skipped and reported
#: from their header, never decoded. Change it per call (``max_pixels=``), here for the process, or with the
#: environment variable :data:`MAX_IMAGE_PIXELS_VARIABLE` (for the command line).
MAX_IMAGE_PIXELS = 40_000_000

#: Environment variable that replaces :data:`MAX_IMAGE_PIXELS` where no ``max_pixels`` is given.
MAX_IMAGE_PIXELS_VARIABLE = "NEUROXAI_MAX_IMAGE_PIXELS"

#: Images above this many pixels (4096 x 4096) are decoded reduced towards the size they are needed at,
#: one at a time; smaller ones (every MRI slice) are decoded whole, so their pixels are not changed.
REDUCE_ABOVE_PIXELS = 4096 * 4096

#: Side of the reduced image kept when probing a big file at index time (enough for the thumbnail).
_PROBE_SIDE = 512

#: Files up to this size are read into memory once at index time (hash and decode); larger ones are streamed.
_READ_WHOLE = 64 << 20

# Big images are decoded on one dedicated thread, one at a time: a thread pool over big files cannot multiply
# the peak, and the memory one decode frees is reused by the next (the C allocator keeps it per thread).
_BIG_POOL: ThreadPoolExecutor | None = None
_BIG_POOL_LOCK = threading.Lock()


def _big_pool() -> ThreadPoolExecutor:
    global _BIG_POOL
    with _BIG_POOL_LOCK:
        if _BIG_POOL is None:
            _BIG_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="neuroxai-big-image")
        return _BIG_POOL


#: Modes ``Image.reduce`` refuses ("image has wrong mode") or would average meaninglessly (palette indices):
#: converted to the 8-bit pixels :func:`pil_to_array` gives before a big image is reduced.
_NO_REDUCE = frozenset({"1", "P", "PA", "I;16", "I;16B", "I;16L", "I;16N", "I;16S"})

#: EXIF orientation -> the transpose that shows the image upright (the table of ``ImageOps.exif_transpose``).
_ORIENTATIONS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _exif_orientation(img: Image.Image) -> int:
    """The image's EXIF orientation (1..8; 1 when absent, unreadable or out of range)."""
    try:
        value = img.getexif().get(0x0112, 1)
    except (OSError, ValueError, SyntaxError, TypeError, KeyError, EOFError, struct.error):  # a damaged EXIF block
        return 1
    return int(value) if isinstance(value, int) and value in _ORIENTATIONS else 1


def _load(img: Image.Image, want: tuple[int, int] | None) -> tuple[Image.Image, bool]:
    """Decode ``img``, upright (its EXIF orientation applied); with ``want`` (width, height), reduced towards it.

    Reduction is JPEG DCT scaling, then an integer box reduce (modes the reduce cannot average are converted
    to 8 bit first). Returns the image and whether an orientation was applied.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        orientation = _exif_orientation(img)
        if want is not None and orientation >= 5:  # turned by 90 degrees: the file's width is the picture's height
            want = (want[1], want[0])
        if want is not None:
            img.draft(img.mode, want)  # JPEG: decode at 1/2, 1/4 or 1/8 scale; other formats: no-op
        img.load()
        if want is not None:
            factor = min(img.width // max(want[0], 1), img.height // max(want[1], 1))
            if factor >= 2:
                source = img
                if img.mode in _NO_REDUCE:
                    source = Image.fromarray(pil_to_array(img))
                    img.close()
                reduced = source.reduce(factor)
                source.close()
                img = reduced
        if orientation != 1:
            upright = img.transpose(_ORIENTATIONS[orientation])
            img.close()
            img = upright
    return img, orientation != 1


# Modes TensorFlow's own decoders handle exactly like PIL does; everything else
# (TIFF, BMP, GIF, WebP, 16-bit, CMYK ...) is decoded with PIL inside the pipeline.
_TF_FORMATS = {"JPEG": {"L", "RGB"}, "PNG": {"L", "LA", "RGB", "RGBA", "P"}}

#: Side of the grayscale thumbnail kept per image for perceptual hashing.
THUMB_SIZE = 32

_SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N", "I;16S"}

# Modes :func:`pil_to_array` turns into one channel (everything else becomes RGB).
_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "F"} | _SIXTEEN_BIT)


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
        oriented: The file has an EXIF orientation other than upright, which readers apply.
    """

    format: str
    mode: str
    width: int
    height: int
    digest: str
    thumb: np.ndarray
    oriented: bool = False

    @property
    def tf_decodable(self) -> bool:
        """True when ``tf.io.decode_image`` reads this file exactly (else PIL is used: big images, decoded reduced, and
        images with an EXIF orientation, which TensorFlow's decoders ignore)."""
        return (
            self.mode in _TF_FORMATS.get(self.format, set())
            and self.width * self.height <= REDUCE_ABOVE_PIXELS
            and not self.oriented
        )

    @property
    def channels(self) -> int:
        """1 for single-channel modes (gray, gray + alpha, bilevel, 16-bit ...), else 3: what decoding yields."""
        return 1 if self.mode in _GRAY_MODES else 3


def thumbnail(arr: np.ndarray) -> np.ndarray:
    """The ``THUMB_SIZE`` x ``THUMB_SIZE`` uint8 grayscale thumbnail of a uint8 image (perceptual hash input)."""
    gray = to_channels(arr, 1)[..., 0]
    return np.asarray(Image.fromarray(gray).resize((THUMB_SIZE, THUMB_SIZE), Image.Resampling.BILINEAR), dtype=np.uint8)


def digest_bytes(data: bytes) -> str:
    """BLAKE2b (128-bit) hex digest of ``data``."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _sixteen_bit_to_uint8(arr: np.ndarray) -> np.ndarray:
    """16-bit values scaled by the full 16-bit range: ``rint(value * 255 / 65535)``."""
    out: np.ndarray = np.clip(np.rint(arr.astype(np.float32) * np.float32(255.0 / 65535.0)), 0, 255).astype(np.uint8)
    return out


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
        return _sixteen_bit_to_uint8(np.asarray(img))
    if mode in ("I", "F"):
        arr = np.asarray(img).astype(np.float32)  # float32, in place below: never a float64 copy of a big image
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        if hi > lo:
            arr -= lo
            arr *= np.float32(255.0 / (hi - lo))
        else:
            arr[:] = 0
        np.nan_to_num(arr, copy=False)
        np.rint(arr, out=arr)
        return np.clip(arr, 0, 255).astype(np.uint8)
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


def _corrupt(exc: BaseException, width: int = 0, height: int = 0) -> str:
    if isinstance(exc, MemoryError):  # a valid image too big for the memory left, not a damaged file
        return (
            f"not enough memory to decode this {width}x{height} image ({width * height / 1e6:.0f} megapixels); free memory, "
            "or lower the limit (max_pixels, or the environment variable "
            f"{MAX_IMAGE_PIXELS_VARIABLE}) so images this large are refused from their header"
        )
    text = str(exc) or type(exc).__name__
    if "truncated" in text.lower():
        return f"truncated image ({text}); the file was cut short, re-copy it from the source"
    return f"corrupt image ({text}); re-export or remove it"


def _too_big(width: int, height: int, max_pixels: int) -> str:
    return (
        f"image of {width}x{height} pixels ({width * height / 1e6:.0f} megapixels) is larger than the limit of "
        f"{max_pixels / 1e6:g} megapixels, so it was not decoded; shrink it (e.g. to 1024x1024) or raise the limit "
        f"(max_pixels=, or the environment variable {MAX_IMAGE_PIXELS_VARIABLE})"
    )


def image_pixel_limit(max_pixels: int | None = None) -> int:
    """The largest image read: ``max_pixels``, else ``$NEUROXAI_MAX_IMAGE_PIXELS``, else :data:`MAX_IMAGE_PIXELS`."""
    return size_limit(max_pixels, MAX_IMAGE_PIXELS_VARIABLE, MAX_IMAGE_PIXELS)


def open_image(
    path: str | os.PathLike[str], *, size: tuple[int, int] | None = None, max_pixels: int | None = None
) -> Image.Image | str:
    """Decode an image file, within bounded memory; returns the loaded image or why it is unusable.

    Every pixel is decoded (catching zero-byte, truncated, corrupt and
    non-image files, with a reason that says how to fix them). An image of
    more than ``max_pixels`` pixels is refused from its header. One of more
    than :data:`REDUCE_ABOVE_PIXELS` is decoded reduced to no less than
    ``size`` (JPEG DCT scaling, then an integer box reduction), one at a time.
    An EXIF orientation is applied (the image upright, as viewers show it).
    Named pipes, sockets and devices are refused without being opened.

    Args:
        path: The file.
        size: ``(height, width)`` the image is needed at (``None``: full size,
            or :data:`_PROBE_SIDE` for a big image).
        max_pixels: Largest ``width * height`` read (default :func:`image_pixel_limit`: :data:`MAX_IMAGE_PIXELS`
            unless the environment variable ``NEUROXAI_MAX_IMAGE_PIXELS`` sets another).

    Returns:
        A loaded :class:`PIL.Image.Image` (close it), or the reason it cannot be used.
    """
    opened = _open(path, None, size, max_pixels)
    return opened if isinstance(opened, str) else opened.image


@dataclass(frozen=True)
class _Opened:
    """A decoded image and what the file itself says (format, size and mode: also for an image decoded reduced)."""

    image: Image.Image
    format: str
    size: tuple[int, int]
    mode: str
    oriented: bool


def _open(
    path: str | os.PathLike[str], data: bytes | None, size: tuple[int, int] | None, max_pixels: int | None
) -> _Opened | str:
    """:func:`open_image` (from ``data`` when given), also returning the file's own format, ``(width, height)`` and mode."""
    limit = image_pixel_limit(max_pixels)
    if data is None and (special := special_file(path)) is not None:
        return special
    try:
        if (len(data) if data is not None else os.path.getsize(path)) == 0:
            return "zero-byte file (empty); re-copy it from the source or delete it"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own, lower limit decides
            img = Image.open(io.BytesIO(data) if data is not None else path)
    except UnidentifiedImageError:
        return "not an image PIL can identify (wrong extension or corrupt header); convert it to PNG or JPEG or remove it"
    except Image.DecompressionBombError as exc:
        return f"image larger than Pillow's decompression-bomb limit ({exc}); it was not decoded: shrink it or remove it"
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            return f"cannot be read ({exc.strerror or exc}); check the path and the file's permissions"
        return _corrupt(exc)
    width, height = img.size
    fmt, mode = str(img.format), str(img.mode)
    if width * height > limit:
        img.close()
        return _too_big(width, height, limit)
    want_h, want_w = size if size is not None else (_PROBE_SIDE, _PROBE_SIDE)
    try:
        if width * height > REDUCE_ABOVE_PIXELS:
            loaded, oriented = _big_pool().submit(_load, img, (int(want_w), int(want_h))).result()
        else:
            loaded, oriented = _load(img, None)
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        img.close()
        return _corrupt(exc, width, height)
    return _Opened(loaded, fmt, (int(width), int(height)), mode, oriented)


def read_array(path: str | os.PathLike[str], *, size: tuple[int, int] | None = None, max_pixels: int | None = None) -> np.ndarray:
    """Read one image file into uint8 ``[H, W]`` or ``[H, W, 3]`` (see :func:`pil_to_array` and :func:`open_image`).

    Raises:
        DataError: The file cannot be used (the message says why).
    """
    img = open_image(path, size=size, max_pixels=max_pixels)
    if isinstance(img, str):
        raise DataError(f"{os.fspath(path)!r}: {img}.")
    with img:
        return pil_to_array(img)


def file_digest(path: str | os.PathLike[str]) -> str:
    """BLAKE2b (128-bit) hex digest of a file's bytes, read in chunks."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def probe_file(path: str, max_pixels: int | None = None) -> ImageInfo | str:
    """Read a file fully and return its :class:`ImageInfo`, or a reason it is unusable.

    Run at index time, so broken files never reach training. The size, mode
    and format are the file's own, also for an image decoded reduced.
    """
    if (special := special_file(path)) is not None:  # never open a pipe: it would wait for a writer
        return special
    try:
        small = os.path.getsize(path) <= _READ_WHOLE
        data = _read_bytes(path) if small else None  # one read for hash and decode; big files are streamed twice
        digest = digest_bytes(data) if data is not None else file_digest(path)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc}); check the path and the file's permissions"
    opened = _open(path, data, None, max_pixels)
    if isinstance(opened, str):
        return opened
    width, height = opened.size  # the file's own format, size and mode (a big image was decoded reduced)
    with opened.image as img:
        arr = pil_to_array(img)
    return ImageInfo(
        format=opened.format,
        mode=opened.mode,
        width=width,
        height=height,
        digest=digest,
        thumb=thumbnail(arr),
        oriented=opened.oriented,
    )


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def probe_files(
    paths: Sequence[str], *, progress: bool = False, desc: str = "Reading images", max_pixels: int | None = None
) -> list[ImageInfo | str]:
    """Probe many files on a thread pool (PIL releases the GIL while decoding).

    Returns:
        One :class:`ImageInfo` or reason string per path, in the order given.
    """
    if not paths:
        return []
    workers = min(32, (os.cpu_count() or 1) * 4)
    out: list[ImageInfo | str] = []
    bar: Any = _progress(total=len(paths), desc=desc, enabled=progress and len(paths) > 200)
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for result in pool.map(lambda p: probe_file(p, max_pixels), paths, chunksize=16):
                out.append(result)
                bar.update(1)
    finally:
        bar.close()
    return out


def check_model_input(image_size: Any, channels: Any, input_range: Any) -> tuple[tuple[int, int], int, tuple[float, float]]:
    """Check the three settings of a model's input together (see :mod:`neuroxai.data._checks`)."""
    return check_image_size(image_size), check_channels(channels), check_input_range(input_range)


def read_for_model(path: str, size: tuple[int, int], max_pixels: int | None = None) -> np.ndarray | str:
    """One file as uint8 pixels for a model input of ``size``, decoded within bounded memory, or why it is unusable."""
    img = open_image(path, size=size, max_pixels=max_pixels)
    if isinstance(img, str):
        return img
    with img:
        return pil_to_array(img)


def load_images(
    paths: Sequence[str | os.PathLike[str]],
    *,
    image_size: tuple[int, int],
    channels: int,
    input_range: tuple[float, float] = (0.0, 1.0),
    progress: bool = False,
    max_pixels: int | None = None,
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
        max_pixels: Largest image read (default :data:`MAX_IMAGE_PIXELS`);
            larger files are skipped with the reason, never decoded.

    Returns:
        ``(images, ok_paths, skipped)``: float32 ``[N, H, W, C]`` for the files read,
        their paths in the same order, and a :class:`SkippedFile` per bad file.

    Raises:
        DataError: If ``image_size``, ``channels`` or ``input_range`` are invalid.

    Example:
        >>> x, ok, skipped = load_images(["scan.png"], image_size=(128, 128), channels=1)  # doctest: +SKIP
    """
    size, channels, rng = check_model_input(image_size, channels, input_range)
    names = [os.fspath(p) for p in paths]
    results: list[np.ndarray | str] = []
    if names:
        bar: Any = _progress(total=len(names), desc="Loading images", enabled=progress)
        with ThreadPoolExecutor(max_workers=min(32, (os.cpu_count() or 1) * 4)) as pool:
            for res in pool.map(lambda n: read_for_model(n, size, max_pixels), names, chunksize=8):
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
    size, channels, rng = check_model_input(image_size, channels, input_range)
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
    if not arrays:
        return np.zeros((0, size[0], size[1], channels), np.float32)
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
        return _sixteen_bit_to_uint8(arr)
    arr = arr.astype(np.float32)
    if arr.size and float(np.nanmax(arr)) <= 1.0:
        arr = arr * 255.0
    return np.clip(np.rint(np.nan_to_num(arr)), 0, 255).astype(np.uint8)
