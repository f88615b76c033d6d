"""The tf.data input pipeline: decode, convert channels, resize, cache, shuffle, batch, augment, scale, prefetch.

Order of the stages (per element, then per batch)::

    read file -> decode at the file's own channel count (tf.io for JPEG/PNG, PIL via tf.numpy_function otherwise)
      -> channels -> resize (bilinear, antialiased) -> uint8   (both from neuroxai.data._transforms,
                                                                  shared with load_images / to_model_input)
      -> cache (decoded, resized, un-augmented: uint8 keeps it 4x smaller than float)
      -> shuffle -> random flip, and (half the time) rotation + zoom, per image on uint8
         (train only; masks move with images)
      -> batch -> random brightness/contrast per batch (train only) -> scale to input_range -> prefetch

A sample that is a slice of a scanner volume is read with numpy too
(:func:`neuroxai.data._slices.read_slice`: the volume's windowed uint8 slice,
:meth:`Volume.slices_uint8`, from a per-process cache of at most
:data:`~neuroxai.data._slices.VOLUME_CACHE_SIZE` volumes), then follows the
same stages; a shuffled pass visits the slices of one volume together, so each
volume is read once per pass. Plain image data takes none of these steps.

The shuffling and augmentation of epoch ``e`` are drawn from ``(seed, e)`` alone
(:class:`PipelineState` holds the epoch), so a resumed run sees exactly the
epochs the uninterrupted run would have seen. A file that fails to decode
after indexing is dropped (and, with a :class:`PipelineState`, listed by
:meth:`PipelineState.unread`); in a shuffled pipeline samples of the next pass
take its place, so the number of batches per epoch stays the same.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from neuroxai.data._images import read_for_model
from neuroxai.data._slices import SliceRef, read_slice
from neuroxai.data._transforms import tf_resize_image, tf_resize_mask, tf_scale_to_range, tf_to_channels, to_channels
from neuroxai.errors import DataError

__all__ = ["PipelineState", "Source", "augment_batch", "build_pipeline"]

log = logging.getLogger(__name__)

AUTOTUNE = tf.data.AUTOTUNE

#: Default augmentation strengths (training batches only).
AUGMENT = {
    "flip": 0.5,  # probability of a left-right flip
    "rotation_deg": 10.0,  # uniform in [-10, 10] degrees
    "zoom": 0.1,  # scale uniform in [0.9, 1.1]
    "brightness": 0.08,  # additive, on the 0..1 scale
    "contrast": 0.15,  # factor uniform in [0.85, 1.15] around the image mean
    "affine": 0.5,  # probability of the rotation + zoom transform (the costly part) in the pipeline
}


@dataclass
class Source:
    """What the pipeline reads, one entry per sample (files or in-memory arrays).

    For files, ``tf_ok`` says TensorFlow's decoder reads the file exactly (else
    PIL is used) and ``colour`` that it decodes to three channels (else one);
    both come from indexing (:class:`~neuroxai.data._images.ImageInfo`).
    ``slices`` (``None`` when no sample is one) names the volume slice a sample
    is, where its path is a scanner volume.
    """

    labels: np.ndarray
    paths: list[str] | None = None
    tf_ok: np.ndarray | None = None
    colour: np.ndarray | None = None
    mask_paths: list[str | None] | None = None
    mask_tf_ok: np.ndarray | None = None
    mask_colour: np.ndarray | None = None
    images: list[np.ndarray] | None = None
    masks: list[np.ndarray | None] | None = None
    slices: list[SliceRef | None] | None = None


def _pil_decode(path: bytes, channels: np.ndarray, height: np.ndarray, width: np.ndarray) -> np.ndarray:
    # the index admitted the file (Dataset(max_pixels=...)); big images are still decoded reduced, one at a time
    arr = read_for_model(path.decode("utf-8"), (int(height), int(width)), max_pixels=1 << 62)
    if isinstance(arr, str):
        raise ValueError(arr)  # dropped by ignore_errors, reported by PipelineState.unread
    return np.ascontiguousarray(to_channels(arr, int(channels)))


def _slice_decode(path: bytes, series: bytes, index: np.ndarray, channels: np.ndarray) -> np.ndarray:
    # the windowed pixels of one volume slice, through the per-process volume cache (neuroxai.data._slices)
    ref = SliceRef(path.decode("utf-8"), series.decode("utf-8") or None, int(index))
    try:
        pixels = read_slice(ref)
    except DataError as exc:
        raise ValueError(str(exc)) from exc  # dropped by ignore_errors, reported by PipelineState.unread
    return np.ascontiguousarray(to_channels(pixels, int(channels)))


def _decode(
    path: tf.Tensor,
    tf_ok: tf.Tensor,
    colour: tf.Tensor,
    channels: int,
    size: tuple[int, int],
    where: tuple[tf.Tensor, tf.Tensor] | None = None,
) -> tf.Tensor:
    """Decode one file (or, with ``where`` = ``(slice index, series)`` and an index >= 0, one volume slice) to uint8 ``[H, W, channels]``.

    TensorFlow decodes JPEG and PNG files at their own channel count (1 or 3,
    as PIL would; JPEG with libjpeg's accurate integer DCT, as PIL), then the
    shared :func:`tf_to_channels` converts, so the pixels equal the numpy
    path's (RGB to gray is the shared luma, not the decoder's own conversion).
    A volume slice is read with numpy (:func:`neuroxai.data._slices.read_slice`).
    """

    def with_tf() -> tf.Tensor:
        data = tf.io.read_file(path)

        def decode(have: int) -> tf.Tensor:
            img = tf.cond(
                tf.io.is_jpeg(data),
                # the accurate integer DCT is what PIL (libjpeg's default) uses: the same pixels as load_images
                lambda: tf.io.decode_jpeg(data, channels=have, dct_method="INTEGER_ACCURATE"),
                lambda: tf.io.decode_png(data, channels=have, dtype=tf.uint8),
            )
            img.set_shape([None, None, have])
            return tf_to_channels(img, channels)

        return tf.cond(colour, lambda: decode(3), lambda: decode(1))

    def with_pil() -> tf.Tensor:
        args = [path, np.int64(channels), np.int64(size[0]), np.int64(size[1])]
        out = tf.numpy_function(_pil_decode, args, tf.uint8, stateful=False)
        return tf.reshape(out, tf.stack([tf.shape(out)[0], tf.shape(out)[1], channels]))

    if where is None:
        img = tf.cond(tf_ok, with_tf, with_pil)
    else:
        index, series = where

        def from_volume() -> tf.Tensor:
            out = tf.numpy_function(_slice_decode, [path, series, index, np.int64(channels)], tf.uint8, stateful=False)
            return tf.reshape(out, tf.stack([tf.shape(out)[0], tf.shape(out)[1], channels]))

        img = tf.cond(index >= 0, from_volume, lambda: tf.cond(tf_ok, with_tf, with_pil))
    img.set_shape([None, None, channels])
    return img


def _geometry(
    images: tf.Tensor, masks: tf.Tensor | None, seed: tf.Tensor, p: dict[str, float]
) -> tuple[tf.Tensor, tf.Tensor | None]:
    """One random flip + rotation + zoom per image, as a single projective transform (any dtype)."""
    shape = tf.shape(images)
    b, h, w = shape[0], shape[1], shape[2]
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=3)
    flip = tf.random.stateless_uniform([b], seeds[0]) < p["flip"]
    sign = tf.where(flip, -1.0, 1.0)
    angle = tf.random.stateless_uniform([b], seeds[1], -1.0, 1.0) * (p["rotation_deg"] * math.pi / 180.0)
    zoom = tf.random.stateless_uniform([b], seeds[2], 1.0 - p["zoom"], 1.0 + p["zoom"])
    s = 1.0 / zoom
    cos, sin = tf.cos(angle), tf.sin(angle)
    cx = (tf.cast(w, tf.float32) - 1.0) / 2.0
    cy = (tf.cast(h, tf.float32) - 1.0) / 2.0
    # output pixel (x, y) samples input ((a0 x + a1 y + a2), (b0 x + b1 y + b2)): rotate and zoom about the centre, then mirror
    a0, a1 = sign * s * cos, -sign * s * sin
    b0, b1 = s * sin, s * cos
    a2 = cx - a0 * cx - a1 * cy
    b2 = cy - b0 * cx - b1 * cy
    zeros = tf.zeros_like(a0)
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    out_shape = tf.stack([h, w])
    images = tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=out_shape,
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )
    if masks is not None:
        masks = tf.raw_ops.ImageProjectiveTransformV3(
            images=masks,
            transforms=transforms,
            output_shape=out_shape,
            fill_value=0.0,
            interpolation="NEAREST",
            fill_mode="CONSTANT",
        )
    return images, masks


def _intensity(images: tf.Tensor, seed: tf.Tensor, p: dict[str, float]) -> tf.Tensor:
    """Random brightness (additive) and contrast (about each image's mean) on 0..1 float images."""
    b = tf.shape(images)[0]
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=2)
    delta = tf.random.stateless_uniform([b, 1, 1, 1], seeds[0], -p["brightness"], p["brightness"])
    factor = tf.random.stateless_uniform([b, 1, 1, 1], seeds[1], 1.0 - p["contrast"], 1.0 + p["contrast"])
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    return tf.clip_by_value((images - mean) * factor + mean + delta, 0.0, 1.0)


