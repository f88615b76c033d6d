"""The model zoo of tests/explain/test_zoo.py: keras.applications backbones in three forms, special cases, a reference.

Everything here is built offline (``weights=None``) at the smallest input size whose last feature map is
at least 2x2 (a 1x1 map upsamples to a constant picture, which would hide a wrong map).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from numerics import EPS32

#: One representative per keras.applications family (members of a family share one builder and one layer
#: layout; the larger members only repeat blocks): (family module, constructor, input size, options).
APPLICATIONS: tuple[tuple[str, str, int, dict[str, Any]], ...] = (
    ("resnet", "ResNet50", 64, {}),
    ("resnet_v2", "ResNet50V2", 64, {}),
    ("vgg16", "VGG16", 64, {}),
    ("vgg19", "VGG19", 64, {}),
    ("inception_v3", "InceptionV3", 107, {}),
    ("inception_resnet_v2", "InceptionResNetV2", 107, {}),
    ("xception", "Xception", 71, {}),
    ("mobilenet", "MobileNet", 64, {"alpha": 0.25}),
    ("mobilenet_v2", "MobileNetV2", 64, {"alpha": 0.35}),
    ("mobilenet_v3", "MobileNetV3Small", 64, {"minimalistic": True}),
    ("densenet", "DenseNet121", 64, {}),
    ("efficientnet", "EfficientNetB0", 64, {}),
    ("efficientnet_v2", "EfficientNetV2B0", 64, {}),
    ("convnext", "ConvNeXtTiny", 64, {}),
    ("nasnet", "NASNetMobile", 64, {}),
)
#: The costliest to build, trace and save on 2 CPU cores (marked slow; they still run in `make test`).
SLOW_APPLICATIONS = {
    "InceptionResNetV2",
    "InceptionV3",
    "DenseNet121",
    "NASNetMobile",
    "ConvNeXtTiny",
    "ResNet50",
    "EfficientNetB0",
}
NUM_CLASSES = 3
#: Images whose batch statistics become the backbones' BatchNormalization statistics. The last feature map is 2x2 at
#: these sizes: from 4 images, a channel saw 16 values, and one nearly constant over them was divided by about
#: sqrt(epsilon) on other images: EfficientNetV2B0's activations reached thousands, its softmax saturated and it
#: amplified float32 rounding 100-fold (Grad-CAM 3.6e-3 apart between two correct computations). 16 images: tame.
CALIBRATION_IMAGES = 16


@dataclass
class AppForms:
    """One backbone in its three forms, sharing one set of weights."""

    name: str
    size: int
    flat: Any  # keras.Model: the backbone's layers at the top level, then GAP and Dense(softmax)
    nested: Any  # keras.Model: the backbone as ONE layer under the same GAP and Dense
    backbone: Any
    feature_layer: str  # the backbone's last 4-D layer (the automatic target)
    pool_model: Any  # flat input -> (features, pooled) for the reference
    dense: Any  # the shared Dense(softmax) head


def build_application(constructor: str, size: int, options: dict[str, Any]) -> AppForms:
    """Build ``keras.applications.<constructor>`` (no top, random weights) as flat and nested classifiers."""
    import keras

    keras.utils.set_random_seed(0)
    backbone = getattr(keras.applications, constructor)(include_top=False, weights=None, input_shape=(size, size, 3), **options)
    calibrate_batchnorm(backbone, zoo_images(size, n=CALIBRATION_IMAGES, seed=99))
    feature_op = _single(backbone.output)._keras_history[0]
    gap = keras.layers.GlobalAveragePooling2D(name="head_pool")
    dense = keras.layers.Dense(NUM_CLASSES, activation="softmax", name="head_dense")
    features = _single(backbone.output)
    pooled = gap(features)
    flat = keras.Model(backbone.inputs[0], dense(pooled), name=f"{constructor.lower()}_flat")
    inputs = keras.Input((size, size, 3), name="scan")
    nested = keras.Model(inputs, dense(gap(backbone(inputs))), name=f"{constructor.lower()}_nested")
    pool_model = keras.Model(backbone.inputs[0], [features, pooled])
    return AppForms(constructor, size, flat, nested, backbone, feature_op.name, pool_model, dense)


def calibrate_batchnorm(model: Any, x: np.ndarray) -> None:
    """Give a random-weight model live activations: every BatchNormalization's moving statistics from one batch.

    With fresh moving statistics (mean 0, variance 1) many random backbones (MobileNet, NASNet) let their
    activations die out layer after layer, so their output no longer depends on the input and every
    map is rightly constant. One call in training mode with momentum 0 stores the batch statistics of
    each layer, so inference normalises as training would: the model stays random but alive.
    """
    import keras

    norms = [layer for layer in model._flatten_layers(include_self=False) if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    try:
        model(x, training=True)
    finally:
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum


def _single(out: Any) -> Any:
    return out[0] if isinstance(out, (list, tuple)) else out


def save_and_load(model: Any, path: Any) -> Any:
    """``model`` written to a ``.keras`` file and read back in safe mode, as another project would hand it over."""
    import keras

    model.save(path)
    return keras.saving.load_model(path, compile=False, safe_mode=True)


def zoo_images(size: int, n: int = 2, seed: int = 0, scale: float = 255.0) -> np.ndarray:
    """Images with structure (a bright square on noise), so maps have something to point at."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, size, size, 3), dtype=np.float32) * 0.3
    for i in range(n):
        s = size // 3
        y0, x0 = rng.integers(0, size - s, size=2)
        x[i, y0 : y0 + s, x0 : x0 + s] += 0.7
    return (x * scale).astype(np.float32)


