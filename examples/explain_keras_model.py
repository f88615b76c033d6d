"""Explain a Keras model neuroxai did not build: here a backbone nested as one layer,
the pattern where the textbook Grad-CAM recipe fails with "Graph disconnected".

Run:  python examples/explain_keras_model.py [path/to/model.keras] [images ...]
Without arguments it builds and saves a small untrained model and explains random images.
"""

import argparse
from pathlib import Path

import keras
import numpy as np

from neuroxai import Explainer

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("model", nargs="?", help="a .keras file (loaded in safe mode)")
parser.add_argument("images", nargs="*", help="image files; default: random arrays")
parser.add_argument("--out", default="runs/third-party")
args = parser.parse_args()
out = Path(args.out)

if args.model is None:
    # Someone else's model: a small backbone used as a single layer inside a classifier.
    backbone = keras.Sequential(
        [keras.Input((64, 64, 3)), keras.layers.Conv2D(16, 3, activation="relu"), keras.layers.Conv2D(32, 3, activation="relu")],
        name="backbone",
    )
    inputs = keras.Input((64, 64, 3))
    features = backbone(inputs)
    logits = keras.layers.Dense(4, name="logits")(keras.layers.GlobalAveragePooling2D()(features))
    outputs = keras.layers.Activation("softmax")(logits)
    out.mkdir(parents=True, exist_ok=True)
    args.model = str(out / "third_party.keras")
    keras.Model(inputs, outputs).save(args.model)

# A path is loaded with Keras safe mode; the target layer inside the nested backbone is
# found automatically (or give a path through the nesting: target_layer=("backbone", "conv2d_1")).
explainer = Explainer(args.model, method="gradcam++", class_names=["glioma", "meningioma", "notumor", "pituitary"])
print("explaining layer:", explainer.layer, "| scores explained:", explainer.score_source)

if args.images:
    from neuroxai.data import load_images

    h, w, c = explainer.input_shape
    images, ok, skipped = load_images(args.images, image_size=(h, w), channels=c)
    for s in skipped:
        print("skipped:", s.path, "->", s.reason)
else:
    images = np.random.default_rng(0).random((4, *explainer.input_shape), dtype=np.float32)

explanation = explainer.explain(images)  # targets: the predicted class of each image
print(
    "maps:", explanation.maps.shape, explanation.maps.dtype, "in", (float(explanation.maps.min()), float(explanation.maps.max()))
)
explanation.save(out / "overlays")
print(f"overlays in {out / 'overlays'}/")
