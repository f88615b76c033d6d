"""Transformer and 3-D models built from Keras layers for the explanation tests (tiny: 32 px images, 16^3 volumes).

- :func:`vit`: a ViT (patch-embedding ``Conv2D`` -> ``Reshape`` to tokens -> pre-norm attention blocks ->
  a class-token head (``x[:, 0]``) or a pooled head (``GlobalAveragePooling1D``));
- :func:`swin`: a Swin-style model: window attention (``MultiHeadAttention`` over the tokens of each window,
  ``attention_axes=(2,)`` on ``(batch, windows, tokens, channels)``), shifted windows (a cyclic roll written
  with ``Cropping2D`` and ``Concatenate``), patch merging between stages, a pooled head;
- :func:`nested_vit`: the class-token ViT's encoder as ONE layer under a head (saved and reloaded by the tests);
- :func:`cnn3d`: a small ``Conv3D`` classifier of volumes ``(batch, depth, height, width, channels)``.

Two custom layers (a learned class token, learned position embeddings) are registered as serializable, as a
ViT's author would, so the models load in Keras safe mode wherever this module is imported. Nothing here
imports a backend at module level beyond ``keras`` itself (the cross-backend workers set ``KERAS_BACKEND``
before importing this module).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import layers, ops

SIZE = 32
VOLUME = 16
NUM_CLASSES = 3
DIM = 16


@keras.saving.register_keras_serializable(package="neuroxai_tests")
class ClassToken(layers.Layer):
    """A learned class token put in front of the patch tokens."""

    def build(self, input_shape: Any) -> None:
        self.token = self.add_weight(shape=(1, 1, input_shape[-1]), initializer="random_normal", name="token")

    def call(self, x: Any) -> Any:
        token = ops.broadcast_to(ops.cast(self.token, x.dtype), (ops.shape(x)[0], 1, ops.shape(x)[-1]))
        return ops.concatenate([token, x], axis=1)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (input_shape[0], None if input_shape[1] is None else input_shape[1] + 1, input_shape[2])


@keras.saving.register_keras_serializable(package="neuroxai_tests")
class PositionEmbedding(layers.Layer):
    """Learned position embeddings added to the tokens."""

    def build(self, input_shape: Any) -> None:
        self.position = self.add_weight(shape=(1, input_shape[1], input_shape[2]), initializer="random_normal", name="position")

    def call(self, x: Any) -> Any:
        return x + ops.cast(self.position, x.dtype)


def _mlp(x: Any, prefix: str, dim: int) -> Any:
    y = layers.LayerNormalization(epsilon=1e-6, name=f"{prefix}_norm2")(x)
    y = layers.Dense(2 * dim, activation="gelu", name=f"{prefix}_mlp1")(y)
    y = layers.Dense(dim, name=f"{prefix}_mlp2")(y)
    return layers.Add(name=f"{prefix}_add2")([x, y])


def vit_encoder(inputs: Any, class_token: bool, depth: int = 2, patch: int = 8) -> Any:
    """The ViT's layers from the image to the encoder's normalized tokens."""
    x = layers.Conv2D(DIM, patch, strides=patch, name="patch_embed")(inputs)
    grid = (SIZE // patch) ** 2
    x = layers.Reshape((grid, DIM), name="to_tokens")(x)
    if class_token:
        x = ClassToken(name="cls_token")(x)
    x = PositionEmbedding(name="pos_embed")(x)
    for i in range(depth):
        y = layers.LayerNormalization(epsilon=1e-6, name=f"block{i}_norm1")(x)
        y = layers.MultiHeadAttention(2, DIM // 2, name=f"block{i}_attn")(y, y)
        x = layers.Add(name=f"block{i}_add1")([x, y])
        x = _mlp(x, f"block{i}", DIM)
    return layers.LayerNormalization(epsilon=1e-6, name="encoder_norm")(x)


def vit(class_token: bool = True, seed: int = 11) -> Any:
    """A tiny ViT on 32 px RGB images: 8 px patches (a 4 x 4 grid), two blocks, three classes."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = vit_encoder(inputs, class_token)
    pooled = x[:, 0] if class_token else layers.GlobalAveragePooling1D(name="pool")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="head")(pooled)
    return keras.Model(inputs, outputs, name="vit_cls" if class_token else "vit_gap")


