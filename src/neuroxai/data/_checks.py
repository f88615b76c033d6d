"""Checks of image sizes, shapes, channel counts and input ranges: one definition for the whole library.

Each check returns the normalised value or raises an error that says what was
expected, what was given and how to fix it. The error class defaults to
:class:`~neuroxai.errors.DataError`; a caller in another layer passes its own
(``error=ModelError``) so its users keep catching what they caught before.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Collection
from typing import Any

from neuroxai.errors import DataError, NeuroxaiError

__all__ = [
    "MAX_IMAGE_SIZE",
    "check_channels",
    "check_image_shape",
    "check_image_size",
    "check_input_range",
    "check_pixel_range",
    "size_limit",
]

#: Largest model input side accepted (pixels): far above any MRI classifier's input (224-600), far below a size whose
#: batches cannot fit in memory.
MAX_IMAGE_SIZE = 4096


def _bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover - the loop returns


def size_limit(given: int | None, variable: str, default: int) -> int:
    """A reader's size limit: ``given`` when set, else the environment variable ``variable``, else ``default``.

    The environment variable lets command-line users raise a limit (``NEUROXAI_MAX_VOLUME_VOXELS=300000000
    neuroxai predict ...``) where the Python API takes an argument.

    Raises:
        DataError: ``given`` or the variable's value is not a whole number >= 1.
    """
    if given is not None:
        value = _as_int(given)
        if value is None or value < 1:
            raise DataError(f"A size limit must be a whole number >= 1; got {given!r}.")
        return value
    text = os.environ.get(variable, "").strip()
    if not text:
        return int(default)
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise DataError(f"{variable}={text!r} is not a whole number >= 1; unset it, or give a limit such as {default}.")
    return value


def _as_int(value: Any) -> int | None:
    """``value`` as an int when it is integral (int, numpy integer, 3.0), else None (bools are not sizes)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real) and math.isfinite(float(value)) and float(value).is_integer():
        return int(float(value))
    return None


def _dims(value: Any) -> tuple[int, ...] | None:
    """The integers of a sequence, or None when it is not a sequence of integers."""
    if isinstance(value, (str, bytes)):
        return None
    try:
        items = tuple(value)
    except TypeError:
        return None
    out = tuple(_as_int(v) for v in items)
    return None if any(v is None for v in out) else tuple(v for v in out if v is not None)


def check_image_size(
    size: Any,
    *,
    name: str = "image_size",
    min_size: int = 1,
    max_size: int | None = MAX_IMAGE_SIZE,
    error: type[NeuroxaiError] = DataError,
) -> tuple[int, int]:
    """Check an image size and return it as ``(height, width)``.

    Args:
        size: ``(height, width)`` (any sequence of two integers) or one integer
            for a square image.
        name: What the value is called in the error message.
        min_size: Smallest allowed height and width.
        max_size: Largest allowed height and width (``None``: no limit);
            default :data:`MAX_IMAGE_SIZE`.
        error: Exception class raised on a bad value.

    Returns:
        ``(height, width)`` as Python ints.

    Raises:
        DataError: (or ``error``) ``size`` is not one or two integers, or is
            smaller than ``min_size`` or larger than ``max_size`` (the message
            says how much memory it would take).

    Example:
        >>> check_image_size(128), check_image_size([224, 192])
        ((128, 128), (224, 192))
    """
    single = _as_int(size)
    dims = (single, single) if single is not None else _dims(size)
    if dims is None or len(dims) != 2:
        hint = " Drop the channel axis: (height, width)." if dims is not None and len(dims) == 3 else ""
        raise error(f"{name} must be (height, width) or one integer, e.g. (128, 128); got {size!r}.{hint}")
    if min(dims) < min_size:
        raise error(f"{name} must be at least {min_size}x{min_size} pixels; got {size!r}. Use a larger size, e.g. (128, 128).")
    if max_size is not None and max(dims) > max_size:
        one = dims[0] * dims[1] * 3 * 4  # one RGB image as float32, as a model sees it
        raise error(
            f"{name} {dims[0]}x{dims[1]} is larger than the limit of {max_size}x{max_size} pixels: one RGB image of "
            f"that size takes {_bytes(one)} as float32 and a batch of 32 {_bytes(one * 32)}, before the model's own "
            "activations. Use a size such as (224, 224)."
        )
    return dims[0], dims[1]


def check_channels(
    channels: Any, *, name: str = "channels", allowed: Collection[int] = (1, 3), error: type[NeuroxaiError] = DataError
) -> int:
    """Check a channel count.

    Args:
        channels: The number of channels.
        name: What the value is called in the error message.
        allowed: The accepted counts (default 1 for grayscale and 3 for RGB,
            what the data layer reads and writes).
        error: Exception class raised on a bad value.

    Returns:
        ``channels`` as a Python int.

    Raises:
        DataError: (or ``error``) ``channels`` is not one of ``allowed``.

    Example:
        >>> check_channels(3)
        3
    """
    value = _as_int(channels)
    if value is None or value not in allowed:
        what = " or ".join(f"{c}{' (grayscale)' if c == 1 else ' (RGB)' if c == 3 else ''}" for c in sorted(allowed))
        raise error(f"{name} must be {what}; got {channels!r}.")
    return value


