"""``neuroxai explain RUN_DIR_OR_MODEL_FILE INPUTS... --method M --out DIR``: pictures and a predictions CSV."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from neuroxai.cli._commands import Command
from neuroxai.cli._common import (
    add_format_option,
    add_overwrite_option,
    add_progress_option,
    layer_path,
    parse_key_values,
    print_json,
    report_skipped,
)

__all__ = ["COMMANDS", "collect_inputs", "run"]


def _configure_explain(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``neuroxai explain``."""
    parser.add_argument("model", metavar="RUN_DIR_OR_MODEL_FILE", help="run directory or .keras file")
    parser.add_argument("inputs", metavar="INPUTS", nargs="+", help="image files and/or folders")
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
    from neuroxai.data import find_images

    found = find_images(inputs)
    return [(Path(f.path), f.stem) for f in found.files], [(m.path, m.reason) for m in found.missing]


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
    from neuroxai._io import display_path, prepare_output_dir, write_text
    from neuroxai._progress import progress
    from neuroxai.data import load_images
    from neuroxai.errors import ExplainError
    from neuroxai.explain import Explainer
    from neuroxai.runs import load

    if args.batch_size < 1:
        raise ExplainError(f"--batch-size must be >= 1; got {args.batch_size}.")
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

    files, skipped = collect_inputs(args.inputs)
    # before any image is explained: never into an input folder, never mixed into a folder of someone's files
    folder = prepare_output_dir(
        args.out, command="explain", inputs=[*args.inputs, args.model], overwrite=args.overwrite, strict=True
    )
    out = folder.path
    used: set[str] = set()
    rows: list[list[Any]] = []
    bar: Any = progress(total=len(files), desc=f"Explaining ({explainer.method.name})", enabled=args.progress)
    for start in range(0, len(files), args.batch_size):
        chunk = files[start : start + args.batch_size]
        stems = {os.fspath(p): stem for p, stem in chunk}
        x, ok, bad = load_images([p for p, _ in chunk], image_size=(height, width), channels=channels, input_range=input_range)
        skipped.extend((s.path, s.reason) for s in bad)
        if ok:
            exp = explainer.explain(x, targets=target)
            names = []
            for path in ok:
                stem = stems.get(path, Path(path).stem)
                name, n = stem, 1
                while name in used:
                    name, n = f"{stem}_{n}", n + 1
                used.add(name)
                names.append(name)
            # Pictures at each scan's own resolution: the original files, not the resized model input.
            exp.save(out, names=names, originals=ok, alpha=args.alpha, cmap=args.cmap, scaling=args.scaling)
            for i, (path, name) in enumerate(zip(ok, names)):
                pred = int(exp.predicted[i])
                rows.append(
                    [path, f"{name}.png", exp.class_names[pred], f"{exp.probabilities[i, pred]:.6f}", exp.target_names[i]]
                    + [f"{p:.6f}" for p in exp.probabilities[i]]
                )
        bar.update(len(chunk))
    bar.close()

    header = ["path", "overlay", "predicted", "confidence", "explained"] + [f"p_{c}" for c in explainer.class_names]
    write_text(out / "predictions.csv", _csv([header, *rows]))
    write_text(out / "skipped.csv", _csv([["path", "reason"], *skipped]))
    folder.finish([*(row[1] for row in rows), "predictions.csv", "skipped.csv"])
    report_skipped("neuroxai explain", skipped)
    summary = {
        "method": explainer.method.name,
        "layer": explainer.layer,
        "score": explainer.score_source,
        "explained": len(rows),
        "skipped": [{"path": p, "reason": r} for p, r in skipped],
        "out": str(out),
        "predictions": str(out / "predictions.csv"),
    }
    if args.format == "json":
        print_json(summary)
    else:
        print(f"Explained {len(rows)} image(s) with {explainer.method.name} -> {display_path(out)} (predictions.csv)")
        if skipped:
            print(f"Skipped {len(skipped)} file(s); see {display_path(out / 'skipped.csv')}")
    if not rows:
        raise ExplainError(
            f"No image could be explained from {', '.join(args.inputs)}: expected readable image files "
            f"({len(skipped)} skipped; see {out / 'skipped.csv'})."
        )
    return 0


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
            "explained class, one probability column per class) and OUT/skipped.csv (unreadable files and why)."
        ),
        configure=_configure_explain,
        run=run,
    ),
)
