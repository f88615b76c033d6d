"""``neuroxai explain RUN_DIR_OR_MODEL_FILE INPUTS... --method M --out DIR``: pictures and a predictions CSV."""

from __future__ import annotations

import argparse
import copy
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from neuroxai.cli._commands import Command
from neuroxai.cli._common import (
    add_format_option,
    add_model_argument,
    add_overwrite_option,
    add_progress_option,
    layer_path,
    ood_columns,
    parse_key_values,
    print_json,
    report_skipped,
    resolve_model,
)
from neuroxai.cli._volumes import (
    add_volume_options,
    iter_volumes,
    predict_options,
    rule_no_tumour,
    volume_count,
    volume_header,
    volume_row,
)

__all__ = ["COMMANDS", "collect_inputs", "run"]


def _configure_explain(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``neuroxai explain``."""
    add_model_argument(parser, dest="model", inputs=True)
    parser.add_argument(
        "inputs", metavar="INPUTS", nargs="*", help="image files, scanner volumes (NIfTI, DICOM files) and/or folders of them"
    )
    parser.add_argument("--method", "-m", default="gradcam", help="explanation method (default: gradcam)")
    parser.add_argument(
        "--out", "-o", required=True, metavar="DIR", help="output folder: new, empty, or an earlier explain output"
    )
    add_overwrite_option(parser, "an earlier explain output in DIR")
    parser.add_argument("--target", default=None, metavar="CLASS", help="class (name or index) to explain (default: predicted)")
    parser.add_argument("--batch-size", type=int, default=32, metavar="N", help="images per batch (default: 32)")
    parser.add_argument(
        "--layer",
        nargs="+",
        default=None,
        metavar="NAME",
        help="target layer; several names form a path into nested models (default: the run's, else automatic)",
    )
    parser.add_argument(
        "--input-range",
        default=None,
        metavar="LO,HI",
        help="pixel range the model expects, e.g. 0,255 (default: the run's; (0,1) for a bare .keras file)",
    )
    parser.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE", help="method option, e.g. samples=32 (repeatable)"
    )
    parser.add_argument("--alpha", type=float, default=0.4, help="heatmap opacity in overlays (default: 0.4)")
    parser.add_argument("--cmap", default="jet", help="matplotlib colormap (default: jet)")
    parser.add_argument(
        "--scaling",
        choices=("minmax", "max", "none"),
        default="minmax",
        help="how each map is scaled for display: min-max per map (default), divided by its maximum, or as computed",
    )
    add_volume_options(parser)  # window, convention and the per-volume rule (same as predict)
    add_format_option(parser)
    add_progress_option(parser)


def collect_inputs(inputs: list[str]) -> tuple[list[tuple[Path, str]], list[tuple[str, str]]]:
    """Expand files and folders into image files (the rule of :func:`neuroxai.data.find_images`).

    Args:
        inputs: Paths given on the command line.

    Returns:
        ``(files, missing)``: ``(path, output stem)`` pairs in a stable order, and
        ``(path, reason)`` for inputs that do not exist.
    """
    files, missing, _volumes = _collect(inputs)
    return files, missing


def _collect(inputs: list[str]) -> tuple[list[tuple[Path, str]], list[tuple[str, str]], bool]:
    """:func:`collect_inputs`, and whether scanner files are among the inputs."""
    from neuroxai.data import find_images

    found = find_images(inputs)
    return [(Path(f.path), f.stem) for f in found.files], [(m.path, m.reason) for m in found.missing], bool(found.volumes)


def _parse_range(text: str | None) -> tuple[float, float] | None:
    from neuroxai.errors import ExplainError

    if text is None:
        return None
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise ExplainError(f"--input-range must be two numbers like 0,1 or 0,255; got {text!r}.") from None
    if not hi > lo:
        raise ExplainError(f"--input-range must have LO < HI; got {text!r}.")
    return (lo, hi)


def run(args: argparse.Namespace) -> int:
    """Explain every readable image; returns 0 (2 via NeuroxaiError when nothing could be explained)."""
    from neuroxai._io import display_path, prepare_output_dir
    from neuroxai._progress import progress
    from neuroxai.data import load_images
    from neuroxai.errors import ExplainError
    from neuroxai.explain import Explainer
    from neuroxai.runs import load

    if args.batch_size < 1:
        raise ExplainError(f"--batch-size must be >= 1; got {args.batch_size}.")
    resolve_model(args, dest="model", inputs="inputs")  # --pretrained NAME: the shipped run directory, checksums verified
    predictor = load(args.model)
    input_range = _parse_range(args.input_range) or predictor.input_range  # the run's; (0, 1) for a bare .keras file
    layer = layer_path(args.layer)
    explainer = Explainer(
        predictor,
        args.method,
        target_layer=layer,
        input_range=input_range,
        batch_size=args.batch_size,
        **parse_key_values(args.option, "--option", "samples=32"),
    )
    height, width, channels = explainer.input_shape
    if height is None or width is None or channels is None:
        raise ExplainError(f"Model {explainer.model.name!r} has no fixed input size; expected (H, W, C) with H and W set.")
    target: Any = args.target
    if target is not None and target not in explainer.class_names and target.lstrip("-").isdigit():
        target = int(target)

    files, skipped, has_volumes = _collect(args.inputs)
    n_volumes, found = volume_count(args.inputs) if has_volumes else (0, None)
    # before any image is explained: never into an input folder, never mixed into a folder of someone's files
    folder = prepare_output_dir(
        args.out, command="explain", inputs=[*args.inputs, args.model], overwrite=args.overwrite, strict=True
    )
    out = folder.path
    ood = predictor.ood  # the run's out-of-distribution score: two more columns where it has one
    used: set[str] = set()
    rows: list[list[Any]] = []
    tail = ["", ""] if n_volumes else []  # the slice and series columns, empty for images
    header = ["path", "overlay", "predicted", "confidence", "explained"] + [f"p_{c}" for c in explainer.class_names]
    header += ["ood_score", "ood"] if ood is not None else []
    header += ["slice", "series"] if n_volumes else []
    no_tumour = rule_no_tumour(list(explainer.class_names), args)
    volume_rows = [[*volume_header(list(explainer.class_names), no_tumour), "explained", "heatmap", "montage"]]
    summaries: list[str] = []
    written: list[str] = []
    done = False
    bar: Any = progress(total=len(files) + n_volumes, desc=f"Explaining ({explainer.method.name})", enabled=args.progress)
    try:
        for start in range(0, len(files), args.batch_size):
            chunk = files[start : start + args.batch_size]
            stems = {os.fspath(p): stem for p, stem in chunk}
            x, ok, bad = load_images(
                [p for p, _ in chunk], image_size=(height, width), channels=channels, input_range=input_range
            )
            skipped.extend((s.path, s.reason) for s in bad)
            if ok:
                exp = explainer.explain(x, targets=target)
                known = ood_columns(ood, _ood_scores(predictor, ood, x, args.batch_size), len(ok))
                names = []
                for path in ok:
                    stem = stems.get(path, Path(path).stem)
                    name, n = stem, 1
                    while name in used:
                        name, n = f"{stem}_{n}", n + 1
                    used.add(name)
                    names.append(name)
                folder.record(f"{name}.png" for name in names)  # in the marker before they exist: a kill cannot orphan them
                # Pictures at each scan's own resolution: the original files, not the resized model input.
                exp.save(out, names=names, originals=ok, alpha=args.alpha, cmap=args.cmap, scaling=args.scaling)
                for i, (path, name) in enumerate(zip(ok, names)):
                    pred = int(exp.predicted[i])
                    rows.append(
                        [path, f"{name}.png", exp.class_names[pred], f"{exp.probabilities[i, pred]:.6f}", exp.target_names[i]]
                        + [f"{p:.6f}" for p in exp.probabilities[i]]
                        + known[i]
                        + tail
                    )
            bar.update(len(chunk))
        n_images = len(rows)
        _explain_volumes(args, explainer, target, found, folder, used, rows, skipped, bar, volume_rows, summaries, written)
        done = True
    finally:
        bar.close()
        if not done:  # interrupted by an error: the tables of what was done are written all the same
            _write_tables(folder, header, rows, skipped, volume_rows, n_volumes, quiet=True)
    tables = _write_tables(folder, header, rows, skipped, volume_rows, n_volumes)
    folder.finish([*(row[1] for row in rows), *written, *tables])
    report_skipped("neuroxai explain", skipped)
    for line in summaries:
        print(f"neuroxai explain: volume {line}", file=sys.stderr)
    summary = {
        "method": explainer.method.name,
        "layer": explainer.layer,
        "score": explainer.score_source,
        "explained": n_images,
        "volumes": len(summaries),
        "volume_results": str(out / "volumes.csv") if n_volumes else None,
        "skipped": [{"path": p, "reason": r} for p, r in skipped],
        "out": str(out),
        "predictions": str(out / "predictions.csv"),
    }
    if args.format == "json":
        print_json(summary)
    else:
        print(
            "Explained "
            + " and ".join(
                [f"{n_images} image(s)"] * bool(n_images or not n_volumes) + [f"{len(summaries)} volume(s)"] * bool(n_volumes)
            )
            + f" with {explainer.method.name} -> {display_path(out)} (predictions.csv"
            + (", volumes.csv)" if n_volumes else ")")
        )
        if skipped:
            print(f"Skipped {len(skipped)} file(s); see {display_path(out / 'skipped.csv')}")
    if not rows and not summaries:
        raise ExplainError(
            f"No image could be explained from {', '.join(args.inputs)}: expected readable image files "
            f"({len(skipped)} skipped; see {out / 'skipped.csv'})."
        )
    return 0


def _write_tables(
    folder: Any,
    header: list[str],
    rows: list[list[Any]],
    skipped: list[tuple[str, str]],
    volume_rows: list[list[Any]],
    n_volumes: int,
    *,
    quiet: bool = False,
) -> list[str]:
    """Write predictions.csv, skipped.csv and (with volumes) volumes.csv; returns their names.

    With ``quiet`` (the command is already failing) a table that cannot be written is logged, not raised, so the
    error that stopped the command is the one reported.
    """
    import logging

    from neuroxai._io import write_text

    tables: dict[str, list[Sequence[Any]]] = {"predictions.csv": [header, *rows], "skipped.csv": [["path", "reason"], *skipped]}
    if n_volumes:
        tables["volumes.csv"] = list(volume_rows)
    for name, content in tables.items():
        try:
            folder.record([name])
            write_text(folder.path / name, _csv(content))
        except OSError as exc:  # OutputError too
            if not quiet:
                raise
            logging.getLogger("neuroxai.cli").warning("could not write %s: %s", name, exc)
    return list(tables)


def _explain_volumes(
    args: argparse.Namespace,
    explainer: Any,
    target: Any,
    found: Any,
    folder: Any,
    used: set[str],
    rows: list[list[Any]],
    skipped: list[tuple[str, str]],
    bar: Any,
    table: list[list[Any]],
    summaries: list[str],
    written: list[str],
) -> None:
    """Explain each volume: heatmap NIfTI + montage, per-slice rows (appended to ``rows``).

    Appends to ``table`` (volumes.csv, its header given), ``summaries`` (one line per volume) and ``written``
    (files written), as it goes: what was done is there when a later volume stops the command.
    """
    from neuroxai.errors import NeuroxaiError
    from neuroxai.volumes import HEATMAP_SUFFIX, MONTAGE_SUFFIX, explain_volume, predict_volume

    names = list(explainer.class_names)
    no_tumour = rule_no_tumour(names, args)
    out = folder.path
    taken: set[str] = set()
    if found is None:
        return
    predictor = explainer.predictor
    if explainer.input_range is not None and explainer.input_range != predictor.input_range:  # --input-range given
        predictor = copy.copy(predictor)
        predictor.input_range = explainer.input_range
    for volume in iter_volumes(found, args, skipped, args.inputs):
        try:
            pred = predict_volume(predictor, volume, batch_size=args.batch_size, **predict_options(args))
            result = explain_volume(explainer, volume, target=target, prediction=pred)
            name, n = volume.name, 2
            while name in taken or f"{name}_montage" in used:  # never over another volume's or an image's picture
                name, n = f"{volume.name}_{n}", n + 1
            taken.add(name)
            used.add(f"{name}_montage")
            folder.record([f"{name}{HEATMAP_SUFFIX}", f"{name}{MONTAGE_SUFFIX}"])
            files = result.save(out, name=name, overwrite=True, alpha=args.alpha, cmap=args.cmap, scaling=args.scaling)
        except NeuroxaiError as exc:  # a volume that cannot be explained is reported like a bad image, never fatal
            skipped.append((volume.source, str(exc)))
            continue
        heat = Path(files.heatmap).name
        montage = Path(files.montage).name if files.montage else ""
        written.extend(f for f in (heat, montage) if f)
        t = result.target
        known = ood_columns(predictor.ood, pred.ood_scores, len(pred.slices))
        for z, pr, ood_cells in zip(pred.slices, pred.probabilities, known):
            k = int(pr.argmax())
            rows.append(
                [volume.source, heat, names[k], f"{float(pr[k]):.6f}", t or ""]
                + [f"{p:.6f}" for p in pr]
                + ood_cells
                + [z, pred.series or ""]
            )
        table.append([*volume_row(pred, names, no_tumour), t or "", heat, montage])
        summaries.append(pred.summary())
        bar.update(1)


def _ood_scores(predictor: Any, ood: Any, x: Any, batch_size: int) -> Any:
    """Out-of-distribution scores of a batch of images (one more forward pass), ``None`` when the run has no score."""
    return None if ood is None else predictor.predict_with_ood(x, batch_size)[1]


def _csv(rows: Sequence[Sequence[Any]]) -> str:
    from neuroxai._io import csv_text  # text cells escaped: a class or file name cannot run as a spreadsheet formula

    return csv_text(rows)


COMMANDS: tuple[Command, ...] = (
    Command(
        name="explain",
        help="explain predictions: one picture (scan beside heatmap overlay) per image plus predictions.csv",
        description=(
            "Load a run directory (model.keras + neuroxai.json) or a bare .keras file (Keras safe mode), read the "
            "image files and folders given (folders recursively; hidden files skipped), explain each prediction "
            "in batches and write OUT/<name>.png pictures (the scan at its own resolution beside the map over it, "
            "titled with the predicted class and probability, with a colour bar), OUT/predictions.csv (path, predicted class, confidence, "
            "explained class, one probability column per class) and OUT/skipped.csv (unreadable files and why). "
            "Scanner volumes (NIfTI .nii/.nii.gz, DICOM files or folders) get one class explained on every slice that "
            "holds brain (--target, else the volume's answer): OUT/<name>_heatmap.nii.gz on the scan's own grid and "
            "affine, OUT/<name>_montage.png (the slices that carried the decision), one row per slice in "
            "predictions.csv (columns slice and series) and one per volume in OUT/volumes.csv."
        ),
        configure=_configure_explain,
        run=run,
    ),
)