def check_input_range(
    input_range: Any, *, name: str = "input_range", error: type[NeuroxaiError] = DataError
) -> tuple[float, float]:
    """Check a model's input value range.

    Args:
        input_range: ``(low, high)``, two finite numbers with ``high > low``.
        name: What the value is called in the error message.
        error: Exception class raised on a bad value.

    Returns:
        ``(low, high)`` as Python floats.

    Raises:
        DataError: (or ``error``) not two finite numbers, or ``high <= low``.

    Example:
        >>> check_input_range((0, 255))
        (0.0, 255.0)
    """
    try:
        if isinstance(input_range, (str, bytes)) or any(isinstance(v, (str, bytes, bool)) for v in input_range):
            raise TypeError
        lo, hi = (float(v) for v in input_range)
    except (TypeError, ValueError):
        raise error(f"{name} must be (low, high), e.g. (0, 1) or (0, 255); got {input_range!r}.") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise error(f"{name} must be two finite numbers, e.g. (0, 1) or (0, 255); got {input_range!r}.")
    if not hi > lo:
        raise error(f"{name} must have high > low, e.g. (0, 1) or (0, 255); got {input_range!r}.")
    return lo, hi


def check_image_shape(
    shape: Any,
    *,
    name: str = "input_shape",
    min_size: int = 1,
    channels: Collection[int] | None = None,
    error: type[NeuroxaiError] = DataError,
) -> tuple[int, int, int]:
    """Check an image shape ``(height, width, channels)``.

    Args:
        shape: Any sequence of three integers.
        name: What the value is called in the error message (e.g.
            ``"input_shape for model 'cnn'"``).
        min_size: Smallest allowed height and width.
        channels: The accepted channel counts; ``None`` accepts any positive count.
        error: Exception class raised on a bad value.

    Returns:
        ``(height, width, channels)`` as Python ints.

    Raises:
        DataError: (or ``error``) not three positive integers (a 2-D shape such as
            ``(128, 128)`` is rejected: add the channel axis), smaller than
            ``min_size``, or a channel count not in ``channels``.

    Example:
        >>> check_image_shape([128, 128, 1])
        (128, 128, 1)
    """
    dims = _dims(shape)
    if dims is None or len(dims) != 3:
        hint = ""
        if dims is not None and len(dims) == 2:
            hint = f" Add the channel axis, e.g. ({dims[0]}, {dims[1]}, 1) for grayscale or ({dims[0]}, {dims[1]}, 3) for RGB."
        raise error(f"Expected {name} as (height, width, channels) of three integers, got {shape!r}.{hint}")
    if any(d <= 0 for d in dims):
        raise error(f"Expected {name} with positive sizes, got {dims}. Use e.g. (128, 128, 1).")
    if dims[0] < min_size or dims[1] < min_size:
        raise error(
            f"Expected {name} of at least {min_size}x{min_size} pixels, got {dims[0]}x{dims[1]}. Use a larger image size."
        )
    if channels is not None:
        check_channels(dims[2], name=f"the channel count of {name}", allowed=channels, error=error)
    return dims[0], dims[1], dims[2]


def check_pixel_range(
    images: Any,
    input_range: tuple[float, float],
    *,
    convert: bool = False,
    name: str = "images",
    error: type[NeuroxaiError] = DataError,
) -> Any:
    """Check that a batch's pixel values fit a model's input range; optionally convert 0..1 / 0..255 batches.

    A batch is *clearly* outside the range when its values run past either end by more than 10%
    of the range's span (uint8 0..255 given to a 0..1 model), or when a model expecting a 0..255
    scale gets a batch whose values all lie in 0..1 (a scan scaled twice). Values slightly past an
    end (interpolation overshoot, augmentation) pass.

    Args:
        images: A numeric array (any shape); uint8 arrays are on the 0..255 scale.
        input_range: ``(low, high)`` the model expects.
        convert: Rescale a batch that is on the 0..255 (uint8, or float with values up to 255) or
            0..1 scale to ``input_range`` instead of raising; a batch on neither scale still raises.
        name: What the batch is called in the error message.
        error: Exception class raised.

    Returns:
        float32 array: the batch unchanged, or rescaled when ``convert`` is set.

    Raises:
        DataError: (or ``error``) the batch is clearly outside ``input_range`` (and not converted).

    Example:
        >>> import numpy as np
        >>> check_pixel_range(np.full((1, 4, 4, 1), 255, np.uint8), (0.0, 1.0), convert=True).max()
        1.0
    """
    import numpy as np

    lo, hi = check_input_range(input_range, error=error)
    arr = np.asarray(images)
    is_uint8 = arr.dtype == np.uint8
    x = arr.astype(np.float32, copy=False)
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        return x
    vmin, vmax = float(finite.min()), float(finite.max())
    slack = 0.1 * (hi - lo)
    too_wide = vmin < lo - slack or vmax > hi + slack
    twice_scaled = hi - lo >= 100.0 and vmin >= 0.0 and 0.0 < vmax <= 1.0 and not is_uint8
    if not (too_wide or twice_scaled or (is_uint8 and hi - lo < 100.0)):
        return x
    source: tuple[float, float] | None = None
    if is_uint8 or (vmin >= 0.0 and 1.0 < vmax <= 255.0 and too_wide):
        source = (0.0, 255.0)
    elif vmin >= 0.0 and vmax <= 1.0:
        source = (0.0, 1.0)
    if convert and source is not None:
        return (lo + (x - source[0]) * ((hi - lo) / (source[1] - source[0]))).astype(np.float32)
    looks = f"a {source[0]:g}..{source[1]:g} scale" if source is not None else "neither a 0..1 nor a 0..255 scale"
    fix = (
        f"Scale the images to {lo:g}..{hi:g} first, or pass input_scale='convert' to have them rescaled from {looks[2:]}"
        if source is not None
        else f"Scale the images to {lo:g}..{hi:g} first"
    )
    raise error(
        f"The pixel values of {name} run from {vmin:g} to {vmax:g} ({'uint8, ' if is_uint8 else ''}{looks}), but the model "
        f"expects {lo:g}..{hi:g}; predictions on them would be wrong. {fix}, or input_scale='ignore' if the values are "
        "meant so."
    )
