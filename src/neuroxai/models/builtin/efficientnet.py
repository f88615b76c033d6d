"""The built-in ``efficientnetb0``: an ImageNet EfficientNetB0 backbone with a new head.

The backbone is ``keras.applications.EfficientNetB0(include_top=False)`` built
on this model's own input tensor, so the whole network is **one flat
functional graph**: every backbone layer (``block6a_expand_conv`` ...
``top_activation``) is a layer of the returned model and reachable for
explanations. Head::

    top_activation (7x7x1280 at 224 px) -> GlobalAveragePooling2D "head_pool"
      -> Dense "head_dense" (ReLU) -> Dropout "head_dropout"
      -> Dense "logits" -> Activation softmax "probabilities"

Pixels are expected in **0..255**: EfficientNet rescales and normalises inside
the graph, so dividing by 255 first would silently hurt it. The backbone wants
three channels; a grayscale ``input_shape`` (``C == 1``) gets a layer named
``"grayscale_to_rgb"`` (a frozen 1x1 ``Conv2D`` with weights of one) that
tiles the channel three times inside the model. It is a built-in Keras layer,
so the saved model loads with ``safe_mode=True``, and it rejects a 3-channel
image with a clear error.

Pretrained weights (``"imagenet"`` or a local file) are loaded into a
standalone backbone and copied into this graph; Keras' extra ImageNet
rescaling after the ``Normalization`` layer is folded into its variance, so
the model computes exactly what ``EfficientNetB0(weights="imagenet")`` does.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from neuroxai.errors import ModelError
from neuroxai.models._registry import is_structure_only
from neuroxai.models._spec import TransferSpec

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = [
    "DEFAULT_INPUT_SHAPE",
    "GRAYSCALE_LAYER",
    "HEAD_LAYERS",
    "TARGET_LAYER",
    "TRANSFER",
    "build_efficientnetb0",
    "is_backbone",
    "unfreeze",
]

#: Default input: the 224x224 RGB size EfficientNetB0 was trained at.
DEFAULT_INPUT_SHAPE: tuple[int, int, int] = (224, 224, 3)
#: The last convolutional feature map.
TARGET_LAYER = "top_activation"
#: Name of the layer that tiles a grayscale input to RGB (only with 1 channel).
GRAYSCALE_LAYER = "grayscale_to_rgb"
#: Layers added on top of the backbone (everything else is backbone).
HEAD_LAYERS: frozenset[str] = frozenset({"head_pool", "head_dense", "head_dropout", "logits", "probabilities"})
_UNFROZEN_PREFIXES = ("block6", "block7", "top_")

# Keras' ImageNet file stores these normalisation statistics; with
# weights="imagenet" Keras adds an extra per-channel rescaling after the
# Normalization layer (tensorflow/tensorflow#49930). A local copy of that file
# must behave the same, so the rescaling is folded into the variance.
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STDDEV = (0.229, 0.224, 0.225)


def is_backbone(name: str) -> bool:
    """True for every layer of the pretrained backbone (frozen in phase 1), and ``grayscale_to_rgb``."""
    return name not in HEAD_LAYERS


def unfreeze(name: str) -> bool:
    """True for the backbone layers trained in phase 2: blocks 6 and 7 and the top conv."""
    return name != GRAYSCALE_LAYER and name.startswith(_UNFROZEN_PREFIXES)


#: Two-phase recipe: phase 1 trains the head on a frozen backbone; phase 2
#: also trains ``block6*``, ``block7*`` and ``top_*`` at 0.1x the learning
#: rate. BatchNormalization layers stay frozen in both phases (the trainer
#: enforces it).
TRANSFER = TransferSpec(is_backbone=is_backbone, unfreeze=unfreeze, fine_tune_lr_factor=0.1, head_epochs_fraction=0.3)


def build_efficientnetb0(
    *,
    num_classes: int,
    input_shape: tuple[int, int, int] = DEFAULT_INPUT_SHAPE,
    weights: str | os.PathLike[str] | None = "imagenet",
    dense_units: int = 256,
    dropout: float = 0.3,
) -> keras.Model:
    """Build EfficientNetB0 with a classification head (uncompiled).

    Args:
        num_classes: Number of output classes.
        input_shape: ``(height, width, channels)`` with channels 1 (tiled to
            RGB inside the model) or 3; at least 32x32. Pixels in 0..255.
        weights: ``"imagenet"`` (Keras downloads and caches the file, which
            needs a network the first time), ``None`` (random initialisation)
            or the path to a local weights file for the backbone: Keras'
            ``efficientnetb0_notop.h5`` or a ``.weights.h5`` file saved with
            ``save_weights`` from ``keras.applications.EfficientNetB0(
            include_top=False, weights=None)``.
        dense_units: Width of the hidden dense layer of the head.
        dropout: Dropout rate before the logits, in [0, 1).

    Returns:
        A flat functional ``keras.Model`` named ``"efficientnetb0"``.

    Raises:
        ModelError: Unsupported channel count or size, a weights path that
            does not exist or does not fit the backbone, or bad head options.

    Example:
        >>> model = build_efficientnetb0(num_classes=4, input_shape=(224, 224, 1), weights=None)
        >>> model.get_layer("top_activation").output.shape
        (None, 7, 7, 1280)
    """
    import keras
    from keras import layers

    height, width, channels = input_shape
    if channels not in (1, 3):
        raise ModelError(
            f"Model 'efficientnetb0': expected 1 (grayscale, tiled to RGB) or 3 channels, got input_shape {tuple(input_shape)}."
        )
    if height < 32 or width < 32:
        raise ModelError(f"Model 'efficientnetb0': expected an input of at least 32x32 pixels, got {height}x{width}.")
    if not 0.0 <= dropout < 1.0:
        raise ModelError(f"Model 'efficientnetb0': expected dropout in [0, 1), got {dropout!r}.")
    if int(dense_units) < 1:
        raise ModelError(f"Model 'efficientnetb0': expected dense_units >= 1, got {dense_units!r}.")

    weights_path: Path | None = None
    if weights is not None and not (isinstance(weights, str) and weights == "imagenet"):
        weights_path = Path(os.fspath(weights)).expanduser()
        if not weights_path.is_file():
            raise ModelError(
                f"Model 'efficientnetb0': weights file '{weights_path}' does not exist. "
                "Pass weights='imagenet', weights=None, or the path of an existing weights file "
                "(e.g. ~/.keras/models/efficientnetb0_notop.h5)."
            )
    keras_weights = "imagenet" if weights_path is None and weights is not None else None
    if keras_weights and is_structure_only():
        keras_weights = None  # only the architecture is wanted: never download

    inputs = keras.Input(shape=(height, width, channels), name="image")
    x = inputs
    if channels == 1:
        # A fixed 1x1 convolution with weights of one copies the channel three
        # times; unlike a bare Concatenate it rejects 3-channel input with a
        # clear "expected axis -1 ... to have value 1" error naming this layer.
        x = layers.Conv2D(3, 1, use_bias=False, kernel_initializer="ones", trainable=False, name=GRAYSCALE_LAYER)(x)
    # Our graph is always built without weights (so it is flat and identical
    # in every case); pretrained weights are loaded into a standalone backbone
    # and copied over layer by layer.
    backbone = keras.applications.EfficientNetB0(include_top=False, weights=None, input_tensor=x)
    if keras_weights is not None or weights_path is not None:
        _copy_pretrained(backbone, (height, width), keras_weights, weights_path)

    x = layers.GlobalAveragePooling2D(name="head_pool")(backbone.output)
    x = layers.Dense(int(dense_units), activation="relu", name="head_dense")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Activation("softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="efficientnetb0")


def _copy_pretrained(backbone: keras.Model, size: tuple[int, int], keras_weights: str | None, path: Path | None) -> None:
    """Load weights into a standalone RGB backbone, then copy them into ``backbone``."""
    import keras
    import numpy as np

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            source = keras.applications.EfficientNetB0(
                include_top=False, weights=keras_weights if path is None else str(path), input_shape=(*size, 3)
            )
        partial = [
            str(w.message) for w in caught if "skipping" in str(w.message).lower() or "not loaded" in str(w.message).lower()
        ]
        if partial:
            raise ValueError(f"{len(partial)} parts of the backbone were not in the file, e.g.: {partial[0]}")
    except Exception as exc:
        if path is not None:
            raise ModelError(
                f"Model 'efficientnetb0': weights file '{path}' does not fit an EfficientNetB0 backbone "
                f"(include_top=False): {type(exc).__name__}: {exc}. Save it from "
                "keras.applications.EfficientNetB0(include_top=False, weights=None).save_weights('x.weights.h5') "
                "or use Keras' efficientnetb0_notop.h5."
            ) from exc
        raise ModelError(
            f"Model 'efficientnetb0': could not get the ImageNet weights: {type(exc).__name__}: {exc}. "
            "Without a network, pass weights=None or the path of a local copy of efficientnetb0_notop.h5."
        ) from exc
    src = [layer for layer in source.layers if layer.weights]
    dst = [layer for layer in backbone.layers if layer.weights and layer.name != GRAYSCALE_LAYER]
    if len(src) != len(dst) or any(type(a) is not type(b) for a, b in zip(src, dst)):  # pragma: no cover - same architecture
        raise ModelError("Model 'efficientnetb0': internal error: pretrained backbone layers do not match the model's.")
    for a, b in zip(src, dst):
        b.set_weights(a.get_weights())
    norm = next(layer for layer in dst if isinstance(layer, keras.layers.Normalization))
    mean = np.asarray(norm.adapt_mean).reshape(-1)
    variance = np.asarray(norm.adapt_variance).reshape(-1)
    stddev = np.asarray(_IMAGENET_STDDEV)
    imagenet_stats = (
        mean.shape == (3,) and np.allclose(mean, _IMAGENET_MEAN, atol=1e-3) and np.allclose(variance, stddev**2, rtol=1e-3)
    )
    if keras_weights == "imagenet" or imagenet_stats:
        # Keras adds Rescaling(1/sqrt(stddev)) after Normalization for ImageNet
        # weights; dividing by sqrt(var * stddev) instead is the same function.
        norm.adapt_variance.assign((variance * stddev).reshape(tuple(norm.adapt_variance.shape)).astype("float32"))
    norm.finalize_state()  # Normalization caches mean/variance tensors; refresh them
    del source
