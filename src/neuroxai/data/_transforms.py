"""Pixel transforms shared by the numpy path and the tf.data pipeline: one definition of each.

- **channels**: gray to RGB repeats the channel; RGB to gray is ITU-R 601-2
  luma (:data:`LUMA_WEIGHTS`, as PIL and libjpeg use), computed in float32 and
  rounded half to even; a fourth (alpha) channel is dropped.
- **resize**: bilinear with antialiasing (``tf.image.resize``), rounded half
  to even and clipped to uint8; an image already at the size is not touched.
  A volume (:func:`resize_volume`, for 3-D models) is resized the same way
  along each axis: trilinear with antialiasing, in float.
- **masks**: a pixel is tumour when it is non-zero, except that a mask whose
  values are all <= 1 (0/1 or probabilities) is read as 0/1 by rounding
  (tumour above :data:`MASK_THRESHOLD`). Masks are binarised at their own
  size, resized bilinearly (no antialiasing) and binarised again at
  :data:`MASK_THRESHOLD`.
- **range**: 0..255 values map linearly to the model's ``input_range``
  (``(0, 1)`` divides by 255; ``(0, 255)`` keeps them).

Functions without a prefix take and return numpy arrays
(:func:`load_images`, :func:`to_model_input`, :meth:`Dataset.from_arrays`);
``tf_`` functions take and return tensors inside the tf.data pipeline. Both
call the same TensorFlow resize, and ``tests/data/test_transforms.py`` checks
they agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from neuroxai.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

__all__ = [
    "LUMA_WEIGHTS",
    "MASK_THRESHOLD",
    "binarize_mask",
    "range_scale",
    "resize_batch",
    "resize_masks",
    "resize_volume",
    "scale_to_range",
    "tf_binarize_mask",
    "tf_resize_image",
    "tf_resize_mask",
    "tf_scale_to_range",
    "tf_to_channels",
    "to_channels",
]

#: ITU-R 601-2 luma weights for RGB to gray (PIL's ``convert("L")``, libjpeg).
LUMA_WEIGHTS: tuple[float, float, float] = (0.299, 0.587, 0.114)

#: A resized (or soft, 0..1) mask is tumour where it is above this value.
MASK_THRESHOLD = 0.5

_RESIZE_METHOD = "bilinear"
_CHUNK = 256  # images per resize call in the numpy path


# ---------------------------------------------------------------------------------------------- channels
def to_channels(arr: np.ndarray, channels: int) -> np.ndarray:
    """Return uint8 ``arr`` (``[H,W]``, ``[H,W,1]``, ``[H,W,3]`` or ``[H,W,4]``) as ``[H,W,channels]``.

    Args:
        arr: A uint8 image.
        channels: 1 or 3.

    Returns:
        uint8 ``[H, W, channels]`` (see the module docstring for the rules).

    Raises:
        DataError: The image has a channel count other than 1, 3 or 4.
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
        x = arr.astype(np.float32)
        w0, w1, w2 = (np.float32(w) for w in LUMA_WEIGHTS)
        gray: np.ndarray = np.clip(np.rint(x[..., 0] * w0 + x[..., 1] * w1 + x[..., 2] * w2), 0, 255).astype(np.uint8)
        return gray[..., None]
    raise DataError(f"Cannot convert an image with {have} channels to {channels}; expected 1, 3 or 4 channels in, 1 or 3 out.")


def tf_to_channels(img: tf.Tensor, channels: int) -> tf.Tensor:
    """:func:`to_channels` for a uint8 tensor ``[..., H, W, C]`` with a known ``C``."""
    import tensorflow as tf

    have = img.shape[-1]
    if have == 4:
        img = img[..., :3]
        have = 3
    if have == channels:
        return img
    if channels == 3 and have == 1:
        return tf.repeat(img, 3, axis=-1)
    if channels == 1 and have == 3:
        x = tf.cast(img, tf.float32)
        w0, w1, w2 = LUMA_WEIGHTS
        gray = x[..., 0] * w0 + x[..., 1] * w1 + x[..., 2] * w2
        return tf.cast(tf.clip_by_value(tf.round(gray), 0.0, 255.0), tf.uint8)[..., None]
    raise DataError(f"Cannot convert an image with {have} channels to {channels}; expected 1, 3 or 4 channels in, 1 or 3 out.")


