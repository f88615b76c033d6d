"""``neuroxai calibrate``, and the calibration parts of ``evaluate`` and ``predict`` (referral, prediction sets, TTA)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from neuroxai.cli._commands import Command
from neuroxai.cli._common import (
    add_data_options,
    add_format_option,
    add_progress_option,
    dataset_options,
    fraction,
    positive_int,
    print_json,
    report_skipped,
)

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from neuroxai.data import Dataset
    from neuroxai.runs import CalibrationReport, Predictor, UncertaintyMetrics

__all__ = [
    "COMMANDS",
    "add_predict_options",
    "check_predict_options",
    "ensure_calibration",
    "predict_columns",
    "predict_header",
    "print_calibration",
    "run_calibrate",
    "run_dataset",
]


def _probability(text: str) -> float:
    """argparse type: a number in [0, 1]."""
    from neuroxai.cli._common import finite_float

    value = finite_float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1], e.g. 0.8; got {text!r}")
    return value


def _coverage(text: str) -> float:
    """argparse type: a coverage in (0, 1)."""
    value = fraction(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"expected a coverage between 0 and 1, e.g. 0.95; got {text!r}")
    return value


# --------------------------------------------------------------------------------------------- predict
def add_predict_options(r: argparse.ArgumentParser) -> None:
    """Add ``--refer-below``, ``--coverage``, ``--conformal``, ``--tta`` and ``--uncalibrated`` to ``predict``."""
    from neuroxai.runs import CONFORMAL_METHODS, DEFAULT_CONFORMAL

    r.add_argument(
        "--refer-below",
        type=_probability,
        default=None,
        metavar="P",
        help="add a column 'referred': yes where the top (calibrated) probability is under P, e.g. 0.9",
    )
    r.add_argument(
        "--coverage",
        type=_coverage,
        default=None,
        metavar="C",
        help="add a column 'set': the classes of a split-conformal prediction set that holds the true class with "
        "probability at least C (e.g. 0.95), calibrated on the run's validation split",
    )
    r.add_argument(
        "--conformal",
        choices=CONFORMAL_METHODS,
        default=DEFAULT_CONFORMAL,
        help=f"prediction-set method of --coverage: lac (smallest sets) or aps (adaptive sets); default: {DEFAULT_CONFORMAL}",
    )
    r.add_argument(
        "--tta",
        type=positive_int,
        default=1,
        metavar="N",
        help="average N passes of test-time augmentation (flips, small shifts) and MC-dropout where the model has "
        "dropout (default: 1, a plain prediction)",
    )
    r.add_argument(
        "--uncalibrated",
        action="store_true",
        help="the model's own probabilities, without the run's temperature scaling",
    )


def check_predict_options(args: argparse.Namespace, predictor: Predictor) -> float | None:
    """Refuse option combinations without a guarantee; the conformal threshold of ``--coverage`` (``None`` without it).

    Raises:
        NeuroxaiError: ``--coverage`` with ``--tta`` or ``--uncalibrated`` (the sets were calibrated on plain,
            calibrated predictions), or on a run without calibration.
    """
    from neuroxai.errors import NeuroxaiError

    if args.coverage is None:
        return None
    if args.tta != 1 or args.uncalibrated:
        flag = "--tta" if args.tta != 1 else "--uncalibrated"
        raise NeuroxaiError(
            f"--coverage cannot be combined with {flag}: the prediction sets were calibrated on the run's plain, "
            f"temperature-scaled predictions, and keep their coverage only for those. Drop {flag}."
        )
    return predictor.conformal_threshold(args.coverage, args.conformal)


def predict_header(args: argparse.Namespace) -> list[str]:
    """The extra CSV columns ``predict`` writes for these options."""
    return (["referred"] if args.refer_below is not None else []) + (["set"] if args.coverage is not None else [])


def predict_columns(args: argparse.Namespace, proba: np.ndarray, names: list[str], threshold: float | None) -> list[list[str]]:
    """The extra CSV cells of each row of ``proba``: ``referred`` (yes/no) and ``set`` (class names joined by ``|``)."""
    from neuroxai.runs import prediction_sets, refer

    columns: list[list[str]] = [[] for _ in range(len(proba))]
    if args.refer_below is not None:
        for row, flag in zip(columns, refer(proba, args.refer_below)):
            row.append("yes" if flag else "no")
    if threshold is not None:
        for row, members in zip(columns, prediction_sets(proba, threshold, args.conformal)):
            row.append("|".join(n for n, inside in zip(names, members) if inside))
    return columns


# --------------------------------------------------------------------------------------------- evaluate / calibrate
def run_dataset(args: argparse.Namespace, predictor: Predictor) -> Dataset:
    """The run's own dataset split again (fractions and seed from its spec unless given), so its validation and test
    sets are the ones it was trained with."""
    from neuroxai.data import Dataset

    data = predictor.spec.data if predictor.spec is not None else None

    def setting(given: Any, run_value: Any, default: Any) -> Any:
        return given if given is not None else (run_value if run_value is not None else default)

    ds = Dataset(
        args.data,
        val_fraction=setting(args.val_fraction, data.val_fraction if data else None, 0.15),
        test_fraction=setting(args.test_fraction, data.test_fraction if data else None, 0.15),
        seed=setting(args.seed, data.seed if data else None, 1337),
        progress=args.progress,
        **dataset_options(args),
    )
    return ds


def add_run_split_options(p: argparse.ArgumentParser) -> None:
    """The options that rebuild a run's own splits (read by :func:`run_dataset`), the batch size and the data options."""
    p.add_argument("--val-fraction", type=fraction, default=None, help="validation fraction (default: the run's)")
    p.add_argument(
        "--test-fraction",
        type=fraction,
        default=None,
        help="test fraction carved when DIR has no test split (default: the run's)",
    )
    p.add_argument("--seed", type=int, default=None, help="split seed (default: the run's)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="batch size (default: 32)")
    add_data_options(p)


def ensure_calibration(predictor: Predictor, dataset: Dataset, batch_size: int) -> bool:
    """Fit the predictor's calibration on ``dataset``'s validation split when the run has none; whether it did.

    The fit lives in memory only (``neuroxai calibrate`` stores it in the run).
    """
    import sys

    from neuroxai.runs import fit_calibration

    if predictor.calibration is not None:
        return False
    predictor.calibration = fit_calibration(
        predictor.model,
        dataset,
        input_shape=predictor.input_shape,
        input_range=predictor.input_range,
        batch_size=batch_size,
    )
    if predictor.calibration is not None:
        print(
            f"note: the run has no stored calibration; fitted one on {predictor.calibration.n} validation images now "
            "(`neuroxai calibrate RUN_DIR --data DIR` stores it in the run)",
            file=sys.stderr,
        )
    return predictor.calibration is not None


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _lines(key: str, u: UncertaintyMetrics) -> list[str]:
    b, a = u.before, u.after
    out = []
    if a is not None:
        out.append(
            f"{key:>10}: ECE {b.ece:.4f} -> {a.ece:.4f}  classwise ECE {b.classwise_ece:.4f} -> {a.classwise_ece:.4f}  "
            f"Brier {b.brier:.4f} -> {a.brier:.4f}  NLL {b.nll:.4f} -> {a.nll:.4f}"
        )
    else:
        out.append(f"{key:>10}: ECE {b.ece:.4f}  classwise ECE {b.classwise_ece:.4f}  Brier {b.brier:.4f}  NLL {b.nll:.4f}")
    rc = u.risk_coverage
    at = "  ".join(f"accuracy at {_pct(p.target)} coverage {_pct(p.accuracy)}" for p in rc.at)
    out.append(f"{'':>12}AURC {rc.aurc:.5f} (best reachable {rc.aurc_optimal:.5f})  {at}")
    for c in u.conformal:
        out.append(
            f"{'':>12}{c.method.upper()} sets for {_pct(c.target)}: coverage {_pct(c.coverage)}, mean size "
            f"{c.mean_set_size:.2f} (one class {_pct(c.singletons)}, empty {_pct(c.empty)})"
        )
    return out


def print_calibration(report: CalibrationReport | None, split: str) -> None:
    """Print the calibration part of an evaluation: before/after, risk-coverage, conformal sets."""
    if report is None:
        return
    if report.temperature is not None:
        print(
            f"calibration: temperature {report.temperature:.3f} (fitted on {report.n_calibration} "
            f"{report.calibration_split} images); before -> after temperature scaling:"
        )
    else:
        print("calibration (the run has no temperature):")
    rows = [(split, report.metrics)] + ([(f"{split}_dedup", report.dedup)] if report.dedup is not None else [])
    for key, u in rows:
        for line in _lines(key, u):
            print(line)


def _configure_calibrate(c: argparse.ArgumentParser) -> None:
    c.add_argument("run_dir", metavar="RUN_DIR", help="run directory")
    c.add_argument("--data", required=True, metavar="DIR", help="the data folder or CSV manifest the run was trained on")
    add_run_split_options(c)
    add_format_option(c)
    add_progress_option(c)


def _check_enough(n: int, source: Any, what: str = "") -> None:
    """Refuse to store a temperature fitted on fewer than ``MIN_CALIBRATION_SAMPLES`` validation images."""
    from neuroxai.errors import DataError
    from neuroxai.runs import MIN_CALIBRATION_SAMPLES

    if 0 < n < MIN_CALIBRATION_SAMPLES:
        raise DataError(
            f"The validation split of {source} holds {n} {what}image(s); calibrating needs at least {MIN_CALIBRATION_SAMPLES} "
            "(on fewer, the temperature fitted is a guess: one image gives the bound 20.0). Raise --val-fraction or add "
            "images; nothing was stored."
        )


def run_calibrate(args: argparse.Namespace) -> int:
    """Fit the run's calibration on its validation split and store it (spec and ``metrics.json``). Returns 0."""
    import dataclasses
    from pathlib import Path

    from neuroxai._io import write_json
    from neuroxai.errors import DataError, ModelError
    from neuroxai.runs import RunDirectory, fit_calibration, fit_ood, load

    run = RunDirectory(args.run_dir)
    if not Path(args.run_dir).is_dir() or run.read_spec() is None:
        raise ModelError(
            f"{args.run_dir} is not a run directory with neuroxai.json; `neuroxai calibrate` stores the calibration "
            "in a run's spec. Give the folder `neuroxai train` wrote."
        )
    predictor = load(args.run_dir)
    ds = run_dataset(args, predictor)
    report_skipped("neuroxai calibrate", ((s.path, s.reason) for s in ds.skipped))
    _check_enough(len(ds.labels("val")), ds.source)  # before the model runs
    calibration = fit_calibration(
        predictor.model, ds, input_shape=predictor.input_shape, input_range=predictor.input_range, batch_size=args.batch_size
    )
    if calibration is not None:
        _check_enough(calibration.n, ds.source, "readable ")  # some may have turned unreadable since indexing
    if calibration is None:
        raise DataError(
            f"Could not calibrate {args.run_dir}: the validation split of {ds.source} is empty or unreadable (or the model's "
            "outputs are not one distribution over classes). Give the data the run was trained on."
        )
    predictor.calibration = calibration
    ood = fit_ood(
        predictor.model, ds, input_shape=predictor.input_shape, input_range=predictor.input_range, batch_size=args.batch_size
    )
    report = predictor.evaluate(ds, batch_size=args.batch_size) if len(ds.labels("test")) else None
    with run.locked():
        spec = run.read_spec()
        assert spec is not None  # checked above, and we hold the lock
        write_json(run.spec_file, dataclasses.replace(spec, calibration=calibration, ood=ood).to_dict())
        if report is not None:
            write_json(run.metrics_file, report.to_dict())
    if args.format == "json":
        print_json(
            {
                "calibration": calibration.to_dict(),
                "ood": {k: v for k, v in ood.to_dict().items() if k not in ("means", "precision")} if ood else None,
                "evaluation": report.to_dict() if report is not None else None,
            }
        )
        return 0
    print(
        f"Calibrated {args.run_dir} on {calibration.n} validation images: temperature {calibration.temperature:.3f}, "
        f"NLL {calibration.nll_before:.4f} -> {calibration.nll_after:.4f}, ECE {calibration.ece_before:.4f} -> "
        f"{calibration.ece_after:.4f}; stored in {run.spec_file}" + (f" and {run.metrics_file}" if report else "")
    )
    if ood is not None:
        print(
            f"Out-of-distribution score fitted on {ood.n_fit} training images: above {ood.threshold:.3f} an image is "
            f"unlike the training data ({100 * ood.flagged:.1f}% of {ood.n_threshold} validation images)"
        )
    else:
        print("No out-of-distribution score: the model has no 'logits' layer, or the train or val split is empty")
    if report is not None:
        print_calibration(report.calibration, report.split)
    return 0


COMMANDS: tuple[Command, ...] = (
    Command(
        name="calibrate",
        help="fit temperature scaling, prediction sets and the out-of-distribution score of a run",
        description="Fit the temperature that makes RUN_DIR's probabilities calibrated, and the conformal scores of its "
        "prediction sets, on the validation split of DIR (rebuilt with the run's fractions and seed), and the "
        "out-of-distribution score (class means and covariance of the penultimate features on the training split, "
        "threshold on the validation split), and store them in RUN_DIR/neuroxai.json; re-evaluates the test split into "
        "metrics.json. Runs trained with this version have all of them from the end of training already.",
        configure=_configure_calibrate,
        run=run_calibrate,
    ),
)
