"""Measure explanations instead of only looking at them: localization against tumour
masks, deletion/insertion faithfulness and the model-randomization sanity check.

Run:  python examples/evaluate_explanations.py
"""

import argparse

import neuroxai
from neuroxai.data import phantoms
from neuroxai.evaluation import evaluate_explanations

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--n-per-class", type=int, default=120)
parser.add_argument("--image-size", type=int, default=64)
parser.add_argument("--epochs", type=int, default=12)
parser.add_argument("--methods", nargs="+", default=["gradcam", "gradcam++", "saliency"])
parser.add_argument("--out", default="runs/xai")
args = parser.parse_args()

# Phantoms come with masks; a real folder with <stem>_mask.png files works the same way.
data = phantoms(n_per_class=args.n_per_class, image_size=args.image_size, seed=0)
trainer = neuroxai.Trainer("cnn", image_size=args.image_size, epochs=args.epochs, progress=False).fit(data)
predictor = trainer.to_predictor()

h, w, c = predictor.input_shape
x, y, masks = data.arrays("test", image_size=(h, w), channels=c, input_range=predictor.input_range, with_masks=True)

# Every method is scored on the same images; uniform and centre-prior maps and a random
# map are measured beside them, so each number has a reference that needs no model.
report = evaluate_explanations(predictor, x, masks, y, args.methods, n_sanity=8)
print(report.format())
print("written:", [str(p) for p in report.save(args.out)])
