"""``neuroxai train``, ``neuroxai evaluate`` and ``neuroxai predict``."""

from __future__ import annotations

import argparse
import csv
import io
import sys
from typing import Any

from neuroxai.cli._commands import Command
from neuroxai.cli._common import add_format_option, add_progress_option, print_json
from neuroxai.training import LR_SCHEDULES

__all__ = ["COMMANDS", "run_evaluate", "run_predict", "run_train"]


def _weights(value: str) -> str | None:
    return None if value.lower() in {"none", "random", "null"} else value


def _configure_train(p: argparse.ArgumentParser) -> None:
    """Add the arguments of ``neuroxai train``."""
    p.add_argument("--data", required=True, metavar="DIR", help="data folder or CSV manifest")
    p.add_argument("--model", default="cnn", metavar="NAME", help="registered model name (default: cnn; see `neuroxai models`)")
    p.add_argument("--epochs", type=int, default=20, metavar="N", help="total epochs, both phases (default: 20)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory to write (resumed if interrupted)")
    p.add_argument("--batch-size", type=int, default=32, help="batch size (default: 32)")
    p.add_argument("--image-size", type=int, default=None, metavar="PX", help="square input size (default: the model's)")
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate (default: 0.001)")
    p.add_argument(
        "--lr-schedule",
        choices=LR_SCHEDULES,
        default="plateau",
        help="plateau: halve on a validation-loss plateau (default); cosine: decay to zero over each phase; constant",
    )
    p.add_argument("--seed", type=int, default=1337, help="random seed (default: 1337)")
    p.add_argument("--val-fraction", type=float, default=0.15, help="validation fraction carved from training (default: 0.15)")
    p.add_argument(
        "--no-two-phase",
        dest="two_phase",
        action="store_const",
        const=False,
        default=None,
        help="train all layers in one phase even for transfer models",
    )
    p.add_argument(
        "--fine-tune-epochs", type=int, default=None, metavar="N", help="epochs of the fine-tuning phase (of --epochs)"
    )
    p.add_argument("--no-augment", dest="augment", action="store_false", help="no data augmentation")
    p.add_argument(
        "--weights",
        type=_weights,
        default=argparse.SUPPRESS,
        metavar="WEIGHTS",
        help="efficientnetb0 weights: imagenet, none, or a local .h5 file",
    )
    add_format_option(p)
    add_progress_option(p)


def _configure_evaluate(e: argparse.ArgumentParser) -> None:
    """Add the arguments of ``neuroxai evaluate``."""
    e.add_argument("run_dir", metavar="RUN_DIR", help="run directory or .keras file")
    e.add_argument("--data", required=True, metavar="DIR", help="data folder or CSV manifest")
    e.add_argument("--split", default="test", choices=("train", "val", "test"), help="split to evaluate (default: test)")
    e.add_argument("--val-fraction", type=float, default=None, help="validation fraction (default: the run's)")
    e.add_argument(
        "--test-fraction", type=float, default=None, help="test fraction carved when DIR has no test split (default: the run's)"
    )
    e.add_argument("--seed", type=int, default=None, help="split seed (default: the run's)")
    e.add_argument("--batch-size", type=int, default=32, help="batch size (default: 32)")
    add_format_option(e)
    add_progress_option(e)


def _configure_predict(r: argparse.ArgumentParser) -> None:
    """Add the arguments of ``neuroxai predict``."""
    r.add_argument("run_dir", metavar="RUN_DIR", help="run directory or .keras file")
    r.add_argument("inputs", nargs="+", metavar="FILE_OR_DIR", help="image files or folders")
    r.add_argument("--csv", default=None, metavar="OUT", help="write the CSV here (atomically) instead of stdout")
    r.add_argument("--batch-size", type=int, default=64, help="images read and predicted at a time (default: 64)")
    add_progress_option(r)


def run_train(args: argparse.Namespace) -> int:
    """Train and write the run directory; prints a summary. Returns 0."""
    from neuroxai.data import Dataset
    from neuroxai.training import Trainer

    ds = Dataset(args.data, val_fraction=args.val_fraction, seed=args.seed, progress=args.progress)
    for s in ds.skipped:
        print(f"skipped {s.path}: {s.reason}", file=sys.stderr)
    options: dict[str, Any] = {}
    if hasattr(args, "weights"):
        options["weights"] = args.weights
    trainer = Trainer(
        args.model,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        seed=args.seed,
        image_size=args.image_size,
        two_phase=args.two_phase,
        fine_tune_epochs=args.fine_tune_epochs,
        augment=args.augment,
        progress=args.progress,
        model_options=options or None,
        lr_schedule=args.lr_schedule,
    )
    trainer.fit(ds, out_dir=args.out)
    metrics = getattr(trainer, "metrics_", None) or {}
    if args.format == "json":
        print_json({"run_dir": str(args.out), "phases": trainer.phases_, "metrics": metrics})
        return 0
    print(
        f"Trained {trainer.spec_.name} for {trainer.history_['epoch'][-1] if trainer.history_.get('epoch') else 0} epochs "
        f"({', '.join(p['name'] for p in trainer.phases_)}); run directory: {args.out}"
    )
    _print_metrics(metrics)
    return 0


def _print_metrics(metrics: dict[str, Any]) -> None:
    for key, m in metrics.items():
        if not isinstance(m, dict) or "accuracy" not in m:
            continue
        auc = "n/a" if m["roc_auc"] is None else f"{m['roc_auc']:.3f}"
        ece = "n/a" if m["ece"] is None else f"{m['ece']:.3f}"
        acc = "n/a" if m["accuracy"] is None else f"{m['accuracy']:.3f}"
        print(f"{key:>10}: n={m['n']}  accuracy={acc}  macro ROC AUC={auc}  ECE={ece}")
        if m.get("roc_auc_reason"):
            print(f"{'':>12}(ROC AUC: {m['roc_auc_reason']})")


