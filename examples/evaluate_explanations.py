"""Measure explanations instead of only looking at them: localization against tumour
masks, deletion/insertion faithfulness, the model-randomization sanity check, and
(with no explainer at all) how much the model relies on the tumour.

Run:  python examples/evaluate_explanations.py
"""

import argparse

import neuroxai
from neuroxai.data import phantoms
from neuroxai.evaluation import Faithfulness, Sanity, TumourReliance, evaluate_explanations

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
# Each metric holds its own settings; names ("localization") use the defaults.
report = evaluate_explanations(
    predictor,
    x,
    masks,
    y,
    args.methods,
    metrics=["localization", Faithfulness(steps=20), Sanity(n_images=8), TumourReliance()],
)
print(report.format())

# Results are typed records: read attributes, not string keys.
for method, row in report.summary().items():
    print(f"{method}: pointing game {row.pointing_game:.3f} (centre prior {row.pointing_game_center_prior:.3f})")
if report.reliance is not None:
    print(f"tumour reliance ratio {report.reliance.ratio:.1f} (tumour drop / equal area elsewhere)")
print("written:", [str(p) for p in report.save(args.out)])
