"""Benchmark: calibration, referral and prediction sets of a trained run on its real test set; does TTA help?

Uses neuroxai's public API only. For the run given:

1. the run's own split is rebuilt (fractions and seed from its ``neuroxai.json``) and
   its calibration is fitted on the **validation** split
   (:func:`neuroxai.runs.fit_calibration`: temperature scaling and the conformal
   scores);
2. the **test** split is evaluated once, plainly and de-duplicated
   (:func:`neuroxai.runs.evaluate_calibration`): ECE, classwise ECE, Brier and NLL
   before/after temperature scaling, the risk-coverage curve and AURC, accuracy at
   90% / 95% coverage, and LAC / APS prediction sets for 95% coverage;
3. test-time augmentation (:func:`neuroxai.runs.tta_probabilities`; flips and small
   shifts, MC-dropout, and both) with ``--tta`` passes is compared with the plain
   calibrated prediction by AURC, with a paired bootstrap 95% interval of the
   difference (the verdict says "improves" only when the whole interval is below 0).

It writes ``calibration.json`` (every number), ``summary.rst`` (the tables
docs/results.rst includes; built from the JSON alone) and ``calibration.png``
(reliability diagram before/after, risk-coverage curves) to ``--out``.

Example (the numbers of docs/results.rst, section "Calibration, referral and prediction sets")::

    python benchmarks/calibration.py --run /work/runs/kaggle-cnn --data ../shared/data/brain-tumor-mri \\
        --out docs/results/calibration

Runs in about a minute on 2 CPU cores for the 128 px cnn (``--tta 4``); ``--report-only``
rebuilds the table and figure from an existing ``calibration.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

#: Coverage of the prediction sets, and the published target: empirical coverage within this many points of it.
COVERAGE = 0.95
TARGET_POINTS = 1.5
BOOTSTRAP = 2000
#: Test-time variants compared with the plain prediction: (key, label, flips and shifts, MC-dropout).
VARIANTS = (
    ("tta", "flips + shifts", True, False),
    ("mc_dropout", "MC-dropout", False, True),
    ("tta_mc", "flips + shifts + MC-dropout", True, True),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, metavar="RUN_DIR", help="a trained run directory")
    p.add_argument("--data", default=os.environ.get("NEUROXAI_DATA"), metavar="DIR", help="its data (default: $NEUROXAI_DATA)")
    p.add_argument("--out", default="docs/results/calibration", metavar="DIR", help="where the JSON, table and figure go")
    p.add_argument("--tta", type=int, default=4, metavar="N", help="passes of each test-time variant (default: 4)")
    p.add_argument("--batch-size", type=int, default=64, help="prediction batch size (default: 64)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    p.add_argument("--report-only", action="store_true", help="only rebuild summary.rst and calibration.png from the JSON")
    args = p.parse_args(argv)
    if not args.report_only and not args.data:
        p.error("--data (or NEUROXAI_DATA) is required")
    return args


def _selective(y: Any, proba: Any) -> dict[str, Any]:
    """AURC, accuracy at 95% coverage and ECE of one set of probabilities."""
    from neuroxai.runs import expected_calibration_error, risk_coverage

    rc = risk_coverage(y, proba)
    return {
        "n": len(y),
        "accuracy": float((proba.argmax(axis=1) == y).mean()),
        "ece": expected_calibration_error(y, proba),
        "aurc": rc.aurc,
        "eaurc": rc.eaurc,
        "accuracy_at_95": rc.accuracy_at(0.95),
        "curve": {"coverage": list(rc.coverage), "risk": list(rc.risk)},
    }


def _bootstrap_diff(y: Any, base: Any, other: Any, rounds: int, seed: int) -> dict[str, float]:
    """Paired bootstrap of AURC(other) - AURC(base): the observed difference and a 95% percentile interval."""
    import numpy as np

    from neuroxai.runs import risk_coverage

    rng = np.random.default_rng(seed)
    diffs = np.empty(rounds)
    for r in range(rounds):
        idx = rng.integers(0, len(y), len(y))
        diffs[r] = risk_coverage(y[idx], other[idx], ()).aurc - risk_coverage(y[idx], base[idx], ()).aurc
    observed = risk_coverage(y, other, ()).aurc - risk_coverage(y, base, ()).aurc
    low, high = np.percentile(diffs, [2.5, 97.5])
    return {"difference": float(observed), "low": float(low), "high": float(high)}


def _exchangeable_check(y: Any, proba: Any, rounds: int, seed: int) -> dict[str, Any]:
    """Diagnostic only: LAC sets calibrated on a random half of the test set, measured on the other half.

    Both halves are exchangeable by construction, so this shows what the method
    reaches when its assumption holds; the headline numbers never use test labels.
    """
    import numpy as np

    from neuroxai.runs import conformal_metrics, conformal_scores

    rng = np.random.default_rng(seed)
    got, sizes = [], []
    half = len(y) // 2
    for _ in range(rounds):
        idx = rng.permutation(len(y))
        cal, test = idx[:half], idx[half:]
        m = conformal_metrics(y[test], proba[test], conformal_scores(y[cal], proba[cal], "lac"), COVERAGE, "lac")
        got.append(m.coverage)
        sizes.append(m.mean_set_size)
    return {
        "rounds": rounds,
        "n_calibration": half,
        "coverage_mean": float(np.mean(got)),
        "coverage_sd": float(np.std(got)),
        "mean_set_size": float(np.mean(sizes)),
    }


def _verdict(ci: dict[str, float]) -> str:
    if ci["high"] < 0:
        return "improves"
    if ci["low"] > 0:
        return "worsens"
    return "no clear difference"


def measure(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    import neuroxai
    from neuroxai.data import Dataset
    from neuroxai.runs import evaluate_calibration, fit_calibration, log_probabilities, predict_array, tta_probabilities
    from neuroxai.runs._uncertainty import has_dropout

    t0 = time.perf_counter()
    predictor = neuroxai.load(args.run)
    spec = predictor.spec
    data = spec.data if spec is not None else None
    ds = Dataset(
        args.data,
        val_fraction=data.val_fraction if data else 0.15,
        test_fraction=data.test_fraction if data else 0.15,
        seed=data.seed if data and data.seed is not None else 1337,
        progress=False,
    )
    size, channels, rng = predictor.input_shape[:2], predictor.input_shape[2], predictor.input_range
    calibration = fit_calibration(
        predictor.model, ds, input_shape=predictor.input_shape, input_range=rng, batch_size=args.batch_size, head=predictor.head
    )
    if calibration is None:
        sys.exit(f"Could not calibrate {args.run}: no validation images.")
    val_seconds = time.perf_counter() - t0
    val = ds.read_split("val", image_size=size, channels=channels, input_range=rng)
    val_y = val.labels
    val_accuracy = float(
        (predict_array(predictor.model, val.x, args.batch_size, head=predictor.head).argmax(axis=1) == val_y).mean()
    )

    read = ds.read_split("test", image_size=size, channels=channels, input_range=rng)
    x, y = read.x, read.labels
    dup = np.isin(read.positions, np.asarray(ds.duplicate_test_indices(), dtype=np.int64))
    t1 = time.perf_counter()
    raw = predict_array(predictor.model, x, args.batch_size, head=predictor.head)
    plain_seconds = time.perf_counter() - t1
    report = evaluate_calibration(y, log_probabilities(raw), calibration, duplicates=np.flatnonzero(dup), coverage=COVERAGE)
    predictor.calibration = calibration
    calibrated = predictor.predict_batch(x, args.batch_size)  # the probabilities `neuroxai predict` gives

    sets: dict[str, Any] = {"plain": {"all": _selective(y, calibrated), "dedup": _selective(y[~dup], calibrated[~dup])}}
    tta: list[dict[str, Any]] = []
    for key, label, augment, mc in VARIANTS:
        if mc and not has_dropout(predictor.model):
            continue
        t2 = time.perf_counter()
        p = tta_probabilities(
            predictor.model,
            x,
            args.tta,
            head=predictor.head,
            temperature=calibration.temperature,
            batch_size=args.batch_size,
            mc_dropout=mc,
            augment=augment,
        )
        seconds = time.perf_counter() - t2
        entry: dict[str, Any] = {"key": key, "label": label, "passes": args.tta, "seconds": round(seconds, 1)}
        for name, keep in (("all", np.ones(len(y), bool)), ("dedup", ~dup)):
            entry[name] = _selective(y[keep], p[keep])
            entry[name]["aurc_difference"] = _bootstrap_diff(y[keep], calibrated[keep], p[keep], BOOTSTRAP, args.seed)
            entry[name]["verdict"] = _verdict(entry[name]["aurc_difference"])
        tta.append(entry)

    lac = report.metrics.conformal_for("lac")
    return {
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "run": str(args.run),
        "model": spec.model if spec is not None else predictor.model.name,
        "data": str(args.data),
        "class_names": list(predictor.class_names),
        "n_val": len(val_y),
        "val_accuracy": val_accuracy,
        "calibration": {k: v for k, v in calibration.to_dict().items() if not k.endswith("_scores")},
        "report": report.to_dict(),
        "exchangeable_check": _exchangeable_check(y, calibrated, 200, args.seed),
        "plain": sets["plain"],
        "tta": tta,
        "target": {
            "coverage": COVERAGE,
            "points": TARGET_POINTS,
            "met": lac is not None and abs(lac.coverage - COVERAGE) * 100 <= TARGET_POINTS,
        },
        "seconds": {"calibrate_on_val": round(val_seconds, 1), "plain_test": round(plain_seconds, 1)},
        "versions": dict(spec.versions) if spec is not None else {},
    }


# --------------------------------------------------------------------------------------------- report (from the JSON)
def _p(v: float | None, digits: int = 1) -> str:
    return "n/a" if v is None else f"{100 * v:.{digits}f}%"


def _f(v: float | None, digits: int = 4) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        out.append(f"   * - {row[0]}")
        out.extend(f"     - {cell}" for cell in row[1:])
    return [*out, ""]


def summary_rst(result: dict[str, Any]) -> str:
    """The tables of docs/results.rst, from the JSON alone."""
    from neuroxai.runs import CalibrationReport

    report = CalibrationReport.from_dict(result["report"])
    cal = result["calibration"]
    sets = [("test", report.metrics), ("test, de-duplicated", report.dedup)]
    plain = result["plain"]
    lines = [
        f"Run: ``{result['model']}`` (``{result['run']}``), test accuracy {_p(plain['all']['accuracy'], 2)} "
        f"(n={plain['all']['n']}), de-duplicated {_p(plain['dedup']['accuracy'], 2)} (n={plain['dedup']['n']}); "
        f"validation accuracy {_p(result.get('val_accuracy'), 2)} (n={result['n_val']}).",
        "",
        f"Temperature fitted on the {cal['n']} validation images: **T = {cal['temperature']:.3f}** "
        f"(validation NLL {cal['nll_before']:.4f} -> {cal['nll_after']:.4f}, "
        f"validation ECE {cal['ece_before']:.4f} -> {cal['ece_after']:.4f}).",
        "",
    ]
    rows = []
    for name, u in sets:
        if u is None or u.after is None:
            continue
        b, a = u.before, u.after
        rows.append(
            [
                f"{name} (n={u.n})",
                f"{_f(b.ece)} -> {_f(a.ece)}",
                f"{_f(b.classwise_ece)} -> {_f(a.classwise_ece)}",
                f"{_f(b.brier)} -> {_f(a.brier)}",
                f"{_f(b.nll)} -> {_f(a.nll)}",
            ]
        )
    lines += _table(["Test set", "ECE", "Classwise ECE", "Brier", "NLL"], rows)
    rows = []
    for name, u in sets:
        if u is None:
            continue
        rc = u.risk_coverage
        lac, aps = u.conformal_for("lac"), u.conformal_for("aps")
        rows.append(
            [
                f"{name} (n={u.n})",
                f"{_f(rc.aurc, 5)} (best {_f(rc.aurc_optimal, 5)})",
                _p(rc.accuracy_at(0.9)),
                _p(rc.accuracy_at(0.95)),
                f"{_p(lac.coverage)}, {lac.mean_set_size:.3f}, {_p(lac.empty)}" if lac else "n/a",
                f"{_p(aps.coverage)}, {aps.mean_set_size:.3f}, {_p(aps.empty)}" if aps else "n/a",
            ]
        )
    lines += _table(
        [
            "Test set",
            "AURC (lower is better)",
            "Accuracy at 90% coverage",
            "Accuracy at 95% coverage",
            f"LAC sets for {_p(report.coverage, 0)}: coverage, mean size, empty",
            f"APS sets for {_p(report.coverage, 0)}: coverage, mean size, empty",
        ],
        rows,
    )
    target = result["target"]
    lac = report.metrics.conformal_for("lac")
    if lac is not None:
        off = 100 * (lac.coverage - target["coverage"])
        lines += [
            f"Target: LAC coverage within +-{target['points']} points of {_p(target['coverage'], 0)} on the test set: "
            f"**{'met' if target['met'] else 'not met'}** ({_p(lac.coverage)}, {off:+.1f} points).",
            "",
        ]
    check = result.get("exchangeable_check")
    if check:
        lines += [
            f"Diagnostic (uses test labels, so never a headline): LAC sets calibrated on a random half of the test "
            f"set ({check['n_calibration']} images) and measured on the other half cover "
            f"{_p(check['coverage_mean'], 2)} on average (sd {100 * check['coverage_sd']:.2f} points over "
            f"{check['rounds']} random halves; mean set size {check['mean_set_size']:.3f}).",
            "",
        ]
    rows = []
    for entry in result["tta"]:
        for name, key in (("test", "all"), ("de-dup.", "dedup")):
            e, ci = entry[key], entry[key]["aurc_difference"]
            rows.append(
                [
                    f"{entry['label']} ({entry['passes']} passes), {name}",
                    f"{_f(plain[key]['aurc'], 5)} -> {_f(e['aurc'], 5)}",
                    f"{ci['difference']:+.5f} [{ci['low']:+.5f}, {ci['high']:+.5f}]",
                    f"**{e['verdict']}**",
                    f"{_p(plain[key]['accuracy'], 2)} -> {_p(e['accuracy'], 2)}",
                    f"{_f(plain[key]['ece'])} -> {_f(e['ece'])}",
                    f"{entry['seconds']} s",
                ]
            )
    lines += _table(
        [
            "Test-time variant",
            "AURC plain -> variant",
            "Difference [95% bootstrap interval]",
            "Verdict",
            "Accuracy",
            "ECE",
            "Time (test set)",
        ],
        rows,
    )
    return "\n".join(lines)


def figure(result: dict[str, Any], path: Path) -> None:
    """Reliability diagram before/after temperature scaling and risk-coverage curves (plain and TTA), de-duplicated test."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neuroxai._io import save_figure
    from neuroxai.runs import CalibrationReport

    report = CalibrationReport.from_dict(result["report"])
    u = report.headline()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.2))
    ax1.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfect calibration")
    for metrics, label, marker in ((u.before, "model", "o"), (u.after, f"T = {report.temperature:.2f}", "s")):
        if metrics is None:
            continue
        bins = metrics.reliability
        pts = [(c, a) for c, a in zip(bins.confidence, bins.accuracy) if c is not None and a is not None]
        ax1.plot([c for c, _ in pts], [a for _, a in pts], marker=marker, label=f"{label} (ECE {metrics.ece:.4f})")
    ax1.set(xlabel="confidence", ylabel="accuracy", title="Reliability, de-duplicated test set", xlim=(0, 1), ylim=(0, 1.02))
    ax1.legend(loc="lower right", fontsize=8)
    key = "dedup" if report.dedup is not None else "all"
    curves = [("plain", result["plain"][key])] + [(e["label"], e[key]) for e in result["tta"]]
    for label, e in curves:
        ax2.plot(e["curve"]["coverage"], e["curve"]["risk"], label=f"{label} (AURC {e['aurc']:.5f})")
    ax2.set(xlabel="coverage (fraction kept)", ylabel="risk (error rate of the kept)", title="Risk-coverage", xlim=(0.5, 1))
    ax2.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    json_path = out / "calibration.json"
    from neuroxai._io import write_json, write_text

    if args.report_only:
        result = json.loads(json_path.read_text(encoding="utf-8"))
    else:
        t0 = time.perf_counter()
        result = measure(args)
        result["seconds"]["total"] = round(time.perf_counter() - t0, 1)
        write_json(json_path, result)
    write_text(out / "summary.rst", summary_rst(result))
    figure(result, out / "calibration.png")
    print(summary_rst(result))
    print(f"Wrote {json_path}, {out / 'summary.rst'} and {out / 'calibration.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
