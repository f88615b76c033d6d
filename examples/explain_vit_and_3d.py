"""Explain a vision transformer and a 3-D network with the same Explainer.

Run:  python examples/explain_vit_and_3d.py        (seconds; needs neuroxai[medical] for the NIfTI part)

- A ViT built from Keras layers (patch-embedding Conv2D, tokens, attention blocks, a class-token head):
  Grad-CAM finds its token layer and puts the patch tokens on their grid, attention rollout follows the
  attention, and a margin target asks "why glioma rather than meningioma".
- A Conv3D classifier of volumes: Grad-CAM of a whole scan (a phantom NIfTI file, NOT medical data), written
  back as a NIfTI heatmap on the scan's own grid and affine.

The models have random weights here, to keep the example fast: put your trained models in their place.
"""

import argparse
from pathlib import Path

import keras
import nibabel as nib
import numpy as np
from keras import layers, ops

from neuroxai.data import read_volume
from neuroxai.explain import Explainer, Margin
from neuroxai.volumes import explain_volume_3d

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", default="runs/vit_and_3d")
args = parser.parse_args()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]
keras.utils.set_random_seed(0)


class ClassToken(layers.Layer):
    """A learned class token in front of the patch tokens (as in ViT)."""

    def build(self, input_shape):
        self.token = self.add_weight(shape=(1, 1, input_shape[-1]), initializer="random_normal")

    def call(self, x):
        return ops.concatenate([ops.broadcast_to(self.token, (ops.shape(x)[0], 1, ops.shape(x)[-1])), x], axis=1)


# 1. A small ViT: 32 px images, 8 px patches (a 4 x 4 grid of tokens), two pre-norm attention blocks.
inputs = keras.Input((32, 32, 3))
x = layers.Conv2D(16, 8, strides=8, name="patch_embed")(inputs)
x = ClassToken(name="cls_token")(layers.Reshape((16, 16), name="to_tokens")(x))
for i in range(2):
    y = layers.LayerNormalization(name=f"block{i}_norm1")(x)
    x = layers.Add()([x, layers.MultiHeadAttention(2, 8, name=f"block{i}_attn")(y, y)])
    y = layers.LayerNormalization(name=f"block{i}_norm2")(x)
    x = layers.Add()([x, layers.Dense(16)(layers.Dense(32, activation="gelu")(y))])
x = layers.LayerNormalization(name="encoder_norm")(x)
vit = keras.Model(inputs, layers.Dense(4, activation="softmax", name="head")(x[:, 0]), name="vit")
images = np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32)

# Grad-CAM at the token layer: found automatically (with a class-token head, the input of the last attention,
# whose patch tokens reach the class token), the class token dropped, the patch tokens put on their 4 x 4 grid.
explainer = Explainer(vit, "gradcam", class_names=CLASSES)
print(f"ViT: layer {explainer.layer}, {explainer.layout.describe()}")
explanation = explainer.explain(images)
print("predicted:", explanation.predicted_names)

# Attention rollout: how attention carries the patch tokens to the class token, through every block.
rollout = Explainer(vit, "attention_rollout", class_names=CLASSES).explain(images)
print("attention_rollout maps", rollout.maps.shape)

# A target beyond a class: the margin of two logits (any function of the output works).
margin = explainer.explain(images, targets=Margin("glioma", "meningioma"))
print("explained:", margin.target_names[0])
margin.save(out / "vit_margin")

# 2. A Conv3D classifier of 16^3 volumes, and a phantom scan: noise with a bright sphere, 24 x 40 x 40 voxels of
#    1 x 0.8 x 0.8 mm, in scanner-like units, with its affine.
volume_in = keras.Input((16, 16, 16, 1))
v = layers.Conv3D(4, 3, padding="same", activation="relu", name="conv1")(volume_in)
v = layers.Conv3D(8, 3, padding="same", activation="relu", name="conv2")(layers.MaxPooling3D(2)(v))
model3d = keras.Model(volume_in, layers.Dense(4, activation="softmax")(layers.GlobalAveragePooling3D()(v)), name="cnn3d")
zz, yy, xx = np.mgrid[0:24, 0:40, 0:40]
stack = 200.0 * np.random.default_rng(1).random((24, 40, 40)) + 800.0 * (((zz - 12) ** 2 + (yy - 14) ** 2 + (xx - 25) ** 2) < 30)
affine = np.diag([-0.8, -0.8, 1.0, 1.0])
scan = out / "scan.nii.gz"
nib.save(nib.Nifti1Image(np.ascontiguousarray(stack.transpose(2, 1, 0)).astype(np.float32), affine), scan)

# The scan is resized to the model's input (trilinear, antialiased), explained in one call, and the map resized
# back onto the scan's grid: the NIfTI heatmap overlays the scan in 3D Slicer, ITK-SNAP or FSLeyes.
explainer3d = Explainer(model3d, "gradcam", class_names=CLASSES, input_range=(0.0, 1.0))
result = explain_volume_3d(explainer3d, read_volume(scan))
print("3-D model: maps", result.explanation.maps.shape, "on the scan's grid", result.heatmap.shape, "peak at", result.peak())
files = result.save(out)
print("written:", files.heatmap, files.montage)
