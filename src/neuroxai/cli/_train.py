"""``neuroxai train``, ``neuroxai evaluate`` and ``neuroxai predict``."""

from __future__ import annotations

import argparse
import io
import sys
from typing import Any

from neuroxai._io import csv_text
from neuroxai.cli._calibrate import (
    add_predict_options,
    add_run_split_options,
    check_predict_options,
    ensure_calibration,
    predict_columns,
    predict_header,
    print_calibration,
    run_dataset,
)
from neuroxai.cli._commands import Command
from neuroxai.cli._common import (
    SafeCSVWriter,
    add_data_options,
    add_format_option,
    add_model_argument,
    add_overwrite_option,
    add_progress_option,
    dataset_options,
    finite_float,
    fraction,
    is_prediction_csv,
    layer_path,
    ood_columns,
    parse_key_values,
    positive_float,
    positive_int,
    print_json,
    report_skipped,
    resolve_model,
)
from neuroxai.cli._volumes import (
    add_volume_options,
    is_volume_csv,
    iter_volumes,
    predict_options,
    rule_no_tumour,
    volume_count,
    volume_header,
    volume_row,
    volumes_csv_for,
)
from neuroxai.models import HEADS
from neuroxai.runs import ClassificationMetrics, EvaluationReport
from neuroxai.training import GUIDANCE_KINDS, LR_SCHEDULES, MaskGuidance

__all__ = ["COMMANDS", "run_evaluate", "run_predict", "run_train"]


def _weights(value: str) -> str | None:
    return None if value.lower() in {"none", "random", "null"} else value


def _configure_train(p: argparse.ArgumentParser) -> None:
    """Add the arguments of ``neuroxai train``."""
    p.add_argument("--data", required=True, metavar="DIR", help="data folder or CSV manifest")
    p.add_argument("--model", default="cnn", metavar="NAME", help="registered model name (default: cnn; see `neuroxai models`)")
    p.add_argument("--epochs", type=positive_int, default=20, metavar="N", help="total epochs, both phases (default: 20)")
    p.add_argument(
        "--out",
        required=True,
        metavar="RUN_DIR",
        help="run directory to write (resumed if interrupted with the same settings; a finished run needs --overwrite)",
    )
    add_overwrite_option(p, "a finished run in RUN_DIR (and start an interrupted one over)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="batch size (default: 32)")
    p.add_argument("--image-size", type=positive_int, default=None, metavar="PX", help="square input size (default: the model's)")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="learning rate (default: 0.001)")
    p.add_argument(
        "--lr-schedule",
        choices=LR_SCHEDULES,
        default="plateau",
        help="plateau: halve on a validation-loss plateau (default); cosine: decay to zero over each phase; constant",
    )
    p.add_argument("--seed", type=int, default=1337, help="random seed (default: 1337)")
    p.add_argument("--val-fraction", type=fraction, default=0.15, help="validation fraction carved from training (default: 0.15)")
    p.add_argument(
        "--test-fraction",
        type=fraction,
        default=0.15,
        help="test fraction carved when the data has no test split (by patient where a manifest names them; default: 0.15)",
    )
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
    p.add_argument(
        "--model-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="model factory option, e.g. feature_stride=8 for the cnn (repeatable; see `neuroxai models`)",
    )
    p.add_argument(
        "--guidance",
        choices=GUIDANCE_KINDS,
        default=None,
        help="mask-guided training on images with tumour masks: cam (class-activation energy) or gradients "
        "(input gradients); default: none",
    )
    p.add_argument(
        "--guidance-weight", type=finite_float, default=1.0, metavar="W", help="weight of the guidance loss (default: 1.0)"
    )
    p.add_argument(
        "--guidance-layer",
        nargs="+",
        default=None,
        metavar="NAME",
        help="layer of --guidance cam (default: the model's target layer)",
    )
    add_data_options(p)
    add_format_option(p)
    add_progress_option(p)


def _configure_evaluate(e: argparse.ArgumentParser) -> None:
    """Add the arguments of ``neuroxai evaluate``."""
    e.add_argument("run_dir", metavar="RUN_DIR", help="run directory or .keras file")
    e.add_argument("--data", required=True, metavar="DIR", help="data folder or CSV manifest")
    e.add_argument("--split", default="test", choices=("train", "val", "test"), help="split to evaluate (default: test)")
    add_run_split_options(e)
    add_format_option(e)
    add_progress_option(e)