def augment_batch(
    images: tf.Tensor, masks: tf.Tensor | None, seed: tf.Tensor, strength: dict[str, float] | None = None
) -> tuple[tf.Tensor, tf.Tensor | None]:
    """Randomly flip, rotate, zoom, brighten and contrast a batch; masks get the same geometry.

    Each image gets its own random transform. Geometry is one projective
    transform per image (bilinear for images, nearest for masks, zero fill);
    brightness and contrast touch the images only. (The pipeline applies the
    geometry per image in parallel on uint8 and the intensity change per batch.)

    Args:
        images: float32 ``[B, H, W, C]`` on the 0..1 scale.
        masks: float32 ``[B, H, W, 1]`` in {0, 1}, or None.
        seed: int32/int64 tensor of shape ``[2]`` for the stateless random ops.
        strength: Overrides for :data:`AUGMENT`.

    Returns:
        ``(images, masks)`` augmented; images clipped to 0..1.
    """
    p = dict(AUGMENT, **(strength or {}))
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=2)
    images, masks = _geometry(images, masks, seeds[0], p)
    return _intensity(images, seeds[1], p), masks


def _file_elements(source: Source, order: np.ndarray, labels: np.ndarray, with_masks: bool) -> tf.data.Dataset:
    n = len(order)
    assert source.paths is not None and source.tf_ok is not None and source.colour is not None
    paths = np.array([source.paths[i] for i in order], dtype=object).astype(str) if n else np.zeros(0, str)
    tf_ok = source.tf_ok[order].astype(bool)
    colour = source.colour[order].astype(bool)
    if not with_masks:
        return tf.data.Dataset.from_tensor_slices((paths, tf_ok, colour, labels))
    mpaths = [(source.mask_paths[i] or "") if source.mask_paths else "" for i in order]
    mtf = source.mask_tf_ok[order].astype(bool) if source.mask_tf_ok is not None else np.zeros(n, bool)
    mcol = source.mask_colour[order].astype(bool) if source.mask_colour is not None else np.zeros(n, bool)
    has = np.array([bool(p) for p in mpaths], dtype=bool)
    mpaths_arr = np.array(mpaths, dtype=object).astype(str) if n else np.zeros(0, str)
    return tf.data.Dataset.from_tensor_slices((paths, tf_ok, colour, labels, mpaths_arr, mtf, mcol, has))


