"""The tf.data input pipeline: decode, convert channels, resize, cache, shuffle, batch, augment, scale, prefetch.

Order of the stages (per element, then per batch)::

    read file -> decode (tf.io for JPEG/PNG, PIL via tf.numpy_function otherwise)
      -> channels -> resize (bilinear, antialiased) -> uint8
      -> cache (decoded, resized, un-augmented: uint8 keeps it 4x smaller than float)
      -> shuffle -> random flip, and (half the time) rotation + zoom, per image on uint8
         (train only; masks move with images)
      -> batch -> random brightness/contrast per batch (train only) -> scale to input_range -> prefetch
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from neuroxai.data._images import pil_to_array, to_channels

__all__ = ["Source", "augment_batch", "build_pipeline"]

log = logging.getLogger("neuroxai.data")

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
    """What the pipeline reads, one entry per sample (files or in-memory arrays)."""

    labels: np.ndarray
    paths: list[str] | None = None
    tf_ok: np.ndarray | None = None
    mask_paths: list[str] | None = None
    mask_tf_ok: np.ndarray | None = None
    images: list[np.ndarray] | np.ndarray | None = None
    masks: list[np.ndarray | None] | np.ndarray | None = None


def _pil_decode(path: bytes, channels: np.ndarray) -> np.ndarray:
    from PIL import Image

    with Image.open(path.decode("utf-8")) as img:
        img.load()
        arr = pil_to_array(img)
    return np.ascontiguousarray(to_channels(arr, int(channels)))


def _decode(path: tf.Tensor, tf_ok: tf.Tensor, channels: int) -> tf.Tensor:
    def with_tf() -> tf.Tensor:
        data = tf.io.read_file(path)
        return tf.io.decode_image(data, channels=channels, expand_animations=False, dtype=tf.uint8)

    def with_pil() -> tf.Tensor:
        out = tf.numpy_function(_pil_decode, [path, np.int64(channels)], tf.uint8, stateful=False)
        return tf.reshape(out, tf.stack([tf.shape(out)[0], tf.shape(out)[1], channels]))

    img = tf.cond(tf_ok, with_tf, with_pil)
    img.set_shape([None, None, channels])
    return img


def _convert_channels(img: tf.Tensor, channels: int) -> tf.Tensor:
    have = img.shape[-1]
    if have == 4:
        img = img[..., :3]
        have = 3
    if have == channels:
        return img
    if channels == 3:
        return tf.repeat(img, 3, axis=-1)
    gray = tf.image.rgb_to_grayscale(tf.cast(img, tf.float32))
    return tf.cast(tf.clip_by_value(tf.round(gray), 0, 255), tf.uint8)


def _resize_image(img: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    def resize() -> tf.Tensor:
        out = tf.image.resize(img, size, method="bilinear", antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(out), 0.0, 255.0), tf.uint8)

    same = tf.logical_and(tf.equal(tf.shape(img)[0], size[0]), tf.equal(tf.shape(img)[1], size[1]))
    out = tf.cond(same, lambda: tf.identity(img), resize)
    out.set_shape([size[0], size[1], img.shape[-1]])
    return out


def _binarize_mask(mask: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    m = tf.cast(mask, tf.float32)
    threshold = tf.where(tf.reduce_max(m) <= 1.0, 0.5, 127.5)
    m = tf.cast(m > threshold, tf.float32)
    m = tf.image.resize(m, size, method="bilinear")
    return tf.cast(m >= 0.5, tf.uint8)


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
) -> tf.data.Dataset:
    """Assemble the tf.data pipeline for one split (see the module docstring for the stages)."""
    size = (int(image_size[0]), int(image_size[1]))
    n = len(source.labels)
    order = np.arange(n)
    if shuffle and n:
        # Shuffle the file order once so the cache (and a bounded shuffle buffer) is well mixed.
        order = np.random.default_rng(seed).permutation(n)
    labels = source.labels[order].astype(np.int32)

    if source.paths is not None:
        paths = np.array([source.paths[i] for i in order], dtype=object).astype(str) if n else np.zeros(0, str)
        tf_ok = source.tf_ok[order].astype(bool) if n else np.zeros(0, bool)
        if with_masks:
            mpaths = [source.mask_paths[i] or "" for i in order] if source.mask_paths else [""] * n
            mtf = source.mask_tf_ok[order].astype(bool) if source.mask_tf_ok is not None else np.zeros(n, bool)
            has = np.array([bool(p) for p in mpaths], dtype=bool)
            ds = tf.data.Dataset.from_tensor_slices(
                (paths, tf_ok, labels, np.array(mpaths, dtype=object).astype(str) if n else np.zeros(0, str), mtf, has)
            )

            def load(path, ok, label, mpath, mok, has_mask):  # type: ignore[no-untyped-def]
                img = _resize_image(_decode(path, ok, channels), size)
                mask = tf.cond(
                    has_mask,
                    lambda: _binarize_mask(_decode(mpath, mok, 1), size),
                    lambda: tf.zeros([size[0], size[1], 1], tf.uint8),
                )
                return img, label, mask
        else:
            ds = tf.data.Dataset.from_tensor_slices((paths, tf_ok, labels))

            def load(path, ok, label):  # type: ignore[no-untyped-def]
                return _resize_image(_decode(path, ok, channels), size), label
    else:
        images = [source.images[i] for i in order]  # type: ignore[index]
        mask_list = [source.masks[i] if source.masks is not None else None for i in order] if with_masks else None
        same = len({im.shape for im in images}) <= 1

        if same and n:
            arr = np.stack(images)
            if arr.ndim == 3:
                arr = arr[..., None]
            tensors: tuple = (arr, labels)
            if with_masks:
                mk = np.stack(
                    [m if m is not None else np.zeros(arr.shape[1:3], np.uint8) for m in mask_list]  # type: ignore[union-attr]
                ).astype(np.uint8)
                tensors = (arr, labels, mk[..., None])
            ds = tf.data.Dataset.from_tensor_slices(tensors)
        else:
            in_ch = max((im.shape[-1] if im.ndim == 3 else 1) for im in images) if images else channels

            def gen():  # type: ignore[no-untyped-def]
                for k, im in enumerate(images):
                    im3 = to_channels(im, 3 if in_ch >= 3 else 1)
                    if with_masks:
                        m = mask_list[k]  # type: ignore[index]
                        m = np.zeros(im.shape[:2], np.uint8) if m is None else m.astype(np.uint8)
                        yield im3, labels[k], m[..., None]
                    else:
                        yield im3, labels[k]

            c = 3 if in_ch >= 3 else 1
            sig: tuple = (tf.TensorSpec([None, None, c], tf.uint8), tf.TensorSpec([], tf.int32))
            if with_masks:
                sig = (*sig, tf.TensorSpec([None, None, 1], tf.uint8))
            ds = tf.data.Dataset.from_generator(gen, output_signature=sig)

        def load(img, label, mask=None):  # type: ignore[no-untyped-def]
            img = _resize_image(_convert_channels(img, channels), size)
            if mask is None:
                return img, label
            return img, label, _binarize_mask(mask, size)

    ds = ds.map(load, num_parallel_calls=AUTOTUNE, deterministic=not shuffle)
    if ignore_errors:
        ds = ds.ignore_errors(log_warning=True)
    if cache:
        ds = ds.cache(cache if isinstance(cache, str) else "")
    if shuffle:
        ds = ds.shuffle(min(max(n, 1), 2048), seed=seed, reshuffle_each_iteration=True)
    lo, hi = float(input_range[0]), float(input_range[1])
    p = dict(AUGMENT)
    if augment:
        # geometry per image (parallel across cores) on uint8, before batching
        no_flip = dict(p, flip=0.0)

        def geometry(seed_pair, element):  # type: ignore[no-untyped-def]
            seeds = tf.random.experimental.stateless_split(tf.cast(seed_pair, tf.int64), num=3)
            parts = (element[0], element[2]) if with_masks else (element[0],)
            flip = tf.random.stateless_uniform([], seeds[0]) < p["flip"]
            parts = tf.cond(flip, lambda: tuple(tf.reverse(t, [1]) for t in parts), lambda: parts)

            def affine():  # type: ignore[no-untyped-def]
                img, mask = _geometry(parts[0][None], parts[1][None] if with_masks else None, seeds[2], no_flip)
                return (img[0], mask[0]) if with_masks else (img[0],)

            rotate = tf.random.stateless_uniform([], seeds[1]) < p["affine"]
            parts = tf.cond(rotate, affine, lambda: parts)
            return (parts[0], element[1], parts[1]) if with_masks else (parts[0], element[1])

        geo_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip((geo_seeds, ds)).map(geometry, num_parallel_calls=AUTOTUNE, deterministic=not shuffle)
    ds = ds.batch(int(batch_size))
    if ignore_errors and n:
        # ignore_errors hides the size from Keras (an "ran out of data" warning and no progress total in
        # epoch 1); the number of batches is known unless a file went bad after indexing.
        ds = ds.apply(tf.data.experimental.assert_cardinality(-(-n // int(batch_size))))

    def finish(seed_pair, batch):  # type: ignore[no-untyped-def]
        images = tf.cast(batch[0], tf.float32) / 255.0
        if augment:
            images = _intensity(images, seed_pair, p)
        images = images * (hi - lo) + lo
        if with_masks:
            return images, batch[1], tf.cast(batch[2], tf.float32)
        return images, batch[1]

    seeds = tf.data.Dataset.random(seed=None if seed is None else seed + 1, rerandomize_each_iteration=True).batch(2)
    ds = tf.data.Dataset.zip((seeds, ds)).map(finish, num_parallel_calls=AUTOTUNE, deterministic=not shuffle)
    return ds.prefetch(AUTOTUNE)
