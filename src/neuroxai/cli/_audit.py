"""``neuroxai audit PATH [--format json]``: audit an image folder or CSV manifest."""

from __future__ import annotations

import argparse

from neuroxai.cli._commands import Command
from neuroxai.cli._common import add_data_options, add_format_option, add_progress_option, dataset_options, print_json

__all__ = ["COMMANDS", "run"]


def _configure_audit(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``neuroxai audit``."""
    parser.add_argument("path", metavar="PATH", help="data folder or CSV manifest")
    add_format_option(parser)
    add_progress_option(parser)
    parser.add_argument(
        "--near-threshold",
        type=int,
        default=None,
        metavar="BITS",
        help="max differing bits of 64 for near duplicates (default: 4)",
    )
    parser.add_argument("--max-groups", type=int, default=5, help="groups and files listed in text output (default: 5)")
    parser.add_argument(
        "--against",
        default=None,
        metavar="DIR_OR_CSV",
        help="a second dataset: list the images of PATH that are copies of its images (resized, re-encoded, grey or "
        "colour, contrast-stretched), with its split and patient for each",
    )
    add_data_options(parser)


def run(args: argparse.Namespace) -> int:
    """Run the audit and print it; returns 0."""
    from neuroxai.data import Dataset

    ds = Dataset(args.path, val_fraction=0.0, test_fraction=0.0, progress=args.progress, **dataset_options(args))
    against = None
    if args.against is not None:
        against = Dataset(args.against, val_fraction=0.0, test_fraction=0.0, progress=args.progress, **dataset_options(args))
    report = ds.audit(progress=args.progress, near_threshold=args.near_threshold, against=against)
    if args.format == "json":
        print_json(report.to_dict())
    else:
        print(report.format(max_groups=args.max_groups))
    return 0


COMMANDS: tuple[Command, ...] = (
    Command(
        name="audit",
        help="audit a dataset: counts, sizes, modes, unreadable files, exact and near duplicates",
        description=(
            "Read every image under PATH (a Training/Testing folder, a folder of class folders, or a CSV "
            "manifest path,label[,split][,mask][,patient]) and report counts per split and class, image sizes and "
            "modes, skipped files with the reason, exact duplicates (same bytes) and near duplicates (perceptual hash) "
            "within and across splits, duplicates whose labels disagree, and patients (a manifest's patient or group "
            "column) whose slices sit in more than one split. Splits are the ones on disk or in the manifest "
            "(no validation split is carved). With --against, also the images of PATH that are copies of another "
            "dataset's images (the Kaggle set holds resized figshare slices, for example): per split and class, per "
            "split and patient of the other dataset, and each copy with its match."
        ),
        configure=_configure_audit,
        run=run,
    ),
)