def _slice_elements(source: Source, order: np.ndarray) -> tf.data.Dataset | None:
    """``(slice index, series)`` per element (``-1`` and ``""`` for an image file); ``None`` when no sample is a slice."""
    if source.slices is None:
        return None
    refs = [source.slices[i] for i in order]
    index = np.array([-1 if r is None else r.index for r in refs], dtype=np.int64)
    series = np.array([(r.series or "") if r is not None else "" for r in refs], dtype=object).astype(str)
    return tf.data.Dataset.from_tensor_slices((index, series if len(refs) else np.zeros(0, str)))


def _volume_order(slices: list[SliceRef | None], rng: np.random.Generator) -> np.ndarray:
    """A shuffled order that visits the slices of each volume together (each volume is read once per pass).

    The volumes and image files are shuffled, and the slices inside each volume; the pipeline's shuffle
    buffer then mixes neighbouring volumes.
    """
    units: dict[object, list[int]] = {}
    for k, ref in enumerate(slices):
        key: object = k if ref is None else (ref.path, ref.series)
        units.setdefault(key, []).append(k)
    groups = list(units.values())
    picked = rng.permutation(len(groups))
    return np.concatenate([rng.permutation(np.asarray(groups[g], dtype=np.int64)) for g in picked]).astype(np.int64)