# ---------------------------------------------------------------------------------------------- resize
def _resize_uint8(batch: Any, size: tuple[int, int]) -> tf.Tensor:
    """The one image resize: bilinear, antialiased, rounded half to even, uint8."""
    import tensorflow as tf

    out = tf.image.resize(batch, size, method=_RESIZE_METHOD, antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(out), 0.0, 255.0), tf.uint8)


def tf_resize_image(img: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """Resize one uint8 ``[H, W, C]`` tensor to ``size`` (left alone when it already has that size)."""
    import tensorflow as tf

    size = (int(size[0]), int(size[1]))
    same = tf.logical_and(tf.equal(tf.shape(img)[0], size[0]), tf.equal(tf.shape(img)[1], size[1]))
    out = tf.cond(same, lambda: tf.identity(img), lambda: _resize_uint8(img[None], size)[0])
    out.set_shape([size[0], size[1], img.shape[-1]])
    return out


def resize_batch(arrays: Sequence[np.ndarray], image_size: tuple[int, int]) -> np.ndarray:
    """Resize uint8 ``[H,W,C]`` arrays to ``image_size`` exactly as the tf.data pipeline does.

    Arrays of equal shape are resized together in one call.

    Args:
        arrays: uint8 images ``[H, W, C]``, all with the same ``C``.
        image_size: ``(height, width)``.

    Returns:
        float32 ``[N, H, W, C]`` on the 0..255 scale (whole numbers).
    """
    height, width = int(image_size[0]), int(image_size[1])
    n = len(arrays)
    if n == 0:
        return np.zeros((0, height, width, 1), np.float32)
    channels = arrays[0].shape[-1]
    out = np.empty((n, height, width, channels), np.float32)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, arr in enumerate(arrays):
        groups.setdefault(tuple(arr.shape), []).append(i)
    for shape, idx in groups.items():
        for start in range(0, len(idx), _CHUNK):
            chunk = idx[start : start + _CHUNK]
            batch = np.stack([arrays[i] for i in chunk])
            if shape[0] == height and shape[1] == width:
                out[chunk] = batch.astype(np.float32)
            else:
                out[chunk] = np.asarray(_resize_uint8(batch, (height, width))).astype(np.float32)
    return out


def resize_volume(volume: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Resize a volume ``[Z, H, W]`` (or ``[Z, H, W, C]``) to ``shape = (D, H', W')``: trilinear, antialiased, float32.

    Separable, as images are resized: each axial slice bilinearly with antialiasing (``tf.image.resize``),
    then the depth axis the same way (the in-plane axes left as they are). Shrinking averages over the
    voxels each output voxel covers, so a 240^3 scan shrunk for a 64^3 model does not alias; growing (a
    model's map back onto a scan) interpolates linearly, half-pixel centres. Values are not rounded.

    Args:
        volume: ``[Z, H, W]`` or ``[Z, H, W, C]``, any numeric type.
        shape: The output's ``(depth, height, width)``.

    Returns:
        float32 ``[D, H', W']`` (``[D, H', W', C]``).

    Raises:
        DataError: Not a 3-D (or 4-D with channels) array, or not three positive sides.

    Example:
        >>> resize_volume(np.ones((4, 8, 8)), (2, 4, 4)).shape
        (2, 4, 4)
    """
    import tensorflow as tf

    arr = np.asarray(volume, dtype=np.float32)
    sides = tuple(int(s) for s in shape)
    if arr.ndim not in (3, 4) or len(sides) != 3 or min(sides) < 1:
        raise DataError(
            f"Expected a volume [Z, H, W] (or [Z, H, W, C]) and three positive sides; got {arr.shape} -> {tuple(shape)}."
        )
    gray = arr.ndim == 3
    x = arr[..., None] if gray else arr
    depth, height, width = sides
    if x.shape[1:3] != (height, width):
        x = np.asarray(tf.image.resize(x, (height, width), method=_RESIZE_METHOD, antialias=True))
    if x.shape[0] != depth:
        flat = x.reshape(1, x.shape[0], height * width, x.shape[-1])
        x = np.asarray(tf.image.resize(flat, (depth, height * width), method=_RESIZE_METHOD, antialias=True))
        x = x.reshape(depth, height, width, -1)
    out: np.ndarray = x.astype(np.float32, copy=False)
    return out[..., 0] if gray else out


# ---------------------------------------------------------------------------------------------- masks
def binarize_mask(mask: np.ndarray) -> np.ndarray:
    """A mask of any numeric type as uint8 0/1: non-zero is tumour; a mask with all values <= 1 is rounded.

    Args:
        mask: ``[H, W]`` or ``[H, W, 1]`` numbers (bool, uint8 0/255, 0/1, label maps, floats).

    Returns:
        uint8 array of the same shape, 1 for tumour.
    """
    m = np.asarray(mask)
    if m.dtype == np.bool_:
        return m.astype(np.uint8)
    m = np.nan_to_num(m.astype(np.float32))
    threshold = MASK_THRESHOLD if float(np.max(m, initial=0.0)) <= 1.0 else 0.0
    return (m > threshold).astype(np.uint8)


def tf_binarize_mask(mask: tf.Tensor) -> tf.Tensor:
    """:func:`binarize_mask` for a tensor (uint8 0/1 out)."""
    import tensorflow as tf

    m = tf.cast(mask, tf.float32)
    threshold = tf.where(tf.reduce_max(m) <= 1.0, MASK_THRESHOLD, 0.0)
    return tf.cast(m > threshold, tf.uint8)


def _resize_binary(masks: Any, size: tuple[int, int]) -> tf.Tensor:
    """The one mask resize: 0/1 masks ``[..., H, W, 1]``, bilinear without antialiasing, then >= 0.5."""
    import tensorflow as tf

    m = tf.image.resize(tf.cast(masks, tf.float32), size, method=_RESIZE_METHOD)
    return tf.cast(m >= MASK_THRESHOLD, tf.uint8)


def tf_resize_mask(mask: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """Binarise a mask tensor ``[H, W, 1]`` (:func:`binarize_mask`) and resize it to ``size``; uint8 0/1."""
    size = (int(size[0]), int(size[1]))
    out = _resize_binary(tf_binarize_mask(mask), size)
    out.set_shape([size[0], size[1], 1])
    return out


def resize_masks(masks: Sequence[np.ndarray] | np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Binarise masks (:func:`binarize_mask`) and resize them to ``size`` as the pipeline does.

    Args:
        masks: ``[N, H, W]`` array or a list of ``[H, W]`` (or ``[H, W, 1]``) masks, any sizes.
        size: ``(height, width)``.

    Returns:
        bool ``[N, height, width]``.
    """
    height, width = int(size[0]), int(size[1])
    out = np.zeros((len(masks), height, width), bool)
    groups: dict[tuple[int, ...], list[int]] = {}
    binary = [binarize_mask(m[..., 0] if np.ndim(m) == 3 else m) for m in masks]
    for i, b in enumerate(binary):
        groups.setdefault(b.shape, []).append(i)
    for shape, idx in groups.items():
        for start in range(0, len(idx), _CHUNK):
            chunk = idx[start : start + _CHUNK]
            batch = np.stack([binary[i] for i in chunk])
            if shape == (height, width):
                out[chunk] = batch.astype(bool)
            else:
                out[chunk] = np.asarray(_resize_binary(batch[..., None], (height, width)))[..., 0] > 0
    return out


# ---------------------------------------------------------------------------------------------- value range
def range_scale(input_range: tuple[float, float]) -> tuple[np.float32, np.float32]:
    """``(scale, offset)`` such that ``value * scale + offset`` maps 0..255 onto ``input_range``."""
    lo, hi = float(input_range[0]), float(input_range[1])
    return np.float32((hi - lo) / 255.0), np.float32(lo)


def scale_to_range(x: np.ndarray, input_range: tuple[float, float]) -> np.ndarray:
    """Map 0..255 values to ``input_range`` (``(0, 1)`` divides by 255; ``(0, 255)`` keeps them); float32."""
    scale, offset = range_scale(input_range)
    return (x.astype(np.float32, copy=False) * scale + offset).astype(np.float32, copy=False)


def tf_scale_to_range(x: tf.Tensor, input_range: tuple[float, float]) -> tf.Tensor:
    """:func:`scale_to_range` for a float32 tensor."""
    scale, offset = range_scale(input_range)
    return x * float(scale) + float(offset)