def _configure_predict(r: argparse.ArgumentParser) -> None:
    """Add the arguments of ``neuroxai predict``."""
    add_model_argument(r, inputs=True)
    r.add_argument(
        "inputs", nargs="*", metavar="FILE_OR_DIR", help="image files, scanner volumes (NIfTI, DICOM files) or folders of them"
    )
    r.add_argument("--csv", default=None, metavar="OUT", help="write the CSV here (atomically) instead of stdout")
    add_overwrite_option(r, "an earlier --csv output")
    r.add_argument("--batch-size", type=positive_int, default=64, help="images read and predicted at a time (default: 64)")
    r.add_argument(
        "--head",
        choices=HEADS,
        default=None,
        help="what the model outputs: softmax probabilities, logits, independent sigmoid scores or one sigmoid unit "
        "(binary: two classes); default: read from the model's last layer",
    )
    add_predict_options(r)  # referral, prediction sets, TTA (cli/_calibrate.py)
    add_volume_options(r)  # window, convention and the per-volume rule (cli/_volumes.py)
    add_progress_option(r)


def run_train(args: argparse.Namespace) -> int:
    """Train and write the run directory; prints a summary. Returns 0."""
    from neuroxai.data import Dataset
    from neuroxai.runs import RunDirectory
    from neuroxai.training import Trainer

    # refuse an unsafe or busy --out (or a finished run) before any image is read
    RunDirectory(args.out).check(inputs=[args.data], overwrite=args.overwrite, flag="--out")
    ds = Dataset(
        args.data,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        seed=args.seed,
        progress=args.progress,
        **dataset_options(args),
    )
    report_skipped("neuroxai train", ((s.path, s.reason) for s in ds.skipped))
    options = parse_key_values(args.model_option, "--model-option", "feature_stride=8")
    if hasattr(args, "weights"):
        options["weights"] = args.weights
    guidance = None
    if args.guidance is not None:
        guidance = MaskGuidance(args.guidance, weight=args.guidance_weight, layer=layer_path(args.guidance_layer))
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
        guidance=guidance,
    )
    trainer.fit(ds, out_dir=args.out, overwrite=args.overwrite)
    report = getattr(trainer, "metrics_", None)
    indexed = {(s.path, s.reason) for s in ds.skipped}
    dropped = [f for f in getattr(trainer, "unreadable_", ()) if (f.path, f.reason) not in indexed]
    n_dropped = report_skipped("neuroxai train", ((f.path, f.reason) for f in dropped), verb="dropped")
    if n_dropped:
        print(
            f"neuroxai train: {n_dropped} file(s) failed while training or evaluating and were left out "
            f"(listed in {args.out}/neuroxai.json under data.unreadable)",
            file=sys.stderr,
        )
    if args.format == "json":
        print_json(
            {
                "run_dir": str(args.out),
                "phases": [p.to_dict() for p in trainer.phases_],
                "metrics": report.to_dict() if report is not None else None,
                "skipped": [s.to_dict() for s in ds.skipped],
                "unreadable": [f.to_dict() for f in dropped],
            }
        )
        return 0
    print(
        f"Trained {trainer.spec_.name} for {trainer.epochs_trained_} epochs "
        f"({', '.join(p.name for p in trainer.phases_)}); run directory: {args.out}"
    )
    if report is not None:
        _print_metrics(report)
    return 0


def _metric_lines(report: EvaluationReport) -> list[tuple[str, ClassificationMetrics]]:
    rows = [(report.split, report.metrics)]
    if report.dedup is not None:
        rows.append((f"{report.split}_dedup", report.dedup))
    return rows


def _print_metrics(report: EvaluationReport) -> None:
    for key, m in _metric_lines(report):
        auc = "n/a" if m.roc_auc is None else f"{m.roc_auc:.3f}"
        ece = "n/a" if m.ece is None else f"{m.ece:.3f}"
        acc = "n/a" if m.accuracy is None else f"{m.accuracy:.3f}"
        print(f"{key:>10}: n={m.n}  accuracy={acc}  macro ROC AUC={auc}  ECE={ece}")
        if m.roc_auc_reason:
            print(f"{'':>12}(ROC AUC: {m.roc_auc_reason})")
    if report.dedup is not None:
        print(f"{'':>12}({report.split}_dedup leaves out {report.removed_duplicates} image(s) byte-identical to training images)")


