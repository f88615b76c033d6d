"""``neuroxai evaluate-xai RUN_DIR --data DIR --method gradcam``: localization, faithfulness and sanity metrics."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from neuroxai.cli._commands import Command
from neuroxai.cli._common import add_format_option, add_progress_option, print_json

__all__ = ["COMMANDS", "run"]


def _configure_evaluate_xai(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``neuroxai evaluate-xai``."""
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run directory (model.keras + neuroxai.json) or .keras file")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", metavar="DIR", help="dataset folder or CSV manifest with masks")
    src.add_argument(
        "--phantoms",
        type=int,
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
        "--n", type=int, default=None, metavar="N", help="evaluate a seeded random N images of the split (default: all)"
    )
    parser.add_argument("--out", "-o", default=None, metavar="DIR", help="output folder (default: RUN_DIR)")
    parser.add_argument(
        "--targets", choices=("label", "predicted"), default="label", help="class each map explains (default: label)"
    )
    parser.add_argument("--steps", type=int, default=20, help="deletion/insertion steps (default: 20)")
    parser.add_argument("--n-sanity", type=int, default=16, metavar="N", help="images for the randomization check (default: 16)")
    parser.add_argument("--no-sanity", dest="sanity", action="store_false", help="skip the randomization check")
    parser.add_argument("--no-faithfulness", dest="faithfulness", action="store_false", help="skip deletion/insertion")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the image sample, random maps and randomization (default: 0)"
    )
    parser.add_argument("--batch-size", type=int, default=64, metavar="N", help="forward-pass batch size (default: 64)")
    add_format_option(parser)
    add_progress_option(parser)


def run(args: argparse.Namespace) -> int:
    """Evaluate; returns 0, or 1 when a method could not be evaluated (the others are still written)."""
    import numpy as np

    import neuroxai
    from neuroxai.errors import DataError, NeuroxaiError
    from neuroxai.evaluation import evaluate_explanations

    predictor = neuroxai.load(args.run_dir)
    h, w, c = predictor.input_shape
    if args.phantoms is not None:
        from neuroxai.data import phantoms

        dataset = phantoms(n_per_class=args.phantoms, image_size=max(h, w), seed=args.phantom_seed)
    else:
        dataset = neuroxai.Dataset(args.data, progress=args.progress)
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

    report = evaluate_explanations(
        predictor,
        x,
        masks,
        y,
        args.method or ["gradcam"],
        class_names=names,
        targets=args.targets,
        faithfulness=args.faithfulness,
        sanity=args.sanity,
        steps=args.steps,
        n_sanity=args.n_sanity,
        batch_size=args.batch_size,
        seed=args.seed,
        progress=args.progress,
    )
    report.settings["data"] = str(args.data) if args.data else f"phantoms(n_per_class={args.phantoms}, seed={args.phantom_seed})"
    report.settings["split"] = args.split
    report.settings["run_dir"] = str(args.run_dir)
    if masks is None:
        report.settings["localization_skipped"] = "the data has no masks"
    if len(report.errors) == len(report.methods):
        raise NeuroxaiError("No method could be evaluated: " + "; ".join(f"{m}: {e}" for m, e in report.errors.items()))
    out = Path(args.out) if args.out else (Path(args.run_dir) if Path(args.run_dir).is_dir() else Path(args.run_dir).parent)
    paths = report.save(out)
    if args.format == "json":
        print_json({**report.to_dict(), "files": [str(p) for p in paths]})
    else:
        print(f"Evaluated {len(x)} {args.split} images ({report.settings.get('accuracy') or 0:.3f} accuracy).")
        if masks is None:
            print("No masks in the data: localization skipped.")
        print(report.format())
        print(f"Wrote {len(paths)} files to {out}")
    for m, e in report.errors.items():
        print(f"neuroxai evaluate-xai: {m}: {e}", file=sys.stderr)
    return 1 if report.errors else 0


COMMANDS: tuple[Command, ...] = (
    Command(
        name="evaluate-xai",
        help="measure explanations: localization vs masks, deletion/insertion, randomization sanity check",
        description=(
            "Load a run directory, explain test images that have tumour masks and measure the explanations: "
            "pointing game, energy, IoU, Dice and pixel AP against the masks (per class, beside a uniform and a "
            "centre-prior reference map), deletion/insertion curves (beside a random map) and Adebayo et al.'s "
            "cascading randomization check (pass/fail). Writes xai_metrics.json and xai_*.png figures into the "
            "run directory, or --out."
        ),
        configure=_configure_evaluate_xai,
        run=run,
    ),
)