def reference_gradcam(
    forward: Any, x: np.ndarray, targets: Any, rtol: float | None = None, to_grid: Any = None
) -> tuple[np.ndarray, float]:
    """Grad-CAM written out plainly, as the Keras example does: one GradientTape around ``forward``.

    ``forward(x)`` returns the target feature map and the class scores (pre-activation) of a batch.
    Channel weights are the spatially averaged gradients; maps are ReLU'd, resized bilinearly to the
    input and divided by their maximum, as neuroxai documents. ``to_grid`` (for tokens) reshapes the
    features and their gradient into a feature map after differentiating.

    Returns:
        The maps, and the tolerance another correct computation of them meets with a forward pass of relative
        precision ``rtol`` (default ``numerics.FORWARD_RTOL``; ``numerics.cam_tol``: from the sizes of the terms the
        channel sum cancels).
    """
    import tensorflow as tf

    from numerics import FORWARD_RTOL, cam_tol

    with tf.GradientTape() as tape:
        feats, scores = forward(tf.constant(x))
        picked = tf.gather(tf.cast(scores, tf.float32), tf.constant(np.asarray(targets), tf.int32), axis=1, batch_dims=1)
    grads = tf.cast(tape.gradient(picked, feats), tf.float32)
    feats = tf.cast(feats, tf.float32)
    if to_grid is not None:
        feats, grads = to_grid(feats), to_grid(grads)
    terms = tf.reduce_mean(grads, axis=[1, 2], keepdims=True) * feats
    cam = tf.nn.relu(tf.reduce_sum(terms, axis=-1))
    up = tf.nn.relu(tf.image.resize(cam[..., None], x.shape[1:3], method="bilinear")[..., 0]).numpy()
    peak = up.max(axis=(1, 2), keepdims=True)
    maps = np.where(peak > 1e-12, up / np.where(peak > 1e-12, peak, 1.0), 0.0).astype(np.float32)
    return maps, cam_tol(terms.numpy(), FORWARD_RTOL if rtol is None else rtol)


def fingerprint(model: Any) -> tuple[Any, ...]:
    """Weights (shape, dtype, digest of every variable, nested models included), trainable flags and configs."""
    import keras

    digests = tuple(
        (tuple(w.shape), str(w.dtype), hashlib.sha1(np.ascontiguousarray(np.asarray(w)).tobytes()).hexdigest())
        for w in model.weights
    )
    layers: list[tuple[str, bool, str]] = []

    def walk(m: Any, prefix: str = "") -> None:
        for layer in m.layers:
            layers.append((prefix + layer.name, bool(layer.trainable), repr(layer.get_config())))
            if isinstance(layer, keras.Model) and hasattr(layer, "layers"):
                walk(layer, prefix + layer.name + "/")

    walk(model)
    return digests, tuple(layers), repr(model.get_config()), bool(model.trainable)


#: Cheap options for the costlier methods (few samples, steps, channels, patches).
FAST: dict[str, dict[str, Any]] = {
    "smoothgrad": {"samples": 2},
    "integrated_gradients": {"steps": 4},
    "occlusion": {"patch_size": 8},
    "scorecam": {"max_channels": 4},
}
CAM_METHODS = {"gradcam", "gradcam++", "layercam", "hirescam", "scorecam"}


def _spread(maps: np.ndarray) -> float:
    flat = maps.reshape(len(maps), -1)
    return float((flat.max(axis=1) - flat.min(axis=1)).max())


def check_maps(exp: Any, x: np.ndarray, explainer: Any = None) -> None:
    """The promises every map keeps: float32, finite, in [0, 1], input height and width (and depth), not all constant.

    A random-weight model may raise the predicted class's probability wherever it is occluded (an
    all-zero map, rightly); its probabilities sum to 1, so another class then falls: with ``explainer``,
    every class is explained before a batch of constant maps counts as a failure.
    """
    assert exp.maps.shape == x.shape[:-1] and exp.maps.dtype == np.float32
    assert np.all(np.isfinite(exp.maps))
    assert exp.maps.min() >= 0.0 and exp.maps.max() <= 1.0
    spread = _spread(exp.maps)
    if spread <= 1e-3 and explainer is not None:
        spread = max(_spread(explainer.explain(x, targets=k).maps) for k in range(len(exp.class_names)))
    assert spread > 1e-3, f"{exp.method}: every map is constant"
    # K float32 quotients of one float32 sum: each off by its rounding and the sum's, 2 K eps at most
    k = exp.probabilities.shape[1]
    np.testing.assert_allclose(exp.probabilities.sum(axis=1) if exp.head != "sigmoid" else 1.0, 1.0, atol=2 * k * EPS32)
