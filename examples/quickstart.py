"""Quickstart: train, evaluate and explain the built-in CNN on synthetic phantoms.

Run:  python examples/quickstart.py            (about a minute on a laptop CPU)
The phantoms are drawn pictures with known tumour masks, NOT medical data.
"""

import argparse

import neuroxai
from neuroxai.data import phantoms

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--n-per-class", type=int, default=120)
parser.add_argument("--image-size", type=int, default=64)
parser.add_argument("--epochs", type=int, default=12)
parser.add_argument("--out", default="runs/quickstart")
args = parser.parse_args()

# 1. Data: four classes with tumour masks, split into train / val / test.
data = phantoms(n_per_class=args.n_per_class, image_size=args.image_size, seed=0)

# 2. Train the registry's "cnn" at the phantoms' size; the run directory gets
#    model.keras, neuroxai.json, metrics.json, history.csv and figures.
trainer = neuroxai.Trainer("cnn", image_size=args.image_size, epochs=args.epochs, progress=False)
trainer.fit(data, out_dir=args.out)
print("test accuracy:", trainer.evaluate(data).metrics.accuracy)

# 3. Load the run like a user would (safe mode: the file cannot run code) and
#    prepare test images exactly as the model expects them.
model = neuroxai.load(args.out)
h, w, c = model.input_shape
x, y = data.arrays("test", image_size=(h, w), channels=c, input_range=model.input_range)

# 4. Explain: one compiled call for the whole batch; maps are [N, H, W] in [0, 1].
explanation = neuroxai.Explainer(model, method="gradcam").explain(x[:8])
print("predicted:", explanation.predicted_names)
print("written:", [str(p) for p in explanation.save(f"{args.out}/explanations")][:2], "...")