def _array_elements(source: Source, order: np.ndarray, labels: np.ndarray, with_masks: bool, channels: int) -> tf.data.Dataset:
    """Elements ``(uint8 image [H,W,C], label[, uint8 mask [H,W,1]])`` from in-memory arrays."""
    assert source.images is not None
    images = [source.images[i] for i in order]
    masks: list[np.ndarray | None] = [source.masks[i] if source.masks is not None else None for i in order]
    n = len(images)
    if len({im.shape for im in images}) <= 1 and n:
        arr = np.stack(images)
        if arr.ndim == 3:
            arr = arr[..., None]
        if not with_masks:
            return tf.data.Dataset.from_tensor_slices((arr, labels))
        mk = np.stack([m if m is not None else np.zeros(arr.shape[1:3], np.uint8) for m in masks]).astype(np.uint8)
        return tf.data.Dataset.from_tensor_slices((arr, labels, mk[..., None]))
    c = 3 if any(im.ndim == 3 and im.shape[-1] >= 3 for im in images) else 1

    def gen() -> Iterator[tuple[np.ndarray, ...]]:
        for k, im in enumerate(images):
            im3 = to_channels(im, c)
            if with_masks:
                m = masks[k]
                mk = np.zeros(im.shape[:2], np.uint8) if m is None else m.astype(np.uint8)
                yield im3, labels[k], mk[..., None]
            else:
                yield im3, labels[k]

    sig: tuple[tf.TensorSpec, ...] = (tf.TensorSpec([None, None, c], tf.uint8), tf.TensorSpec([], tf.int32))
    if with_masks:
        sig = (*sig, tf.TensorSpec([None, None, 1], tf.uint8))
    return tf.data.Dataset.from_generator(gen, output_signature=sig)