def nested_vit(seed: int = 12) -> Any:
    """The class-token ViT's encoder as one nested layer (``vit_backbone``) under the class-token head."""
    keras.utils.set_random_seed(seed)
    b_in = keras.Input((SIZE, SIZE, 3))
    backbone = keras.Model(b_in, vit_encoder(b_in, class_token=True), name="vit_backbone")
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    pooled = backbone(inputs)[:, 0]
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="head")(pooled)
    return keras.Model(inputs, outputs, name="nested_vit")


def _roll(x: Any, shift: int, side: int, name: str) -> Any:
    """A cyclic roll of ``(batch, side, side, C)`` by ``shift`` on both spatial axes, from Keras layers only."""
    if shift % side == 0:
        return x
    s = shift % side
    top = layers.Cropping2D(((s, 0), (0, 0)), name=f"{name}_rows_tail")(x)
    bottom = layers.Cropping2D(((0, side - s), (0, 0)), name=f"{name}_rows_head")(x)
    x = layers.Concatenate(axis=1, name=f"{name}_rows")([top, bottom])
    left = layers.Cropping2D(((0, 0), (s, 0)), name=f"{name}_cols_tail")(x)
    right = layers.Cropping2D(((0, 0), (0, side - s)), name=f"{name}_cols_head")(x)
    return layers.Concatenate(axis=2, name=f"{name}_cols")([left, right])