def _format_report(m: dict[str, Any], names: list[str]) -> str:
    lines = [f"{'class':<14}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}"]
    for c in [*names, "macro avg", "weighted avg"]:
        r = m["per_class"].get(c)
        if r:
            lines.append(f"{c:<14}{r['precision']:>10.3f}{r['recall']:>10.3f}{r['f1-score']:>10.3f}{int(r['support']):>9}")
    lines.append("confusion matrix (rows true, columns predicted):")
    width = max(len(str(v)) for row in m["confusion_matrix"] for v in row) + 1
    for c, row in zip(names, m["confusion_matrix"]):
        lines.append(f"  {c:<12}" + "".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)


def run_evaluate(args: argparse.Namespace) -> int:
    """Evaluate a run on a dataset; prints text or JSON. Returns 0."""
    from neuroxai.data import Dataset
    from neuroxai.training import load

    predictor = load(args.run_dir)
    data = predictor.spec.get("data") or {}

    def setting(given: Any, key: str, default: Any) -> Any:  # the run's own split, so its test set is the same
        return given if given is not None else (data.get(key) if data.get(key) is not None else default)

    ds = Dataset(
        args.data,
        val_fraction=setting(args.val_fraction, "val_fraction", 0.15),
        test_fraction=setting(args.test_fraction, "test_fraction", 0.15),
        seed=setting(args.seed, "seed", predictor.spec.get("seed", 1337)),
        progress=args.progress,
    )
    metrics = predictor.evaluate(ds, split=args.split, batch_size=args.batch_size)
    if args.format == "json":
        print_json(metrics)
        return 0
    _print_metrics(metrics)
    for key, m in metrics.items():
        if isinstance(m, dict) and m.get("n"):
            print(f"\n[{key}]")
            print(_format_report(m, list(predictor.class_names)))
    return 0


def _expand(inputs: list[str], skipped: list[tuple[str, str]]) -> list[str]:
    """Image files among ``inputs`` (the rule of :func:`neuroxai.data.find_images`); missing inputs go to ``skipped``."""
    from neuroxai.data import find_images

    found = find_images(inputs)
    skipped.extend((m.path, m.reason) for m in found.missing)
    return found.paths


def run_predict(args: argparse.Namespace) -> int:
    """Predict files and folders in batches; CSV to stdout or ``--csv``. Returns 0 (2 if nothing could be read)."""
    from neuroxai._io import write_text
    from neuroxai._progress import progress
    from neuroxai.data import load_images
    from neuroxai.errors import DataError
    from neuroxai.runs._predictor import _predict_array
    from neuroxai.training import load

    predictor = load(args.run_dir)
    skipped: list[tuple[str, str]] = []
    files = _expand(list(args.inputs), skipped)
    names = list(predictor.class_names)
    buf = io.StringIO() if args.csv else sys.stdout
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["path", "predicted", "confidence", *[f"p_{c}" for c in names]])
    n_ok = 0
    step = max(1, int(args.batch_size))
    bar = progress(total=len(files), desc="Predicting", enabled=args.progress)
    for start in range(0, len(files), step):
        chunk = files[start : start + step]
        x, ok, bad = load_images(
            chunk, image_size=predictor.input_shape[:2], channels=predictor.input_shape[2], input_range=predictor.input_range
        )
        skipped.extend((s.path, s.reason) for s in bad)
        if len(ok):
            proba = _predict_array(predictor.model, x, step)
            for path, pr in zip(ok, proba):
                k = int(pr.argmax())
                writer.writerow([path, names[k], f"{float(pr[k]):.6f}", *[f"{float(v):.6f}" for v in pr]])
            n_ok += len(ok)
        bar.update(len(chunk))
    bar.close()
    for path, reason in skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    if args.csv:
        write_text(args.csv, buf.getvalue())  # type: ignore[union-attr]
        print(
            f"Wrote {n_ok} prediction(s) to {args.csv}" + (f"; skipped {len(skipped)} file(s)" if skipped else ""),
            file=sys.stderr,
        )
    if n_ok == 0:
        raise DataError(f"No image could be read from {', '.join(args.inputs)} ({len(skipped)} skipped); nothing predicted.")
    return 0


COMMANDS: tuple[Command, ...] = (
    Command(
        name="train",
        help="train a model on an image folder and write a run directory",
        description=(
            "Train a registered model on DIR (a Training/Testing folder, a folder of class folders or a CSV manifest) "
            "and write RUN_DIR: model.keras, neuroxai.json, history.csv, metrics.json, confusion_matrix.png, "
            "training_curves.png. Transfer models (efficientnetb0) train in two phases: head first, then fine-tuning "
            "at a lower learning rate. Running the same command again after an interruption resumes the run."
        ),
        configure=_configure_train,
        run=run_train,
    ),
    Command(
        name="evaluate",
        help="evaluate a run directory on a dataset's test split",
        description="Accuracy, per-class precision/recall/F1, confusion matrix, macro ROC AUC and calibration error "
        "of a trained run on the test split of DIR (and on the de-duplicated test split where test images repeat "
        "training images).",
        configure=_configure_evaluate,
        run=run_evaluate,
    ),
    Command(
        name="predict",
        help="classify image files or folders with a trained run",
        description="Classify images with RUN_DIR. Folders are searched recursively and read in batches; files that "
        "cannot be read are skipped and reported on stderr. Writes CSV (path, predicted, confidence, one probability "
        "column per class) to stdout or to --csv.",
        configure=_configure_predict,
        run=run_predict,
    ),
)
