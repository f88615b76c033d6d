"""Tiny hand-built Keras models (32x32 inputs) and helpers for the explanation tests."""

from __future__ import annotations

import numpy as np

SIZE = 32


def sequential_gray(num_classes: int = 3):
    """Sequential, grayscale, ends in Activation('softmax') after a 'logits' Dense."""
    import keras

    keras.utils.set_random_seed(1)
    return keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 1)),
            keras.layers.Conv2D(4, 3, activation="relu", name="conv1"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.Conv2D(8, 3, activation="relu", name="conv2"),
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(num_classes, name="logits"),
            keras.layers.Activation("softmax", name="probabilities"),
        ],
        name="seq_gray",
    )


def functional_rgb(num_classes: int = 4):
    """Functional, RGB, a skip connection, ends in Dense(activation='softmax')."""
    import keras

    keras.utils.set_random_seed(2)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv1")(inputs)
    y = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.Add(name="add")([x, y])
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv3")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="head")(x)
    return keras.Model(inputs, outputs, name="func_rgb")


def nested_backbone(num_classes: int = 3):
    """A small functional backbone used as ONE layer inside the outer model (the 'Graph disconnected' case)."""
    import keras

    keras.utils.set_random_seed(3)
    b_in = keras.Input((SIZE, SIZE, 3))
    b = keras.layers.Conv2D(4, 3, activation="relu", name="b_conv1")(b_in)
    b = keras.layers.BatchNormalization(name="b_bn")(b)
    b = keras.layers.Conv2D(8, 3, activation="relu", name="b_conv2")(b)
    backbone = keras.Model(b_in, b, name="backbone.v1")  # a dot in the name, on purpose
    inputs = keras.Input((SIZE, SIZE, 3))
    x = backbone(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.5)(x)
    x = keras.layers.Dense(num_classes, name="logits")(x)
    outputs = keras.layers.Softmax(name="probabilities")(x)
    return keras.Model(inputs, outputs, name="nested")


def no_softmax(num_classes: int = 2):
    """Sequential whose output is raw scores (no softmax at all)."""
    import keras

    keras.utils.set_random_seed(4)
    return keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Conv2D(5, 3, activation="relu", name="conv"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(num_classes, name="scores"),
        ],
        name="raw_scores",
    )


BUILDERS = {
    "sequential_gray": sequential_gray,
    "functional_rgb": functional_rgb,
    "nested_backbone": nested_backbone,
    "no_softmax": no_softmax,
}


def images_for(model, n: int = 3, seed: int = 0) -> np.ndarray:
    """Random images in [0, 1] shaped for ``model``."""
    shape = tuple(model.inputs[0].shape[1:])
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


def square_images(model, n: int = 3, seed: int = 0) -> np.ndarray:
    """Images in [0, 1] shaped for ``model``: a bright square on dim noise, something for a patch to cover.

    On uniform noise a patch changes an untrained model's score by about 1e-4 of itself (the patch's mean is the
    image's), too close to float32 rounding for occlusion maps to be compared closely; the square moves it 10x more.
    """
    rng = np.random.default_rng(seed)
    height, width, channels = tuple(model.inputs[0].shape[1:])
    x = rng.random((n, height, width, channels), dtype=np.float32) * 0.3
    side = min(height, width) // 3
    for i in range(n):
        y0, x0 = rng.integers(0, min(height, width) - side, size=2)
        x[i, y0 : y0 + side, x0 : x0 + side] += 0.7
    return x


def model_state(model) -> dict:
    """Everything 'explain must not change': weights, trainable flags, configs, of every layer (nested too)."""
    import keras

    state = {"weights": [np.array(w) for w in model.get_weights()], "config": repr(model.get_config()), "layers": []}

    def walk(m, prefix=""):
        for layer in m.layers:
            state["layers"].append((prefix + layer.name, layer.trainable, repr(layer.get_config()), type(layer).__name__))
            if isinstance(layer, keras.Model):
                walk(layer, prefix + layer.name + "/")

    walk(model)
    state["trainable"] = model.trainable
    return state