def _swin_block(x: Any, side: int, dim: int, window: int, shift: int, prefix: str) -> Any:
    n = side // window
    y = layers.LayerNormalization(epsilon=1e-6, name=f"{prefix}_norm1")(x)
    y = layers.Reshape((side, side, dim), name=f"{prefix}_to_grid")(y)
    y = _roll(y, shift, side, f"{prefix}_shift")
    y = layers.Reshape((n, window, n, window, dim), name=f"{prefix}_split")(y)
    y = layers.Permute((1, 3, 2, 4, 5), name=f"{prefix}_windows_first")(y)
    y = layers.Reshape((n * n, window * window, dim), name=f"{prefix}_windows")(y)  # (batch, windows, tokens, C)
    y = layers.MultiHeadAttention(2, dim // 2, attention_axes=(2,), name=f"{prefix}_attn")(y, y)
    y = layers.Reshape((n, n, window, window, dim), name=f"{prefix}_unsplit")(y)
    y = layers.Permute((1, 3, 2, 4, 5), name=f"{prefix}_rows_first")(y)
    y = layers.Reshape((side, side, dim), name=f"{prefix}_from_windows")(y)
    y = _roll(y, -shift, side, f"{prefix}_unshift")
    y = layers.Reshape((side * side, dim), name=f"{prefix}_to_tokens")(y)
    x = layers.Add(name=f"{prefix}_add1")([x, y])
    return _mlp(x, prefix, dim)


def swin(seed: int = 13) -> Any:
    """A tiny Swin-style model: 4 px patches (8 x 8 tokens), 4 x 4 windows, a shifted block, patch merging."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = layers.Conv2D(DIM, 4, strides=4, name="patch_embed")(inputs)  # 8 x 8
    x = layers.Reshape((64, DIM), name="to_tokens")(x)
    x = _swin_block(x, 8, DIM, 4, 0, "stage1_block0")
    x = _swin_block(x, 8, DIM, 4, 2, "stage1_block1")  # shifted windows
    x = layers.Reshape((4, 2, 4, 2, DIM), name="merge_split")(x)  # patch merging: 2 x 2 neighbours -> channels
    x = layers.Permute((1, 3, 2, 4, 5), name="merge_permute")(x)
    x = layers.Reshape((16, 4 * DIM), name="merge_tokens")(x)
    x = layers.LayerNormalization(epsilon=1e-6, name="merge_norm")(x)
    x = layers.Dense(2 * DIM, name="merge_reduce")(x)  # 4 x 4 tokens of 2 DIM
    x = _swin_block(x, 4, 2 * DIM, 4, 0, "stage2_block0")
    x = layers.LayerNormalization(epsilon=1e-6, name="final_norm")(x)
    pooled = layers.GlobalAveragePooling1D(name="pool")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="head")(pooled)
    return keras.Model(inputs, outputs, name="swin_tiny")


def cnn3d(seed: int = 14, size: int = VOLUME, width: int = 8) -> Any:
    """A small Conv3D classifier of one-channel volumes ``(batch, size, size, size, 1)``."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, size, 1), name="volume")
    x = layers.Conv3D(width // 2, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = layers.MaxPooling3D(2, name="pool1")(x)
    x = layers.Conv3D(width, 3, padding="same", activation="relu", name="conv2")(x)
    x = layers.GlobalAveragePooling3D(name="gap")(x)
    x = layers.Dense(NUM_CLASSES, name="logits")(x)
    outputs = layers.Activation("softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="cnn3d")


def token_images(n: int = 3, seed: int = 0) -> np.ndarray:
    """Images with structure (a bright square on noise), in [0, 1]."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, SIZE, SIZE, 3), dtype=np.float32) * 0.3
    for i in range(n):
        y0, x0 = rng.integers(0, SIZE - 10, size=2)
        x[i, y0 : y0 + 10, x0 : x0 + 10] += 0.7
    return x


def volumes(n: int = 2, seed: int = 0, size: int = VOLUME) -> np.ndarray:
    """Volumes ``(n, size, size, size, 1)`` in [0, 1]: noise with a bright cube (the tumour); also its masks."""
    return volumes_and_masks(n, seed, size)[0]


def volumes_and_masks(n: int = 2, seed: int = 0, size: int = VOLUME) -> tuple[np.ndarray, np.ndarray]:
    """Volumes and their boolean cube masks ``(n, size, size, size)``."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, size, size, size, 1), dtype=np.float32) * 0.3
    masks = np.zeros((n, size, size, size), bool)
    side = size // 4
    for i in range(n):
        z0, y0, x0 = rng.integers(0, size - side, size=3)
        masks[i, z0 : z0 + side, y0 : y0 + side, x0 : x0 + side] = True
    x[masks] += 0.7
    return x, masks


#: The token and 3-D cases of the cross-backend zoo (tests/backends/test_zoo_backends.py): name -> (builder, images,
#: {label: (method, options, targets)}). Each code path once: Grad-CAM at a token layer with and without a class token,
#: through window attention, inside a nested backbone; both rollouts; a margin target (a callable on the output) through
#: gradients and through occlusion; Grad-CAM, input gradients and occlusion on a Conv3D model.
def _margin() -> Any:
    from neuroxai.explain import Margin

    return Margin(0, 2)


BACKEND_CASES: dict[str, tuple[Any, Any, dict[str, tuple[str, dict[str, Any], Any]]]] = {
    "vit_cls": (
        lambda: vit(class_token=True),
        lambda: token_images(2, seed=8),
        {
            "gradcam": ("gradcam", {}, None),
            "attention_rollout": ("attention_rollout", {}, None),
            "grad_rollout": ("grad_rollout", {}, None),
        },
    ),
    "vit_gap": (
        lambda: vit(class_token=False),
        lambda: token_images(2, seed=8),
        {
            "gradcam": ("gradcam", {}, None),
            "grad_rollout": ("grad_rollout", {}, None),
            "gradcam_margin": ("gradcam", {}, _margin),
        },
    ),
    "swin": (swin, lambda: token_images(2, seed=8), {"gradcam": ("gradcam", {}, None)}),
    "nested_vit": (nested_vit, lambda: token_images(2, seed=8), {"gradcam": ("gradcam", {}, None)}),
    "cnn3d": (
        cnn3d,
        lambda: volumes(2, seed=8),
        {
            "gradcam": ("gradcam", {}, None),
            "saliency": ("saliency", {}, None),
            "occlusion": ("occlusion", {"patch_size": 8, "stride": 8}, None),
            "occlusion_margin": ("occlusion", {"patch_size": 8, "stride": 8}, _margin),
        },
    ),
}


def explain_case(model: Any, x: np.ndarray, case: tuple[str, dict[str, Any], Any]) -> Any:
    """The explanation of one :data:`BACKEND_CASES` entry ``(method, options, targets factory or None)``."""
    from neuroxai.explain import Explainer

    method, options, targets = case
    return Explainer(model, method, **options).explain(x, targets=None if targets is None else targets())
