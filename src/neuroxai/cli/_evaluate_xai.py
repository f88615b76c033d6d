"""``neuroxai evaluate-xai RUN_DIR --data DIR --method gradcam``: explanation metrics and the model's tumour reliance."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from neuroxai.cli._commands import Command
from neuroxai.cli._common import (
    add_data_options,
    add_format_option,
    add_model_argument,
    add_overwrite_option,
    add_progress_option,
    dataset_options,
    positive_int,
    print_json,
    report_skipped,
    resolve_model,
)

if TYPE_CHECKING:  # pragma: no cover
    from neuroxai.evaluation import ExplanationMetric

__all__ = ["COMMANDS", "run"]


def _configure_evaluate_xai(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``neuroxai evaluate-xai``."""
    add_model_argument(parser, help="run directory (model.keras + neuroxai.json) or .keras file")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", metavar="DIR", help="dataset folder or CSV manifest with masks")
    src.add_argument(
        "--phantoms",
        type=positive_int,
        metavar="N_PER_CLASS",
        help="use synthetic phantoms (NOT medical data) with this many images per class instead of --data",
    )
    parser.add_argument("--phantom-seed", type=int, default=0, metavar="SEED", help="seed of --phantoms (default: 0)")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"), help="split to evaluate (default: test)")
    parser.add_argument(
        "--method",
        "-m",
        action="append",
        default=None,
        metavar="NAME",
        help="explanation method; repeat for several (default: gradcam)",
    )
    parser.add_argument(
        "--metric",
        action="append",
        default=None,
        metavar="NAME",
        help=(
            "explanation metric (localization, faithfulness, sanity, reliance, or a plugin's); repeat for several "
            "(default: every registered metric that applies: localization and reliance need masks)"
        ),
    )
    parser.add_argument(
        "--n", type=positive_int, default=None, metavar="N", help="evaluate a seeded random N images of the split (default: all)"
    )
    parser.add_argument("--out", "-o", default=None, metavar="DIR", help="output folder (default: RUN_DIR)")
    add_overwrite_option(parser, "earlier explanation metrics in the output folder")
    parser.add_argument(
        "--targets", choices=("label", "predicted"), default="label", help="class each map explains (default: label)"
    )
    parser.add_argument("--steps", type=positive_int, default=20, help="deletion/insertion steps (default: 20)")
    parser.add_argument(
        "--n-sanity", type=positive_int, default=16, metavar="N", help="images for the randomization check (default: 16)"
    )
    parser.add_argument("--no-sanity", dest="sanity", action="store_false", help="skip the randomization check")
    parser.add_argument("--no-faithfulness", dest="faithfulness", action="store_false", help="skip deletion/insertion")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the image sample, random maps and randomization (default: 0)"
    )
    parser.add_argument("--batch-size", type=positive_int, default=64, metavar="N", help="forward-pass batch size (default: 64)")
    add_data_options(parser)
    add_format_option(parser)
    add_progress_option(parser)


def _metrics(args: argparse.Namespace) -> list[ExplanationMetric]:
    """The metric instances asked for: ``--metric`` names (default all registered), with the command's settings."""
    from neuroxai.evaluation import Faithfulness, MetricRegistry, Sanity

    registry = MetricRegistry()
    names = list(args.metric) if args.metric else registry.names()
    out: list[ExplanationMetric] = []
    for name in names:
        cls = registry.get(name)
        if issubclass(cls, Faithfulness):
            if not args.faithfulness and not args.metric:
                continue
            out.append(cls(steps=args.steps))
        elif issubclass(cls, Sanity):
            if not args.sanity and not args.metric:
                continue
            out.append(cls(n_images=args.n_sanity))
        else:
            out.append(cls())
    return out


