"""Benchmark: train and evaluate a registered model on a real MRI folder, with timings and Grad-CAM figures.

Uses only neuroxai's public API (Dataset, Trainer, load, Explainer). Writes the
Trainer's run directory (model.keras, neuroxai.json, metrics.json with "test"
and "test_dedup", history.csv, confusion_matrix.png, training_curves.png) plus
``gradcam_correct.png``, ``gradcam_wrong.png`` and ``results.json``; with
``--results DIR`` it copies the small artefacts (JSON and PNG, never the model)
there for the documentation.

Example (the CNN figures in docs/results.rst)::

    python benchmarks/real_data.py --data ../shared/data/brain-tumor-mri --model cnn \\
        --epochs 30 --reduce-lr-patience 4 --early-stopping-patience 8 \\
        --out /tmp/real-runs/cnn --results docs/results/cnn

Model selection uses the validation split carved from Training only; the test
split is evaluated once, after training.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any

SMALL_ARTEFACTS = (
    "results.json",
    "metrics.json",
    "history.csv",
    "confusion_matrix.png",
    "training_curves.png",
    "gradcam_correct.png",
    "gradcam_wrong.png",
)


def _weights(value: str) -> str | None:
    return None if value.lower() in {"none", "random", "null"} else value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from neuroxai.training import LR_SCHEDULES  # light: TensorFlow loads later

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--data",
        default=os.environ.get("NEUROXAI_DATA"),
        metavar="DIR",
        help="Training/Testing data folder (default: $NEUROXAI_DATA)",
    )
    p.add_argument("--model", default="cnn", help="registered model name: cnn, efficientnetb0, or a plugin's (default: cnn)")
    p.add_argument("--epochs", type=int, default=30, help="total epochs, both phases for transfer models (default: 30)")
    p.add_argument("--image-size", type=int, default=None, metavar="PX", help="square input size (default: the model's)")
    p.add_argument("--batch-size", type=int, default=32, help="batch size (default: 32)")
    p.add_argument("--learning-rate", type=float, default=1e-3, help="learning rate (phase 1 for transfer models; default 1e-3)")
    p.add_argument(
        "--weights",
        type=_weights,
        default=argparse.SUPPRESS,
        metavar="W",
        help="efficientnetb0 backbone weights: imagenet, none, or a local .h5 file",
    )
    p.add_argument(
        "--two-phase",
        choices=("auto", "yes", "no"),
        default="auto",
        help="two-phase transfer training: auto follows the model spec (default)",
    )
    p.add_argument("--early-stopping-patience", type=int, default=None, metavar="N", help="0 disables (default: the Trainer's)")
    p.add_argument(
        "--lr-schedule",
        choices=LR_SCHEDULES,
        default="plateau",
        help="learning-rate schedule within each phase (default: plateau)",
    )
    p.add_argument(
        "--reduce-lr-patience",
        type=int,
        default=None,
        metavar="N",
        help="epochs without a better validation loss before halving the learning rate; 0 disables (default: the Trainer's)",
    )
    p.add_argument("--seed", type=int, default=1337, help="seed of split, weights, shuffling, augmentation (default: 1337)")
    p.add_argument("--val-fraction", type=float, default=0.15, help="validation fraction carved from Training (default: 0.15)")
    p.add_argument("--per-class", type=int, default=2, metavar="N", help="Grad-CAM examples per class and figure (default: 2)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory to write (outside the repository)")
    p.add_argument("--results", default=None, metavar="DIR", help="copy the small JSON/PNG artefacts here")
    args = p.parse_args(argv)
    if not args.data:
        p.error("no data folder: pass --data DIR or set NEUROXAI_DATA")
    return args


def log(msg: str, t0: float) -> None:
    print(f"[{time.perf_counter() - t0:7.1f}s] {msg}", flush=True)


def pick(y: Any, pred: Any, n_classes: int, per_class: int, correct: bool) -> list[int]:
    """Up to ``per_class`` test indices per true class, correctly or wrongly classified (first in file order)."""
    import numpy as np

    chosen: list[int] = []
    for k in range(n_classes):
        hit = (y == k) & ((pred == y) if correct else (pred != y))
        chosen += [int(i) for i in np.flatnonzero(hit)[:per_class]]
    return chosen


def save_png_small(fig: Any, path: Path) -> None:
    """Save a figure as a 256-colour PNG (about a third of the bytes of a true-colour one; fine for overlays)."""
    import io

    import matplotlib.pyplot as plt
    from PIL import Image

    from neuroxai._io import write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    small = io.BytesIO()
    Image.open(buf).convert("RGB").quantize(colors=256).save(small, format="PNG", optimize=True)
    write_bytes(path, small.getvalue())


def gradcam_figures(predictor: Any, ds: Any, out: Path, per_class: int, t0: float) -> dict[str, Any]:
    """Predict the whole test split, then explain correct and wrong examples of every class."""

    from neuroxai import Explainer
    from neuroxai.runs import predict_array

    h, w, c = predictor.input_shape
    x, y = ds.arrays("test", image_size=(h, w), channels=c, input_range=predictor.input_range)
    pred = predict_array(predictor.model, x, 64).argmax(axis=1)
    explainer = Explainer(predictor, method="gradcam")
    info: dict[str, Any] = {"method": "gradcam", "layer": str(explainer.layer)}
    for name, correct in (("gradcam_correct", True), ("gradcam_wrong", False)):
        idx = pick(y, pred, len(predictor.class_names), per_class, correct)
        info[name] = {
            "test_indices": idx,
            "true": [predictor.class_names[int(y[i])] for i in idx],
            "predicted": [predictor.class_names[int(pred[i])] for i in idx],
        }
        if not idx:
            log(f"No {'correct' if correct else 'wrong'} test predictions: {name}.png not written", t0)
            continue
        t = time.perf_counter()
        explanation = explainer.explain(x[idx])
        info[name]["seconds"] = round(time.perf_counter() - t, 3)
        ncols = 4
        rows = -(-len(idx) // ncols)
        fig = explanation.plot(true_labels=y[idx], ncols=ncols, figsize=(2.4 * ncols, 2.7 * rows + 0.4))
        fig.suptitle(
            f"Grad-CAM @ {explainer.layer}: {'correctly' if correct else 'wrongly'} classified test images "
            f"(up to {per_class} per true class)",
            fontsize=10,
        )
        save_png_small(fig, out / f"{name}.png")
        log(f"Wrote {out / (name + '.png')} ({len(idx)} images)", t0)
    return info


def summarise(m: Any) -> dict[str, Any] | None:
    """The headline numbers of a ClassificationMetrics record (None stays None)."""
    if m is None:
        return None
    full = m.to_dict()
    return {k: full[k] for k in ("n", "accuracy", "ece", "ece_bins", "roc_auc", "per_class", "confusion_matrix")}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    import keras
    import tensorflow as tf

    import neuroxai
    from neuroxai import Dataset, Trainer
    from neuroxai._io import write_json

    out = Path(args.out)
    log(
        f"neuroxai {neuroxai.__version__}, TensorFlow {tf.__version__}, Keras {keras.__version__}; "
        f"{os.cpu_count()} CPU(s), GPUs: {len(tf.config.list_physical_devices('GPU'))}",
        t0,
    )
    log(f"Reading {args.data}", t0)
    ds = Dataset(args.data, val_fraction=args.val_fraction, seed=args.seed, progress=False)
    counts = ds.counts()
    log(
        "Splits: "
        + ", ".join(f"{s} {sum(c.values())}" for s, c in counts.items())
        + f"; de-duplicated test {len(ds.labels('test', dedup=True))}; skipped files {len(ds.skipped)}",
        t0,
    )

    options: dict[str, Any] = {}
    if hasattr(args, "weights"):
        options["weights"] = args.weights
    two_phase = {"auto": None, "yes": True, "no": False}[args.two_phase]
    patience = {
        name: getattr(args, name) or None
        for name in ("early_stopping_patience", "reduce_lr_patience")
        if getattr(args, name) is not None
    }  # unset: the Trainer's defaults; 0: off
    trainer = Trainer(
        args.model,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        image_size=args.image_size,
        two_phase=two_phase,
        progress=True,
        model_options=options or None,
        lr_schedule=args.lr_schedule,
        **patience,
    )
    log(f"Training {trainer!r} (image size {args.image_size or 'model default'}, options {options}) -> {out}", t0)
    t_fit = time.perf_counter()
    trainer.fit(ds, out_dir=out)  # trains, evaluates on test (plain + de-duplicated), writes the run directory
    fit_seconds = time.perf_counter() - t_fit
    epochs_run = trainer.epochs_trained_
    n_train = len(ds.labels("train"))
    images_per_s = n_train * epochs_run / fit_seconds if fit_seconds > 0 else None
    log(
        f"Trained {epochs_run} epochs in {fit_seconds:.0f} s ({images_per_s:.1f} training images/s, "
        "including per-epoch validation, checkpoints and the final test evaluation)",
        t0,
    )

    predictor = neuroxai.load(out)  # the saved run, exactly as a user gets it back
    gradcam = gradcam_figures(predictor, ds, out, args.per_class, t0)

    metrics = trainer.metrics_
    results = {
        "command": " ".join(shlex.quote(a) for a in [sys.executable.split("/")[-1], *sys.argv]),
        "model": trainer.spec_.name,
        "seed": args.seed,
        "settings": {
            "epochs": args.epochs,
            "epochs_run": epochs_run,
            "image_size": list(predictor.input_shape),
            "batch_size": args.batch_size,
            "learning_rate": args.learning_rate,
            "model_options": options,
            "two_phase": args.two_phase,
            "early_stopping_patience": trainer.early_stopping_patience,
            "reduce_lr_patience": trainer.reduce_lr_patience,
            "lr_schedule": args.lr_schedule,
            "val_fraction": args.val_fraction,
            "phases": [p.to_dict() for p in trainer.phases_],
            "params": int(predictor.model.count_params()),
        },
        "data": {
            "source": str(args.data),
            "counts": counts,
            "test_dedup_n": len(ds.labels("test", dedup=True)),
            "skipped_files": [f"{s.path}: {s.reason}" for s in ds.skipped],
        },
        "train_seconds": round(fit_seconds, 1),
        "train_images_per_second": None if images_per_s is None else round(images_per_s, 2),
        "train_timing_note": "wall clock of Trainer.fit: training epochs, validation after each epoch, checkpoints, "
        "final test evaluation and saving; images/s = training images x epochs / that time",
        "machine": {"cpus": os.cpu_count(), "gpus": len(tf.config.list_physical_devices("GPU"))},
        "test": summarise(metrics.metrics),
        "test_dedup": summarise(metrics.dedup),
        "removed_duplicates": metrics.removed_duplicates,
        "gradcam": gradcam,
        "versions": {"neuroxai": neuroxai.__version__, "tensorflow": tf.__version__, "keras": keras.__version__},
    }
    write_json(out / "results.json", results)
    if args.results:
        dest = Path(args.results)
        dest.mkdir(parents=True, exist_ok=True)
        for name in SMALL_ARTEFACTS:
            if (out / name).is_file():
                shutil.copyfile(out / name, dest / name)
        log(f"Copied the small artefacts to {dest}", t0)

    print(f"\n{trainer.spec_.name}: {epochs_run} epochs in {fit_seconds / 60:.1f} min ({images_per_s:.1f} images/s)")
    for key, m in (("test", metrics.metrics), ("test_dedup", metrics.dedup)):
        if m is not None:
            print(f"  {key:<10} n={m.n:<5} accuracy={m.accuracy:.4f}  ECE={m.ece:.4f}")
    for r in metrics.metrics.per_class:
        print(f"  {r.name:<11} P={r.precision:.3f} R={r.recall:.3f} F1={r.f1:.3f} (n={r.support})")
    print(f"Run directory: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