def _format_report(m: ClassificationMetrics) -> str:
    lines = [f"{'class':<14}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}"]
    for r in [*m.per_class, m.macro_avg, m.weighted_avg]:
        if r is not None:
            lines.append(f"{r.name:<14}{r.precision:>10.3f}{r.recall:>10.3f}{r.f1:>10.3f}{r.support:>9}")
    lines.append("confusion matrix (rows true, columns predicted):")
    width = max(len(str(v)) for row in m.confusion_matrix for v in row) + 1
    for r, row in zip(m.per_class, m.confusion_matrix):
        lines.append(f"  {r.name:<12}" + "".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)


def run_evaluate(args: argparse.Namespace) -> int:
    """Evaluate a run on a dataset; prints text or JSON. Returns 0."""
    from neuroxai.runs import load

    predictor = load(args.run_dir)
    ds = run_dataset(args, predictor)  # the run's own split, so its test set is the same
    ensure_calibration(predictor, ds, args.batch_size)  # a run trained before calibration: fitted now, in memory
    report = predictor.evaluate(ds, split=args.split, batch_size=args.batch_size)
    unreadable = report.unreadable
    listed = report_skipped("neuroxai evaluate", ((f.path, f.reason) for f in unreadable), verb="not evaluated")
    if listed:
        print(
            f"neuroxai evaluate: {listed} file(s) of the {args.split} split could not be read and are not in these metrics",
            file=sys.stderr,
        )
    others = {s.path for s in ds.skipped} - {f.path for f in unreadable}
    if others:
        print(
            f"neuroxai evaluate: {len(others)} other file(s) under {args.data} were skipped when indexing "
            f"(`neuroxai audit {args.data}` lists them)",
            file=sys.stderr,
        )
    if args.format == "json":
        print_json(report.to_dict())
        return 0
    _print_metrics(report)
    print_calibration(report.calibration, report.split)
    for key, m in _metric_lines(report):
        if m.n:
            print(f"\n[{key}]")
            print(_format_report(m))
    return 0


def _expand(inputs: list[str], skipped: list[tuple[str, str]]) -> tuple[list[str], bool]:
    """Image files among ``inputs`` (the rule of :func:`neuroxai.data.find_images`), and whether scanner files are among
    them too; missing inputs go to ``skipped``."""
    from neuroxai.data import find_images

    found = find_images(inputs)
    skipped.extend((m.path, m.reason) for m in found.missing)
    return found.paths, bool(found.volumes)


