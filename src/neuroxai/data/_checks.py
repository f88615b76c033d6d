"""Checks of image sizes, shapes, channel counts and input ranges: one definition for the whole library.

Each check returns the normalised value or raises an error that says what was
expected, what was given and how to fix it. The error class defaults to
:class:`~neuroxai.errors.DataError`; a caller in another layer passes its own
(``error=ModelError``) so its users keep catching what they caught before.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection
from typing import Any

from neuroxai.errors import DataError, NeuroxaiError

__all__ = ["check_channels", "check_image_shape", "check_image_size", "check_input_range"]


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
    size: Any, *, name: str = "image_size", min_size: int = 1, error: type[NeuroxaiError] = DataError
) -> tuple[int, int]:
    """Check an image size and return it as ``(height, width)``.

    Args:
        size: ``(height, width)`` (any sequence of two integers) or one integer
            for a square image.
        name: What the value is called in the error message.
        min_size: Smallest allowed height and width.
        error: Exception class raised on a bad value.

    Returns:
        ``(height, width)`` as Python ints.

    Raises:
        DataError: (or ``error``) ``size`` is not one or two integers, or is
            smaller than ``min_size``.

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
