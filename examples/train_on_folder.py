"""Train on your own folder: the Kaggle "Brain Tumor MRI Dataset" layout, a folder of
class folders, or a CSV manifest (path,label[,split][,mask]).

Run:  python examples/train_on_folder.py path/to/brain-tumor-mri --model cnn --epochs 30
"""

import argparse
import json

import neuroxai

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("data", help="data folder or CSV manifest")
parser.add_argument("--model", default="cnn", help="a registered model name (see `neuroxai models`)")
parser.add_argument("--epochs", type=int, default=30)
parser.add_argument("--image-size", type=int, default=None, help="default: the model's own input size")
parser.add_argument("--out", default="runs/folder")
args = parser.parse_args()

# Read and validate every file once; stray files are skipped and listed, never counted.
data = neuroxai.Dataset(args.data, seed=1337)
print(data)
for skipped in data.skipped[:10]:
    print("skipped:", skipped.path, "->", skipped.reason)

# The audit finds test images that duplicate training images (the Kaggle set has
# 216 byte-identical ones): report a de-duplicated test accuracy beside the plain one.
report = data.audit()
print(report.format())

trainer = neuroxai.Trainer(args.model, epochs=args.epochs, image_size=args.image_size, seed=1337)
trainer.fit(data, out_dir=args.out)  # resumable: run the same command again after an interruption
evaluation = trainer.metrics_  # an EvaluationReport: the plain test set and, where it differs, the de-duplicated one
for split, m in (("test", evaluation.metrics), ("test_dedup", evaluation.dedup)):
    if m is not None:
        print(split, json.dumps({"n": m.n, "accuracy": m.accuracy, "ece": m.ece}))
print(f"model, metrics and figures in {args.out}/")