class PipelineState:
    """The live state of a pipeline: which epoch's shuffling and augmentation it draws, and which samples it read.

    A shuffled or augmented pipeline draws its randomness from ``(seed,
    epoch)`` alone, so epoch ``e`` is the same whether it is the first epoch a
    process runs or the fifth (what an exact resume needs). The epoch moves
    on by one at every pass over the data; :meth:`set_epoch` sets it (the
    :class:`~neuroxai.Trainer` does at the start of every epoch).

    The pipeline also marks each sample it decoded; :meth:`unread` lists the
    ones that failed after a full pass (files that went bad after indexing).

    Args:
        n: Samples in the split.
        epoch: The first epoch.

    Attributes:
        n: Samples in the split.
    """

    def __init__(self, n: int, epoch: int = 0) -> None:
        self.n = int(n)
        with tf.init_scope():  # plain variables, outside any strategy scope or graph
            self._epoch = tf.Variable(int(epoch), dtype=tf.int64, trainable=False, name="pipeline_epoch")
            self._read = tf.Variable(tf.zeros([max(self.n, 1)], tf.bool), trainable=False, name="pipeline_read")

    def __repr__(self) -> str:
        return f"PipelineState(n={self.n}, epoch={self.epoch})"

    @property
    def epoch(self) -> int:
        """The epoch the next pass draws its randomness for."""
        return int(self._epoch.numpy())

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass draw the randomness of ``epoch`` (0-based)."""
        self._epoch.assign(int(epoch))

    def _next_epoch(self, _: tf.Tensor) -> tf.Tensor:
        return self._epoch.assign_add(1) - 1

    def _mark(self, index: tf.Tensor) -> tf.Tensor:
        return self._read.scatter_nd_update(tf.reshape(index, [1, 1]), tf.ones([1], tf.bool))

    def read(self) -> np.ndarray:
        """Boolean per sample of the split: decoded at least once."""
        return np.asarray(self._read.numpy()[: self.n], dtype=bool)

    def unread(self) -> np.ndarray:
        """Positions (into the split) of the samples not decoded so far; meaningful after a full pass."""
        return np.flatnonzero(~self.read())


def _epoch_seed(seed: int, epoch: tf.Tensor | int, stream: int) -> tf.Tensor:
    """An int64 seed for one random stream of one epoch: a function of ``(seed, epoch, stream)`` only."""
    return (tf.cast(seed, tf.int64) * 1_000_003 + tf.cast(epoch, tf.int64)) * 8 + stream


def _seed_pairs(seed: int, epoch: tf.Tensor | int, stream: int) -> tf.data.Dataset:
    """Seed pairs ``[stream seed, k]`` for the stateless random ops of the k-th element (or batch) of a pass."""
    base = _epoch_seed(seed, epoch, stream)
    return tf.data.Dataset.range(1 << 62).map(lambda k: tf.stack([base, k]))


def build_pipeline(
    source: Source,
    *,
    image_size: tuple[int, int],
    channels: int,
    input_range: tuple[float, float],
    batch_size: int,
    augment: bool,
    shuffle: bool,
    cache: bool | str,
    with_masks: bool,
    seed: int | None,
    ignore_errors: bool = True,
    state: PipelineState | None = None,
) -> tf.data.Dataset:
    """Assemble the tf.data pipeline for one split (see the module docstring for the stages).

    Shuffling and augmentation of epoch ``e`` depend on ``(seed, e)`` only
    (see :class:`PipelineState`); a seeded pipeline is reproducible element by
    element. ``seed=None`` draws a seed from NumPy's global generator.
    """
    size = (int(image_size[0]), int(image_size[1]))
    n = len(source.labels)
    if seed is None:
        seed = int(np.random.randint(0, 2**31 - 1))
    seed = int(seed)
    order = np.arange(n)
    if shuffle and n:
        # Shuffle the file order once so the cache (and a bounded shuffle buffer) is well mixed;
        # the slices of one volume stay together, so the volume is read once, not once per slice.
        rng = np.random.default_rng(seed)
        order = rng.permutation(n) if source.slices is None else _volume_order(source.slices, rng)
    labels = source.labels[order].astype(np.int32)
    empty_mask = tf.zeros([size[0], size[1], 1], tf.uint8)
    positions = order.astype(np.int64)
    random = bool(shuffle or augment)

    ds: tf.data.Dataset
    if source.paths is not None:
        parts = [tf.data.Dataset.from_tensor_slices(positions), _file_elements(source, order, labels, with_masks)]
        where = _slice_elements(source, order)
        ds = tf.data.Dataset.zip(tuple(parts) if where is None else (*parts, where))

        def load_file(pos: tf.Tensor, element: tuple[tf.Tensor, ...], *volume: tf.Tensor) -> Any:
            path, ok, colour, label, *mask = element
            at = (volume[0][0], volume[0][1]) if volume else None
            img = tf_resize_image(_decode(path, ok, colour, channels, size, at), size)
            if not mask:
                return pos, (img, label)
            mpath, mok, mcolour, has_mask = mask
            m = tf.cond(has_mask, lambda: tf_resize_mask(_decode(mpath, mok, mcolour, 1, size), size), lambda: empty_mask)
            return pos, (img, label, m)

        ds = ds.map(load_file, num_parallel_calls=AUTOTUNE, deterministic=True)
    else:
        ds = tf.data.Dataset.zip(
            (tf.data.Dataset.from_tensor_slices(positions), _array_elements(source, order, labels, with_masks, channels))
        )

        def load_array(pos: tf.Tensor, element: tuple[tf.Tensor, ...]) -> Any:
            img, label, *mask = element
            img = tf_resize_image(tf_to_channels(img, channels), size)
            return pos, ((img, label) if not mask else (img, label, tf_resize_mask(mask[0], size)))

        ds = ds.map(load_array, num_parallel_calls=AUTOTUNE, deterministic=True)
    if ignore_errors:
        ds = ds.ignore_errors(log_warning=True)
    if state is not None:
        if state.n != n:
            raise ValueError(f"PipelineState for {state.n} samples given to a pipeline of {n}")

        def mark(pos: tf.Tensor, element: tuple[tf.Tensor, ...]) -> tuple[tf.Tensor, ...]:
            with tf.control_dependencies([state._mark(pos)]):
                return tuple(tf.identity(t) for t in element)

        ds = ds.map(mark)
    else:
        ds = ds.map(lambda pos, element: element)
    if cache:
        ds = ds.cache(cache if isinstance(cache, str) else "")
    base = ds
    p = dict(AUGMENT)
    no_flip = dict(p, flip=0.0)

    def geometry(seed_pair: tf.Tensor, element: tuple[tf.Tensor, ...]) -> tuple[tf.Tensor, ...]:
        seeds = tf.random.experimental.stateless_split(tf.cast(seed_pair, tf.int64), num=3)
        parts: tuple[tf.Tensor, ...] = (element[0], element[2]) if with_masks else (element[0],)
        flip = tf.random.stateless_uniform([], seeds[0]) < p["flip"]
        parts = tf.cond(flip, lambda: tuple(tf.reverse(t, [1]) for t in parts), lambda: parts)

        def affine() -> tuple[tf.Tensor, ...]:
            img, mask = _geometry(parts[0][None], parts[1][None] if with_masks else None, seeds[2], no_flip)
            return (img[0], mask[0]) if mask is not None else (img[0],)

        rotate = tf.random.stateless_uniform([], seeds[1]) < p["affine"]
        parts = tf.cond(rotate, affine, lambda: parts)
        return (parts[0], element[1], parts[1]) if with_masks else (parts[0], element[1])

    def finish(seed_pair: tf.Tensor, batch: tuple[tf.Tensor, ...]) -> tuple[tf.Tensor, ...]:
        images = tf.cast(batch[0], tf.float32)
        if augment:
            images = _intensity(images / 255.0, seed_pair, p) * 255.0
        images = tf_scale_to_range(images, input_range)
        if with_masks:
            return images, batch[1], tf.cast(batch[2], tf.float32)
        return images, batch[1]

    def one_epoch(epoch: tf.Tensor | int) -> tf.data.Dataset:
        """Shuffle, augment, batch and scale one pass; its randomness is a function of ``(seed, epoch)``."""
        d = base
        if shuffle:
            if not tf.executing_eagerly():
                # the function's own graph seed: the order then depends on (seed, epoch) alone, not on the caller's
                # global seed (and TensorFlow's seed helper cannot take a tensor seed under a global seed of 0)
                tf.random.set_seed(1)
            d = d.shuffle(min(max(n, 1), 2048), seed=_epoch_seed(seed, epoch, 0), reshuffle_each_iteration=True)
            if ignore_errors and n:
                # a file that went bad after indexing is dropped; samples of a second pass take its place,
                # so every epoch has the same number of batches (Keras counts them in epoch 1)
                d = d.repeat().take(n)
        if augment:
            # geometry per image (parallel across cores) on uint8, before batching
            geo_seeds = _seed_pairs(seed, epoch, 1)
            d = tf.data.Dataset.zip((geo_seeds, d)).map(geometry, num_parallel_calls=AUTOTUNE, deterministic=True)
        d = d.batch(int(batch_size))
        seeds = _seed_pairs(seed, epoch, 2)
        return tf.data.Dataset.zip((seeds, d)).map(finish, num_parallel_calls=AUTOTUNE, deterministic=True)

    if random:
        counter = state if state is not None else PipelineState(0)
        epochs = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64)).map(counter._next_epoch)
        ds = epochs.flat_map(one_epoch)
        if n and (shuffle or not ignore_errors):
            ds = ds.apply(tf.data.experimental.assert_cardinality(-(-n // int(batch_size))))
    else:
        ds = one_epoch(0)
    return ds.prefetch(AUTOTUNE)