def run_predict(args: argparse.Namespace) -> int:
    """Predict files and folders in batches; CSV to stdout or ``--csv``. Returns 0 (2 if nothing could be read).

    Scanner volumes add one row per classified slice (column ``slice``) and one per-volume result: a line on
    stderr and, with ``--csv``, a row in ``<csv stem>.volumes.csv``.
    """
    from neuroxai._io import display_path, prepare_output_file, write_text
    from neuroxai._progress import progress
    from neuroxai.data import load_images
    from neuroxai.errors import DataError, NeuroxaiError
    from neuroxai.runs import load
    from neuroxai.volumes import predict_volume

    resolve_model(args, inputs="inputs")  # --pretrained NAME: the shipped run directory, checksums verified
    inputs = [*args.inputs, args.run_dir]
    if args.csv:  # before the model loads and any image is read: never over an input or a file we did not write
        prepare_output_file(args.csv, inputs=inputs, overwrite=args.overwrite, ours=is_prediction_csv, flag="--csv")
    skipped: list[tuple[str, str]] = []
    files, has_volumes = _expand(list(args.inputs), skipped)
    n_volumes, found = volume_count(args.inputs) if has_volumes else (0, None)
    volumes_csv = volumes_csv_for(args.csv) if args.csv and n_volumes else None
    if volumes_csv is not None:
        prepare_output_file(volumes_csv, inputs=inputs, overwrite=args.overwrite, ours=is_volume_csv, flag="--csv")
    predictor = load(args.run_dir, head=args.head)
    threshold = check_predict_options(args, predictor)  # the --coverage sets' threshold, None without
    names = list(predictor.class_names)
    buf = io.StringIO()
    writer = SafeCSVWriter(buf if args.csv else sys.stdout)
    ood = predictor.ood  # the run's out-of-distribution score: two columns per row where it has one
    writer.writerow(
        [
            "path",
            "predicted",
            "confidence",
            *[f"p_{c}" for c in names],
            *(["ood_score", "ood"] if ood is not None else []),
            *predict_header(args),
            *(["slice", "series"] if n_volumes else []),
        ]
    )
    tail = ["", ""] if n_volumes else []  # images have no slice index nor series
    n_ok = 0
    step = max(1, int(args.batch_size))
    bar = progress(total=len(files) + n_volumes, desc="Predicting", enabled=args.progress)
    for start in range(0, len(files), step):
        chunk = files[start : start + step]
        x, ok, bad = load_images(
            chunk, image_size=predictor.input_shape[:2], channels=predictor.input_shape[2], input_range=predictor.input_range
        )
        skipped.extend((s.path, s.reason) for s in bad)
        if len(ok):
            # probabilities for every head, temperature-scaled where the run is calibrated
            proba, scores = predictor.predict_with_ood(x, step, calibrated=not args.uncalibrated, tta=args.tta)
            extra = predict_columns(args, proba, names, threshold)
            known = ood_columns(ood, scores, len(ok))
            for path, pr, more, ood_cells in zip(ok, proba, extra, known):
                k = int(pr.argmax())
                writer.writerow(
                    [path, names[k], f"{float(pr[k]):.6f}", *[f"{float(v):.6f}" for v in pr], *ood_cells, *more, *tail]
                )
            n_ok += len(ok)
        bar.update(len(chunk))
    no_tumour = rule_no_tumour(names, args)
    volume_rows: list[list[Any]] = [volume_header(names, no_tumour)]
    summaries: list[str] = []
    for volume in iter_volumes(found, args, skipped, args.inputs) if n_volumes else ():
        try:
            pred = predict_volume(
                predictor, volume, batch_size=step, calibrated=not args.uncalibrated, tta=args.tta, **predict_options(args)
            )
        except NeuroxaiError as exc:  # a volume the model cannot take is reported like a bad image, never fatal
            skipped.append((volume.source, str(exc)))
            continue
        extra = predict_columns(args, pred.probabilities, names, threshold)
        known = ood_columns(ood, pred.ood_scores, len(pred.slices))
        for z, pr, more, ood_cells in zip(pred.slices, pred.probabilities, extra, known):
            k = int(pr.argmax())
            writer.writerow(
                [
                    volume.source,
                    names[k],
                    f"{float(pr[k]):.6f}",
                    *[f"{float(v):.6f}" for v in pr],
                    *ood_cells,
                    *more,
                    z,
                    pred.series or "",
                ]
            )
        n_ok += len(pred.slices)
        volume_rows.append(volume_row(pred, names, no_tumour))
        summaries.append(pred.summary())
        bar.update(1)
    bar.close()
    report_skipped("neuroxai predict", skipped)
    for line in summaries:
        print(f"neuroxai predict: volume {line}", file=sys.stderr)
    if args.csv:
        write_text(args.csv, buf.getvalue())
        if volumes_csv is not None:
            write_text(volumes_csv, csv_text(volume_rows))
        print(
            f"Wrote {n_ok} prediction(s) to {display_path(args.csv)}"
            + (f" and {len(summaries)} volume result(s) to {display_path(volumes_csv)}" if volumes_csv is not None else "")
            + (f"; skipped {len(skipped)} file(s)" if skipped else ""),
            file=sys.stderr,
        )
    if n_ok == 0 and not summaries:
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
        "column per class; with --refer-below a column referred, with --coverage a column set) to stdout or to --csv. "
        "Probabilities are temperature-scaled where the run is calibrated (--uncalibrated: the model's own). "
        "Probabilities follow the model's head (--head, default read from "
        "its last layer): logits are softmaxed, a single sigmoid unit gives two classes, independent sigmoid scores "
        "stay as they are. Scanner volumes (NIfTI .nii/.nii.gz, DICOM files or folders) add one row per axial slice "
        "that holds brain (columns slice and series; slices without brain are skipped) and one answer per volume (the per-volume "
        "rule: --volume-top-k, --volume-threshold, --volume-no-tumour): a line on stderr and, with --csv, a row in "
        "<csv stem>.volumes.csv.",
        configure=_configure_predict,
        run=run_predict,
    ),
)
