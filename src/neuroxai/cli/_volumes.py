"""What ``neuroxai predict`` and ``neuroxai explain`` share for scanner volumes (NIfTI, DICOM series).

One option set for both commands (window, convention, the per-volume rule), the split of the inputs
into image files and scanner volumes, reading volumes one at a time (bad ones skipped and reported, never
fatal), and the per-volume CSV (``volumes.csv``).
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from neuroxai.cli._common import positive_int

if TYPE_CHECKING:  # pragma: no cover
    from neuroxai.data import Volume, Window
    from neuroxai.volumes import VolumePrediction

__all__ = [
    "VOLUME_HEADER",
    "add_volume_options",
    "is_volume_csv",
    "iter_volumes",
    "parse_window",
    "predict_options",
    "volume_row",
    "volumes_csv_for",
]

#: First columns of a per-volume CSV (how an earlier one is recognised before it is replaced).
VOLUME_HEADER = ("path", "series", "answer", "evidence", "carried_by", "slices", "classified", "no_brain")


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a probability between 0 and 1, got {text!r}") from None
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise argparse.ArgumentTypeError(f"expected a probability between 0 and 1, got {text!r}")
    return value


def parse_window(text: str) -> Window:
    """``--window``: ``auto``, ``percentile``, ``dicom`` or ``CENTER,WIDTH`` as a :class:`~neuroxai.data.Window`."""
    from neuroxai.data import Window

    mode = text.strip().lower()
    if mode in ("auto", "percentile", "dicom"):
        return Window(mode=mode)  # type: ignore[arg-type]
    try:
        center, width = (float(v) for v in mode.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto, percentile, dicom or CENTER,WIDTH (e.g. 40,80), got {text!r}") from None
    if not (math.isfinite(center) and math.isfinite(width) and width > 0):
        raise argparse.ArgumentTypeError(f"expected a finite CENTER and a WIDTH > 0, got {text!r}")
    return Window(mode="fixed", center=center, width=width)


def add_volume_options(parser: argparse.ArgumentParser) -> None:
    """The scanner-volume options of ``predict`` and ``explain`` (same names, same defaults)."""
    from neuroxai.volumes import (
        DEFAULT_MAX_ASIDE,
        DEFAULT_MIN_KNOWN,
        DEFAULT_MIN_RUN,
        DEFAULT_RULE,
        DEFAULT_SLICE_THRESHOLD,
        DEFAULT_THRESHOLD,
        DEFAULT_TOP_K,
        NO_TUMOUR_CLASS,
        RULES,
    )

    group = parser.add_argument_group(
        "scanner volumes (NIfTI .nii/.nii.gz, DICOM files and folders)",
        "Every axial slice that holds brain is classified; slices unlike the training data (the run's "
        "out-of-distribution score) are set aside; each volume gets one answer by the per-volume rule: a tumour "
        "class, the no-tumour class, or refer (see the Volumes guide page).",
    )
    group.add_argument(
        "--window",
        type=parse_window,
        default="auto",
        metavar="MODE",
        help="how intensities become 8-bit slices: auto (the DICOM window where the series has one, else "
        "percentiles; default), percentile (0.5-99.5 %% of the non-zero voxels), dicom, or CENTER,WIDTH",
    )
    group.add_argument(
        "--convention",
        choices=("radiological", "neurological"),
        default="radiological",
        help="left-right display of the slices: radiological (patient's right on the image's left; default) or neurological",
    )
    group.add_argument(
        "--volume-rule",
        choices=RULES,
        default=DEFAULT_RULE,
        help="consistent: a tumour class needs adjacent known slices that agree, else no tumour or refer (default); "
        "top-k: the rule of earlier releases",
    )
    group.add_argument(
        "--volume-min-run",
        type=positive_int,
        default=DEFAULT_MIN_RUN,
        metavar="N",
        help=f"rule consistent: adjacent known slices a tumour class needs (default: {DEFAULT_MIN_RUN})",
    )
    group.add_argument(
        "--volume-slice-threshold",
        type=_probability,
        default=DEFAULT_SLICE_THRESHOLD,
        metavar="P",
        help=f"rule consistent: probability each of those slices needs (default: {DEFAULT_SLICE_THRESHOLD})",
    )
    group.add_argument(
        "--volume-min-known",
        type=positive_int,
        default=DEFAULT_MIN_KNOWN,
        metavar="N",
        help=f"rule consistent: slices like the training data a volume needs, else refer (default: {DEFAULT_MIN_KNOWN})",
    )
    group.add_argument(
        "--volume-max-aside",
        type=_probability,
        default=DEFAULT_MAX_ASIDE,
        metavar="SHARE",
        help=f"rule consistent: refer a scan when more than this share of its brain slices is unlike the training data "
        f"(default: {DEFAULT_MAX_ASIDE})",
    )
    group.add_argument(
        "--volume-top-k",
        type=positive_int,
        default=DEFAULT_TOP_K,
        metavar="K",
        help=f"rule top-k: a class's evidence is its mean probability over its K most confident slices (default: {DEFAULT_TOP_K})",
    )
    group.add_argument(
        "--volume-threshold",
        type=_probability,
        default=DEFAULT_THRESHOLD,
        metavar="P",
        help=f"rule top-k: evidence a tumour class needs to be the answer, else the no-tumour class (default: {DEFAULT_THRESHOLD})",
    )
    group.add_argument(
        "--volume-no-tumour",
        default=NO_TUMOUR_CLASS,
        metavar="CLASS",
        help=f"the run's no-tumour class (default: {NO_TUMOUR_CLASS}; without it in the run, the rule has none)",
    )


def _window(args: argparse.Namespace) -> Window:
    window = args.window
    return parse_window(window) if isinstance(window, str) else window


def predict_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments of :func:`~neuroxai.volumes.predict_volume` from the volume options."""
    return {
        "rule": args.volume_rule,
        "min_run": args.volume_min_run,
        "slice_threshold": args.volume_slice_threshold,
        "min_known": args.volume_min_known,
        "max_aside": args.volume_max_aside,
        "top_k": args.volume_top_k,
        "threshold": args.volume_threshold,
        "no_tumour": args.volume_no_tumour,
    }