def run(args: argparse.Namespace) -> int:
    """Evaluate; returns 0, or 1 when a method or metric could not be evaluated (the others are still written)."""
    import numpy as np

    import neuroxai
    from neuroxai._io import display_path, prepare_output_dir
    from neuroxai.errors import DataError, NeuroxaiError
    from neuroxai.evaluation import evaluate_explanations
    from neuroxai.runs import RunDirectory

    metrics = _metrics(args)  # unknown names fail before any data is read
    name = resolve_model(args)  # --pretrained NAME: the shipped run directory (read-only), checksums verified
    if args.out:
        out = Path(args.out)
    elif name is not None:  # never into the installed package: a folder here, named after the model
        out = Path(f"{name}-xai")
    else:
        out = Path(args.run_dir) if Path(args.run_dir).is_dir() else Path(args.run_dir).parent
    folder = prepare_output_dir(  # checked before any work: not the data, nothing of anyone else's replaced, writable
        out,
        command="evaluate-xai",
        inputs=[args.data] if args.data else [],
        overwrite=args.overwrite,
        names=("xai_metrics.json",),
        adopt=RunDirectory(out).is_run(),
    )
    predictor = neuroxai.load(args.run_dir)
    h, w, c = predictor.input_shape
    if args.phantoms is not None:
        from neuroxai.data import phantoms

        dataset = phantoms(n_per_class=args.phantoms, image_size=max(h, w), seed=args.phantom_seed)
    else:
        dataset = neuroxai.Dataset(args.data, progress=args.progress, **dataset_options(args))
        report_skipped("neuroxai evaluate-xai", ((s.path, s.reason) for s in dataset.skipped))
    has_masks = bool(getattr(dataset, "has_masks", False))
    arrays = dataset.arrays(args.split, image_size=(h, w), channels=c, input_range=predictor.input_range, with_masks=has_masks)
    x, y = arrays[0], np.asarray(arrays[1])
    masks = arrays[2] if has_masks else None

    # labels follow the dataset's class order; map them onto the model's by name
    names = list(predictor.class_names)
    data_names = list(dataset.class_names)
    missing = [n for n in data_names if n not in names]
    if missing:
        raise DataError(
            f"The data at {args.data or 'phantoms'} has classes {missing} that the model in {args.run_dir} does not "
            f"know (model classes: {names}). Evaluate with data of the same classes."
        )
    y = np.asarray([names.index(data_names[i]) for i in y], dtype=np.int64)
    if len(x) == 0:
        raise DataError(f"The {args.split!r} split of {args.data or 'phantoms'} is empty; nothing to evaluate.")
    if args.n is not None and args.n < len(x):
        idx = np.sort(np.random.default_rng(args.seed).permutation(len(x))[: args.n])
        x, y = x[idx], y[idx]
        masks = masks[idx] if masks is not None else None

    methods = args.method or ["gradcam"]
    report = evaluate_explanations(
        predictor,
        x,
        masks,
        y,
        methods,
        metrics=metrics,
        class_names=names,
        targets=args.targets,
        batch_size=args.batch_size,
        seed=args.seed,
        progress=args.progress,
    )
    report = report.with_source(
        data=str(args.data) if args.data else f"phantoms(n_per_class={args.phantoms}, seed={args.phantom_seed})",
        split=args.split,
        run_dir=str(args.run_dir) if name is None else f"pretrained:{name}",
    )
    unexplained = [e for e in report.errors if e.metric is None]
    if report.methods and len(unexplained) == len(report.methods):
        raise NeuroxaiError("No method could be evaluated: " + "; ".join(e.describe() for e in unexplained))
    paths = report.save(out)
    folder.finish(paths)
    if args.format == "json":
        print_json({**report.to_dict(), "files": [str(p) for p in paths]})
    else:
        acc = report.settings.accuracy
        print(f"Evaluated {len(x)} {args.split} images ({'n/a' if acc is None else f'{acc:.3f}'} accuracy).")
        if masks is None:
            print("No masks in the data: localization and tumour reliance skipped.")
        print(report.format())
        print(f"Wrote {len(paths)} files to {display_path(out)}")
    for e in report.errors:
        print(f"neuroxai evaluate-xai: {e.describe()}", file=sys.stderr)
    return 1 if report.errors else 0


COMMANDS: tuple[Command, ...] = (
    Command(
        name="evaluate-xai",
        help="measure explanations (localization, deletion/insertion, sanity) and the model's tumour reliance",
        description=(
            "Load a run directory, explain test images that have tumour masks and measure the explanations: "
            "pointing game, energy, IoU, Dice and pixel AP against the masks (per class, beside a uniform and a "
            "centre-prior reference map), deletion/insertion curves (beside a random map) and Adebayo et al.'s "
            "cascading randomization check (pass/fail); and, with no explainer, the model's tumour reliance (the "
            "drop of the true class's probability when the tumour is blurred, beside an equal area elsewhere). "
            "--metric NAME picks metrics (plugins may add more). Writes xai_metrics.json and xai_*.png figures "
            "into the run directory, or --out."
        ),
        configure=_configure_evaluate_xai,
        run=run,
    ),
)
