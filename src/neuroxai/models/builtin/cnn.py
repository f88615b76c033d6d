"""The built-in ``cnn``: a small residual separable-convolution network for MRI slices.

Design (default input 128x128x1, about 185k parameters at ``width=1``)::

    image 128x128xC, pixels in [0, 1]
    stem:    Conv 3x3 stride 2 (32) + BN + ReLU, MaxPool 2      -> 32x32x32
    block1:  2x [SeparableConv 3x3 (64)  + BN (+ ReLU)], MaxPool 2, + 1x1-conv shortcut -> 16x16x64
    block2:  2x [SeparableConv 3x3 (128) + BN (+ ReLU)], MaxPool 2, + 1x1-conv shortcut -> 8x8x128
    block3:  2x [SeparableConv 3x3 (256) + BN (+ ReLU)],            + 1x1-conv shortcut -> 8x8x256
             ReLU named "features"  (the Grad-CAM target layer)
    head:    GlobalAveragePooling2D, Dropout, Dense "logits", Activation softmax "probabilities"

Why this shape and size:

* **128x128 grayscale by default.** MRI slices are single-channel, so three
  channels only triple the first layer's cost. At 128 px the tumour classes
  (glioma, meningioma, pituitary, none) stay clearly separable, while
  160 px costs ~1.6x and 224 px ~3x more compute per image on a CPU for
  little accuracy gain on this data set. The 8x8 feature map is fine enough
  for class-activation maps.
* **Reduce resolution early** (stride-2 stem and a pooling layer): full-
  resolution 3x3 convolutions dominated CPU time in our measurements
  (5x slower per image).
* **Depthwise-separable convolutions** cost ~8x fewer multiply-adds than
  full convolutions of the same width, and **residual 1x1 shortcuts** with
  **batch normalisation** let the network train quickly at a high learning
  rate (momentum 0.9, so inference statistics settle within an epoch on a
  few thousand images); a **global-average-pooling** head with **dropout** keeps the parameter
  count small and limits over-fitting on a few thousand images.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from neuroxai.errors import ModelError

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = ["DEFAULT_INPUT_SHAPE", "TARGET_LAYER", "build_cnn"]

#: Default input: 128x128 grayscale (see the module docstring for why).
DEFAULT_INPUT_SHAPE: tuple[int, int, int] = (128, 128, 1)
#: The last convolutional feature map (8x8 at the default size).
TARGET_LAYER = "features"
#: Batch-norm momentum: 0.9 (not Keras' 0.99) so the moving statistics used at
#: inference settle within an epoch or two on a few thousand images.
BN_MOMENTUM = 0.9


def build_cnn(
    *,
    num_classes: int,
    input_shape: tuple[int, int, int] = DEFAULT_INPUT_SHAPE,
    width: float = 1.0,
    dropout: float = 0.3,
    feature_stride: int = 16,
) -> keras.Model:
    """Build the neuroxai baseline CNN (uncompiled).

    Args:
        num_classes: Number of output classes.
        input_shape: ``(height, width, channels)``, pixels in [0, 1]; any
            channel count (1 for grayscale MRI, 3 for RGB). Height and width
            of at least 16.
        width: Multiplier on every layer's channel count (0.5 halves the cost,
            2.0 doubles the capacity); counts are rounded to multiples of 8.
        dropout: Dropout rate before the logits, in [0, 1).
        feature_stride: Input pixels per cell of the ``"features"`` map: 16
            (default; 8x8 at 128 px) or 8 (16x16 at 128 px: block2 keeps its
            resolution). 8 gives explanation maps twice as fine, for small
            lesions or small images, at about twice the compute.

    Returns:
        A flat functional ``keras.Model`` named ``"cnn"`` ending in layers
        ``"logits"`` (pre-softmax) and ``"probabilities"``; the last feature
        map is the layer ``"features"``.

    Raises:
        ModelError: ``width`` is not positive, ``dropout`` is outside [0, 1)
            the image is smaller than 16x16, or ``feature_stride`` is not 8 or 16.

    Example:
        >>> model = build_cnn(num_classes=4, input_shape=(128, 128, 1))
        >>> model.get_layer("features").output.shape
        (None, 8, 8, 256)
    """
    import keras
    from keras import layers

    if not width > 0:
        raise ModelError(f"Model 'cnn': expected width > 0, got {width!r}.")
    if not 0.0 <= dropout < 1.0:
        raise ModelError(f"Model 'cnn': expected dropout in [0, 1), got {dropout!r}.")
    if feature_stride not in (8, 16):
        raise ModelError(f"Model 'cnn': expected feature_stride 8 or 16, got {feature_stride!r}.")
    height, wide, channels = input_shape
    if height < 16 or wide < 16:
        raise ModelError(
            f"Model 'cnn': expected an input of at least 16x16 pixels, got {height}x{wide}. Use a larger image size."
        )

    def filters(n: int) -> int:
        return max(8, round(n * width / 8) * 8)

    inputs = keras.Input(shape=(height, wide, channels), name="image")
    x = layers.Conv2D(filters(32), 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    x = layers.MaxPooling2D(2, name="stem_pool")(x)

    stages = ((1, 64, True), (2, 128, feature_stride == 16), (3, 256, False))
    for index, n, downsample in stages:
        prefix = f"block{index}"
        shortcut = x
        x = layers.SeparableConv2D(filters(n), 3, padding="same", use_bias=False, name=f"{prefix}_sepconv1")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{prefix}_bn1")(x)
        x = layers.ReLU(name=f"{prefix}_relu1")(x)
        x = layers.SeparableConv2D(filters(n), 3, padding="same", use_bias=False, name=f"{prefix}_sepconv2")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{prefix}_bn2")(x)
        stride = 1
        if downsample:
            x = layers.MaxPooling2D(2, padding="same", name=f"{prefix}_pool")(x)
            stride = 2
        shortcut = layers.Conv2D(filters(n), 1, strides=stride, padding="same", use_bias=False, name=f"{prefix}_shortcut")(
            shortcut
        )
        shortcut = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{prefix}_shortcut_bn")(shortcut)
        x = layers.Add(name=f"{prefix}_add")([x, shortcut])
        x = layers.ReLU(name=TARGET_LAYER if index == stages[-1][0] else f"{prefix}_out")(x)

    x = layers.GlobalAveragePooling2D(name="head_pool")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Activation("softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="cnn")