def volume_count(inputs: Sequence[str]) -> tuple[int, Any]:
    """How many volume entries (NIfTI files, DICOM folders) ``inputs`` hold, and the :func:`find_volumes` result."""
    from neuroxai.data import find_volumes

    found = find_volumes(inputs)
    return len(found.nifti) + len(found.dicom), found


def iter_volumes(
    found: Any, args: argparse.Namespace, skipped: list[tuple[str, str]], named: Sequence[str] = ()
) -> Iterator[Volume]:
    """Read the volumes :func:`~neuroxai.data.find_volumes` found, one NIfTI file or DICOM folder at a time.

    The next unit is read on a background thread while the caller works on the current one (file reading
    and decompression release the GIL), so at most two units are in memory. A DICOM file named on its own
    in ``named`` (the command line) is its own source; DICOM files found in a folder, or named together, are
    read as their folder's series. Unreadable volumes go to ``skipped`` as ``(path, reason)``; reading never
    stops the run.
    """
    from concurrent.futures import ThreadPoolExecutor

    from neuroxai.data import iter_volumes as read_units

    units = read_units(found, window=_window(args), convention=args.convention, named=named)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="neuroxai-volume-reader") as pool:
        ahead = pool.submit(next, units, None)
        while (unit := ahead.result()) is not None:
            ahead = pool.submit(next, units, None)  # read the next unit while this one is classified
            volumes, bad = unit
            skipped.extend((s.path, s.reason) for s in bad)
            yield from volumes


def volume_header(class_names: Sequence[str], no_tumour: str | None) -> list[str]:
    """The per-volume CSV header: :data:`VOLUME_HEADER`, one evidence column per candidate class, then the slices
    set aside as unlike the training data and the rule's reason."""
    return [*VOLUME_HEADER, *[f"evidence_{c}" for c in class_names if c != no_tumour], "set_aside", "reason"]


def volume_row(pred: VolumePrediction, class_names: Sequence[str], no_tumour: str | None) -> list[Any]:
    """One volume's row under :func:`volume_header` (evidence left empty where the rule did not weigh a class)."""
    from neuroxai.volumes import slice_ranges

    answer = pred.answer
    strongest = pred.evidence.get(answer, None) if answer is not None else None
    if answer is not None and strongest is None and pred.evidence:  # a no-tumour answer: the evidence that fell short
        strongest = max(pred.evidence.values())
    return [
        pred.source,
        pred.series or "",
        answer if answer is not None else "",
        "" if strongest is None else f"{strongest:.6f}",
        "|".join(str(i) for i in pred.carried_by),
        pred.n_slices,
        len(pred.slices),
        slice_ranges(pred.skipped),
        *[(f"{pred.evidence[c]:.6f}" if c in pred.evidence else "") for c in class_names if c != no_tumour],
        slice_ranges(pred.set_aside),
        pred.reason,
    ]


def rule_no_tumour(class_names: Sequence[str], args: argparse.Namespace) -> str | None:
    """The no-tumour class the rule uses with these options (``None`` when the run has none)."""
    name = args.volume_no_tumour
    return name if name in class_names else None


def is_volume_csv(path: Any) -> bool:
    """Whether ``path`` is a per-volume CSV neuroxai wrote (its header starts with :data:`VOLUME_HEADER`)."""
    with open(Path(path), encoding="utf-8", errors="replace") as f:
        return f.readline(300).startswith(",".join(VOLUME_HEADER))


def volumes_csv_for(csv: str | os.PathLike[str]) -> Path:
    """``preds.csv`` -> ``preds.volumes.csv`` (beside it)."""
    p = Path(csv)
    stem = p.name[: -len(p.suffix)] if p.suffix else p.name
    return p.with_name(f"{stem}.volumes.csv")
