"""Quickstart: train the built-in CNN on synthetic phantoms, then measure where its Grad-CAM maps point.

Run:  python examples/quickstart.py            (about a minute on 2 CPU cores)
The phantoms are drawn pictures with known tumour masks, NOT medical data. This is the README's "Ten lines",
commented.
"""

import argparse

import neuroxai
from neuroxai.data import phantoms
from neuroxai.evaluation import evaluate_explanations

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--n-per-class", type=int, default=200)
parser.add_argument("--image-size", type=int, default=64)
parser.add_argument("--epochs", type=int, default=16)
parser.add_argument("--out", default="runs/cnn")
args = parser.parse_args()
size = args.image_size

# 1. Data: four classes with tumour masks, split into train / val / test (seeded).
data = phantoms(n_per_class=args.n_per_class, image_size=size, seed=0)

# 2. Train the registry's "cnn" at the phantoms' size. guidance="cam" adds a loss that keeps the model's
#    class-activation map inside each training image's tumour mask (notumor images: cross-entropy only), and
#    feature_stride=8 gives the cnn a last feature map fine enough (8x8 at 64 px) for the small phantom tumours;
#    the cosine schedule lets the rate fall to zero over the 16 epochs, so the run ends settled, not mid-step.
#    The run directory gets model.keras, neuroxai.json, metrics.json, history.csv and figures.
trainer = neuroxai.Trainer(
    "cnn",
    image_size=size,
    epochs=args.epochs,
    batch_size=16,
    learning_rate=2e-3,
    lr_schedule="cosine",
    guidance="cam",
    model_options={"feature_stride": 8},
    progress=False,
)
trainer.fit(data, out_dir=args.out)

# 3. Load the run like a user would (safe mode: the file cannot run code) and read the test split at the
#    model's input, with the masks.
model = neuroxai.load(args.out)
x, y, masks = data.arrays("test", image_size=(size, size), channels=1, with_masks=True)

# 4. Measure: does Grad-CAM's peak fall on the tumour (pointing game), and how often does a fixed blob in the
#    image centre manage the same (the reference a map must beat)?
report = evaluate_explanations(model, x, masks, y, "gradcam", metrics=["localization"])
where = report.localization["gradcam"].overall
print(
    f"test accuracy {trainer.evaluate(data).metrics.accuracy:.3f}, Grad-CAM pointing game "
    f"{where.method.pointing_game:.2f} (centre prior {where.center_prior.pointing_game:.2f})"
)

# 5. Explain: one compiled call for the whole batch; maps are [N, H, W] in [0, 1]; one overlay PNG per image.
explanation = neuroxai.Explainer(model, method="gradcam").explain(x[:8])
print("predicted:", explanation.predicted_names)
print("written:", [str(p) for p in explanation.save(f"{args.out}/explanations")][:2], "...")
