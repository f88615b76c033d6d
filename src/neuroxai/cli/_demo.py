"""``neuroxai demo``: the whole job on synthetic phantoms (or a real folder) in a few minutes."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from neuroxai.cli._commands import Command
from neuroxai.cli._common import add_data_options, add_overwrite_option, add_progress_option, dataset_options

__all__ = ["COMMANDS", "DEMO_DEFAULTS", "run"]

#: Demo settings on the synthetic phantoms, tuned to finish well inside five
#: minutes on two CPU cores (TensorFlow start-up included) at >= 95% test accuracy.
DEMO_DEFAULTS: dict[str, Any] = {
    "n_per_class": 200,
    "image_size": 96,
    "epochs": 30,
    "batch_size": 16,
    "learning_rate": 2e-3,
    # Patience above the epochs' plateau: stopping at ~20 epochs still gives 100% accuracy, but
    # Grad-CAM on the small pituitary masses is then unsettled (pointing game 0.56 vs 0.94).
    "early_stopping_patience": 12,
    "reduce_lr_patience": 3,
    # Phantom tumours are small (a meningioma is ~10 px across at 96 px): a
    # 12x12 Grad-CAM grid localizes them (pointing game ~0.95), the default
    # 6x6 grid does not (~0.7), so the demo's cnn keeps block2's resolution.
    "feature_stride": 8,
    # Mask guidance (Trainer(guidance="cam"), where the data has masks: the phantoms always do) keeps the
    # model's evidence on the tumour, so the maps the demo shows point at it for a reason, not by luck of the seed.
    "guidance_weight": 5.0,
    "n_explain": 8,
    "n_xai": 64,
    "seed": 0,
}


def _configure_demo(p: argparse.ArgumentParser) -> None:
    """Add the arguments of ``neuroxai demo``."""
    p.add_argument("--data", default=None, metavar="DIR", help="a real data folder or CSV manifest instead of phantoms")
    p.add_argument("--out", default="demo-run", metavar="DIR", help="run directory to write (default: ./demo-run)")
    add_overwrite_option(p, "an earlier demo run in DIR")
    add_data_options(p)
    p.add_argument(
        "--epochs",
        type=int,
        default=DEMO_DEFAULTS["epochs"],
        metavar="N",
        help=f"training epochs (default: {DEMO_DEFAULTS['epochs']})",
    )
    p.add_argument(
        "--image-size",
        type=int,
        default=None,
        metavar="PX",
        help=f"square image size (default: {DEMO_DEFAULTS['image_size']} for phantoms, the model's for --data)",
    )
    p.add_argument(
        "--n-per-class",
        type=int,
        default=DEMO_DEFAULTS["n_per_class"],
        metavar="N",
        help=f"phantoms per class (default: {DEMO_DEFAULTS['n_per_class']})",
    )
    p.add_argument("--seed", type=int, default=DEMO_DEFAULTS["seed"], help="random seed (default: 0)")
    p.add_argument(
        "--no-guidance",
        dest="guidance",
        action="store_false",
        help="train with cross-entropy alone, even where the data has tumour masks (default: mask guidance where it has)",
    )
    add_progress_option(p)


def _step(msg: str, t0: float) -> None:
    print(f"[{time.perf_counter() - t0:6.1f}s] {msg}", flush=True)


def _explain_and_measure(predictor: Any, ds: Any, out: Path, t0: float, progress: bool) -> None:
    """Explain test images with Grad-CAM and measure the maps (localization needs the dataset's masks)."""
    import numpy as np

    from neuroxai._io import save_figure
    from neuroxai.evaluation import evaluate_explanations
    from neuroxai.explain import Explainer

    h, w, c = predictor.input_shape
    arrays = ds.arrays("test", image_size=(h, w), channels=c, input_range=predictor.input_range, with_masks=ds.has_masks)
    x, y = arrays[0], arrays[1]
    masks = arrays[2] if ds.has_masks else None
    # Classes in turn (first glioma, first meningioma, ..., second glioma ...): every class is shown and measured.
    order = np.lexsort((y, _rank_within_class(y)))
    pick = order[: DEMO_DEFAULTS["n_explain"]]
    _step(f"Explaining {len(pick)} test images with Grad-CAM", t0)
    explanation = Explainer(predictor, method="gradcam").explain(x[pick])
    fig = explanation.plot(true_labels=y[pick])
    save_figure(fig, out / "gradcam.png")

    keep = order[: DEMO_DEFAULTS["n_xai"]]
    what = (
        "localization vs masks, deletion/insertion, randomization sanity, tumour reliance"
        if masks is not None
        else "deletion/insertion, randomization sanity"
    )
    _step(f"Measuring Grad-CAM on {len(keep)} test images ({what})", t0)
    report = evaluate_explanations(
        predictor, x[keep], None if masks is None else masks[keep], y[keep], "gradcam", progress=progress
    )
    report.save(out)
    for method in report.methods:
        loc = report.localization.get(method)
        if loc is not None and loc.n_scored:
            ov = loc.overall
            print(
                f"    {method} pointing game {ov.method.pointing_game:.3f} (uniform map {ov.uniform.pointing_game:.3f}, "
                f"centre prior {ov.center_prior.pointing_game:.3f}); energy in mask {ov.method.energy:.3f}"
            )
        faith = report.faithfulness.get(method)
        if faith is not None:
            fm, fr = faith.method, faith.random
            print(
                f"    {method} deletion AUC {fm.deletion.auc:.3f} (random {fr.deletion.auc:.3f}, lower is better); "
                f"insertion AUC {fm.insertion.auc:.3f} (random {fr.insertion.auc:.3f}, higher is better)"
            )
        sanity = report.sanity.get(method)
        if sanity is not None:
            verdict = "passed" if sanity.passed else "FAILED"
            print(
                f"    {method} randomization sanity check {verdict} (Spearman to the trained map after full "
                f"randomization {sanity.final.spearman:.3f})"
            )
    rel = report.reliance
    if rel is not None and rel.n_scored:
        print(
            f"    tumour reliance (no explainer): blurring the tumour drops the true class's probability by "
            f"{rel.overall.tumour_drop:.3f}, an equal area elsewhere by {rel.overall.control_drop:.3f} (ratio {rel.ratio:.1f})"
        )
    for failure in report.errors:
        print(f"    could not be measured: {failure.describe()}")


def _rank_within_class(y: Any) -> Any:
    """For each label, its position among the labels of its class (0 for the first glioma, 0 for the first meningioma ...)."""
    import numpy as np

    rank = np.empty(len(y), np.int64)
    for k in np.unique(y):
        idx = np.flatnonzero(y == k)
        rank[idx] = np.arange(len(idx))
    return rank


def run(args: argparse.Namespace) -> int:
    """Run the demo; returns 0."""
    t0 = time.perf_counter()
    from neuroxai._io import prepare_output_dir, write_json
    from neuroxai.data import Dataset, phantoms
    from neuroxai.report import write_report
    from neuroxai.runs import RunDirectory
    from neuroxai.training import MaskGuidance, Trainer

    out = Path(args.out)
    inputs = [args.data] if args.data is not None else []
    run_dir = RunDirectory(out)
    run_dir.check(inputs=inputs, overwrite=args.overwrite, flag="--out")  # before any data is read
    folder = prepare_output_dir(
        out,
        command="demo",
        inputs=inputs,
        overwrite=args.overwrite,
        names=("audit.json", "gradcam.png", "xai_metrics.json", "report.html"),
        adopt=run_dir.is_run(),
    )
    size = int(args.image_size or DEMO_DEFAULTS["image_size"])
    if args.data is None:
        _step(f"Building {args.n_per_class} synthetic phantoms per class at {size}x{size} (NOT medical data)", t0)
        ds = phantoms(n_per_class=args.n_per_class, image_size=size, seed=args.seed)
    else:
        _step(f"Reading {args.data}", t0)
        ds = Dataset(args.data, seed=args.seed, progress=args.progress, **dataset_options(args))
    counts = ds.counts()
    _step(
        "Data: " + ", ".join(f"{s} {sum(c.values())}" for s, c in counts.items()) + f"; classes {', '.join(ds.class_names)}", t0
    )

    _step("Auditing (unreadable files, exact and near duplicates)", t0)
    audit = ds.audit(progress=args.progress)
    write_json(out / "audit.json", audit.to_dict())
    for line in audit.format().splitlines()[:6]:
        print(f"    {line}")

    image_size: int | None = size
    if args.data is not None and args.image_size is None:
        image_size = None  # the model's own input size
    guided = bool(args.guidance and ds.has_masks)
    how = f"with mask guidance (weight {DEMO_DEFAULTS['guidance_weight']:g})" if guided else "with cross-entropy alone"
    _step(f"Training the 'cnn' model for up to {args.epochs} epochs, {how}", t0)
    trainer = Trainer(
        "cnn",
        epochs=args.epochs,
        image_size=image_size,
        batch_size=DEMO_DEFAULTS["batch_size"],
        learning_rate=DEMO_DEFAULTS["learning_rate"],
        seed=args.seed,
        progress=args.progress,
        early_stopping_patience=DEMO_DEFAULTS["early_stopping_patience"],
        reduce_lr_patience=DEMO_DEFAULTS["reduce_lr_patience"],
        model_options={"feature_stride": DEMO_DEFAULTS["feature_stride"]},
        guidance=MaskGuidance("cam", weight=DEMO_DEFAULTS["guidance_weight"]) if guided else None,
    )
    trainer.fit(ds, out_dir=out, overwrite=args.overwrite)
    evaluation = getattr(trainer, "metrics_", None)
    acc = evaluation.metrics.accuracy if evaluation is not None else None
    _step("Evaluated on the test split", t0)
    if evaluation is not None:
        rows = [("test", evaluation.metrics)] + ([("test_dedup", evaluation.dedup)] if evaluation.dedup is not None else [])
        for key, m in rows:
            auc = "n/a" if m.roc_auc is None else f"{m.roc_auc:.3f}"
            ece = "n/a" if m.ece is None else f"{m.ece:.3f}"
            print(f"    {key}: n={m.n}  accuracy={m.accuracy or 0:.3f}  macro ROC AUC={auc}  ECE={ece}")

    predictor = trainer.to_predictor()
    _explain_and_measure(predictor, ds, out, t0, args.progress)
    _step("Writing the report (report.html)", t0)
    write_report(out, dataset=ds, progress=args.progress)
    folder.finish(["audit.json", "gradcam.png", "report.html", *(p.name for p in out.glob("xai_*"))])

    elapsed = time.perf_counter() - t0
    print()
    print(f"Done in {elapsed:.0f} s. Test accuracy: {'n/a' if acc is None else f'{acc:.1%}'}.")
    print(f"Look in {out}/:")
    for name, what in (
        ("metrics.json", "accuracy, per-class precision/recall/F1, ROC AUC, calibration"),
        ("confusion_matrix.png", "where the model confuses classes"),
        ("training_curves.png", "loss and accuracy per epoch"),
        ("history.csv", "the same, as numbers"),
        ("audit.json", "data audit: duplicates, unreadable files"),
        ("gradcam.png", "Grad-CAM overlays of test images, titled true/predicted class"),
        ("xai_metrics.json", "pointing game, energy, IoU vs masks; deletion/insertion; sanity check"),
        ("xai_localization.png", "Grad-CAM pointing game per class beside uniform and centre references"),
        ("report.html", "everything above on one page: open it in a browser, print it, send it"),
        ("model.keras", "the model; load it with neuroxai.load(" + repr(str(out)) + ")"),
    ):
        if (out / name).exists():
            print(f"  {name:<22} {what}")
    if args.data is None:
        print("The phantoms are synthetic pictures, not medical data; run `neuroxai demo --data DIR` on a real folder.")
    sys.stdout.flush()
    return 0


COMMANDS: tuple[Command, ...] = (
    Command(
        name="demo",
        help="train, evaluate and save a CNN on synthetic phantoms (no download) or on --data DIR",
        description=(
            "The whole job in a few minutes: build synthetic brain MRI phantoms (NOT medical data; or read --data DIR), "
            "audit them, train the 'cnn' model, evaluate it on the test split and write a run directory with the "
            "model, metrics and figures. Prints where to look."
        ),
        configure=_configure_demo,
        run=run,
    ),
)
