"""``neuroxai report RUN_DIR``: one self-contained HTML page with everything the run knows."""

from __future__ import annotations

import argparse
from pathlib import Path

from neuroxai.cli._commands import Command
from neuroxai.cli._common import add_format_option, add_model_argument, add_progress_option, print_json, resolve_model

__all__ = ["COMMANDS", "run"]


def _configure_report(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``neuroxai report``."""
    add_model_argument(parser, help="run directory (neuroxai train or neuroxai demo wrote it)")
    parser.add_argument(
        "--out",
        "-o",
        default=None,
        metavar="FILE",
        help="HTML file to write (default: RUN_DIR/report.html; with --pretrained NAME: NAME-report.html here)",
    )
    parser.add_argument(
        "--data",
        default=None,
        metavar="DIR",
        help="the run's data folder or CSV manifest (default: the path the run recorded, when it can be read here)",
    )
    parser.add_argument(
        "--gallery",
        type=int,
        default=2,
        metavar="N",
        help="right and wrong test images to explain per class (default: 2; 0: no gallery)",
    )
    parser.add_argument("--method", "-m", default="gradcam", help="explanation method of the gallery (default: gradcam)")
    parser.add_argument("--batch-size", type=int, default=32, metavar="N", help="images per batch (default: 32)")
    add_format_option(parser)
    add_progress_option(parser)


def _is_report(path: Path) -> bool:
    """Whether ``path`` is a report neuroxai wrote (it may be replaced by a new one)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        head = f.read(2048)
    return '<meta name="generator" content="neuroxai' in head


def run(args: argparse.Namespace) -> int:
    """Write the report; returns 0."""
    from neuroxai._io import prepare_output_file, write_text
    from neuroxai.errors import NeuroxaiError
    from neuroxai.report import REPORT_FILE, collect_report, render_report

    if args.gallery < 0 or args.batch_size < 1:
        raise NeuroxaiError(f"--gallery must be >= 0 and --batch-size >= 1; got {args.gallery} and {args.batch_size}.")
    name = resolve_model(args)  # --pretrained NAME: the shipped run directory (read-only), checksums verified
    if args.out is not None:
        out = Path(args.out)
    else:
        out = Path(f"{name}-report.html") if name is not None else Path(args.run_dir) / REPORT_FILE
    inputs = [args.data] if args.data is not None else []
    # A report is derived: an earlier report is replaced, any other file is refused.
    prepare_output_file(out, inputs=inputs, overwrite=True, ours=_is_report)
    data = collect_report(
        args.run_dir,
        data=args.data,
        gallery=args.gallery,
        method=args.method,
        batch_size=args.batch_size,
        progress=args.progress,
    )
    write_text(out, render_report(data))
    if args.format == "json":
        print_json({"report": str(out), "not_measured": data.missing, "gallery": len(data.gallery)})
    else:
        print(f"Wrote {out}")
        for section, why in data.missing.items():
            print(f"  {section}: not measured ({why})")
    return 0


COMMANDS: tuple[Command, ...] = (
    Command(
        name="report",
        help="write one self-contained HTML report of a run (metrics, calibration, explanations, gallery)",
        description=(
            "Read a run directory and write RUN_DIR/report.html: the model card, the data and its audit, accuracy "
            "plain and de-duplicated, per-class results, the confusion matrix, training curves, calibration "
            "(reliability diagram), the risk-coverage curve, explanation metrics when the run has them "
            "(xai_metrics.json) and a gallery of explained test images at their own resolution. Figures are embedded: "
            "the file opens from disk with no network. Sections whose data the run does not have say 'not measured'. "
            "Calibration curves and the gallery need the test images: the run's recorded data path, or --data."
        ),
        configure=_configure_report,
        run=run,
    ),
)
