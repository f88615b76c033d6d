"""The model: a small ResNet (three residual stages) following the neuroxai model contract."""

from __future__ import annotations

import keras
from keras import layers

__all__ = ["build_tinyresnet"]


def _residual(x, filters: int, stride: int, name: str):
    shortcut = x
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    y = layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = layers.BatchNormalization(name=f"{name}_bn2")(y)
    if stride != 1 or shortcut.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_proj")(shortcut)
        shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_out")(y)


def build_tinyresnet(*, num_classes: int, input_shape: tuple[int, int, int] = (96, 96, 1), base_filters: int = 16) -> keras.Model:
    """Build an uncompiled tiny ResNet.

    The neuroxai contract: keyword-only ``num_classes`` and ``input_shape``,
    any options after them with defaults, and a flat functional model ending
    in a ``Dense`` layer named ``"logits"`` and a softmax ``Activation`` named
    ``"probabilities"``.

    Args:
        num_classes: Number of output classes.
        input_shape: ``(height, width, channels)``; pixels in [0, 1].
        base_filters: Channels of the first stage (doubled per stage).

    Returns:
        A ``keras.Model`` whose last feature map is the layer ``"stage3_out"``.
    """
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Conv2D(base_filters, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    x = _residual(x, base_filters, 1, "stage1")
    x = _residual(x, base_filters * 2, 2, "stage2")
    x = _residual(x, base_filters * 4, 2, "stage3")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Activation("softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="tinyresnet")
