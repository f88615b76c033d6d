"""Benchmark: do the explanations point at the tumour on real MRI? Measured on held-out patients of the figshare masks.

One command runs every stage; each stage skips what is already done (``--force`` redoes it):

1. **train**: ``cnn`` models on the figshare training patients (validation and
   test patients carved by patient, 3 classes), without guidance and with mask
   guidance (``Trainer(guidance=...)``), written as run directories under
   ``--runs``;
2. **evaluate**: every run, and every Kaggle-trained run given with
   ``--kaggle-run`` (4 classes; many figshare slices also sit in the Kaggle set,
   resized), on the figshare ``--split`` (``val`` while choosing, ``test`` once for
   the record): accuracy; localization of every explanation method against the
   radiologists' masks (pointing game, energy, IoU, Dice, pixel AP, per class)
   beside the uniform and centre-prior maps; tumour reliance (explainer-free);
   deletion/insertion and the randomization sanity check for the main methods.
   One JSON per run in ``--out``;
3. **report**: from those JSON files only, ``localization.json`` (every number),
   ``summary.rst`` (the tables the results page includes) and the figures
   ``localization_bars.png`` and ``reliance.png``; and ``examples.png``: held-out
   slices with the radiologist's outline and the maps of the unguided and the
   guided model side by side.

Example (the figures of docs/results.rst, section "Localization on real masks")::

    python benchmarks/localization.py --figshare ../shared/data/figshare-brain-tumor/manifest.csv \\
        --kaggle-run /work/runs/kaggle-cnn --runs /work/runs/localization --split test \\
        --out docs/results/localization

Choices are made on the validation patients: ``--stage tune`` trains one short
run per guidance weight and writes ``tuning.json`` (validation accuracy,
Grad-CAM-family localization, tumour reliance); the test patients are
evaluated once, with the weight chosen there.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Every registered explanation method is localized (at the model's target layer, "features"), plus LayerCAM at
#: an earlier, finer layer (EARLY_LAYER: 16x16 at 128 px in every cnn); DEEP_METHODS also get deletion/insertion
#: and the sanity check.
METHODS = (
    "gradcam",
    "gradcam++",
    "layercam",
    "hirescam",
    "scorecam",
    "saliency",
    "smoothgrad",
    "integrated_gradients",
    "occlusion",
)
EARLY_LAYER = "block1_out"
DEEP_METHODS = ("gradcam", "layercam", "saliency")


@dataclass(frozen=True)
class Config:
    """One figshare-trained model."""

    name: str
    label: str
    guidance: str | None = None
    weight: float = 1.0
    feature_stride: int = 8


#: The figshare runs: the unguided baseline, both kinds of guidance, and the coarser map for the finer-maps question.
#: The cam weight (5) was chosen on validation patients (docs/results.rst, "How the guidance weight was chosen").
CONFIGS = (
    Config("figshare-cnn", "cnn, no guidance"),
    Config("figshare-cnn-cam", "cnn, guidance cam (w=5)", guidance="cam", weight=5.0),
    Config("figshare-cnn-gradients", "cnn, guidance gradients (w=1)", guidance="gradients", weight=1.0),
    Config("figshare-cnn-cam-stride16", "cnn stride 16, guidance cam (w=5)", guidance="cam", weight=5.0, feature_stride=16),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--figshare",
        default=os.environ.get("NEUROXAI_FIGSHARE"),
        metavar="CSV",
        help="figshare manifest.csv (default: $NEUROXAI_FIGSHARE)",
    )
    p.add_argument(
        "--kaggle-run", action="append", default=[], metavar="RUN_DIR", help="a run trained on the Kaggle set (repeatable)"
    )
    p.add_argument("--runs", required=True, metavar="DIR", help="where the figshare run directories go (outside the repository)")
    p.add_argument("--out", required=True, metavar="DIR", help="where the JSON, tables and figures go")
    p.add_argument(
        "--split", choices=("val", "test"), default="val", help="patients evaluated (default: val; test once, for the record)"
    )
    p.add_argument(
        "--configs",
        nargs="+",
        default=None,
        metavar="NAME",
        help=f"figshare runs to use (default: {', '.join(c.name for c in CONFIGS)})",
    )
    p.add_argument("--epochs", type=int, default=30, help="training epochs (default: 30)")
    p.add_argument("--image-size", type=int, default=128, help="input size of the figshare models (default: 128)")
    p.add_argument("--weight", type=float, default=None, help="guidance weight of the guided configs (default: each config's)")
    p.add_argument("--seed", type=int, default=1337, help="seed of the patient split and of training (default: 1337)")
    p.add_argument("--n-faithfulness", type=int, default=96, help="images for deletion/insertion (default: 96)")
    p.add_argument("--n-sanity", type=int, default=16, help="images for the randomization check (default: 16)")
    p.add_argument("--stage", choices=("all", "train", "evaluate", "report", "tune"), default="all")
    p.add_argument(
        "--tune-weights",
        nargs="+",
        type=float,
        default=[0.0, 1.0, 3.0, 5.0, 10.0],
        metavar="W",
        help="stage tune: cam guidance weights tried on validation patients (0: no guidance)",
    )
    p.add_argument("--tune-epochs", type=int, default=12, help="stage tune: epochs per run (default: 12)")
    p.add_argument("--force", action="store_true", help="redo stages whose output exists")
    args = p.parse_args(argv)
    if not args.figshare:
        p.error("no figshare manifest: pass --figshare CSV or set NEUROXAI_FIGSHARE")
    if Path(args.figshare).is_dir():
        args.figshare = str(Path(args.figshare) / "manifest.csv")
    return args


def log(msg: str, t0: float) -> None:
    print(f"[{time.perf_counter() - t0:7.1f}s] {msg}", flush=True)


def figshare(args: argparse.Namespace) -> Any:
    from neuroxai import Dataset

    return Dataset(args.figshare, val_fraction=0.15, test_fraction=0.15, seed=args.seed, progress=False)


def configs(args: argparse.Namespace) -> list[Config]:
    chosen = [c for c in CONFIGS if args.configs is None or c.name in args.configs]
    if args.weight is not None:
        chosen = [Config(c.name, c.label, c.guidance, args.weight if c.guidance else c.weight, c.feature_stride) for c in chosen]
    return chosen


# ---------------------------------------------------------------------------------------------------- train
def train(args: argparse.Namespace, ds: Any, t0: float) -> None:
    from neuroxai import Trainer
    from neuroxai.training import MaskGuidance

    for cfg in configs(args):
        run = Path(args.runs) / cfg.name
        if (run / "model.keras").is_file() and not args.force:
            log(f"{cfg.name}: trained already ({run})", t0)
            continue
        guidance = MaskGuidance(cfg.guidance, weight=cfg.weight) if cfg.guidance else None
        trainer = Trainer(
            "cnn",
            epochs=args.epochs,
            image_size=args.image_size,
            seed=args.seed,
            model_options={"feature_stride": cfg.feature_stride},
            guidance=guidance,
            progress=True,
        )
        log(f"{cfg.name}: training ({cfg.label}, {args.epochs} epochs) -> {run}", t0)
        start = time.perf_counter()
        trainer.fit(ds, out_dir=run, overwrite=args.force)  # --force: train again over a finished run
        seconds = time.perf_counter() - start
        (run / "benchmark.json").write_text(json.dumps({"train_seconds": round(seconds, 1), "label": cfg.label}, indent=2))
        log(f"{cfg.name}: {trainer.epochs_trained_} epochs in {seconds / 60:.1f} min", t0)


# ---------------------------------------------------------------------------------------------------- evaluate
def evaluate_run(run: Path, label: str, ds: Any, args: argparse.Namespace, t0: float) -> dict[str, Any]:
    """Everything measured for one run on the figshare split, as JSON values."""
    import numpy as np

    import neuroxai
    from neuroxai.evaluation import Faithfulness, Localization, Sanity, TumourReliance, evaluate_explanations, named_explain_fn
    from neuroxai.runs import predict_array

    predictor = neuroxai.load(run)
    h, w, c = predictor.input_shape
    x, y_data, masks = ds.arrays(args.split, image_size=(h, w), channels=c, input_range=predictor.input_range, with_masks=True)
    names = list(predictor.class_names)
    y = np.asarray([names.index(ds.class_names[int(k)]) for k in y_data], np.int64)  # the model's class order
    probs = predict_array(predictor.model, x, 64)
    pred = probs.argmax(axis=1)
    figshare_classes = [names.index(n) for n in ds.class_names]
    pred3 = np.asarray(figshare_classes)[probs[:, figshare_classes].argmax(axis=1)]  # among the three tumour classes
    start = time.perf_counter()
    methods: dict[str, Any] = {m: m for m in METHODS}
    methods[f"layercam@{EARLY_LAYER}"] = named_explain_fn("layercam", target_layer=EARLY_LAYER)
    broad = evaluate_explanations(
        predictor,
        x,
        masks,
        y,
        methods,
        metrics=[Localization(), TumourReliance()],
        class_names=names,
        batch_size=64,
        seed=0,
    )
    log(f"{run.name}: localization of {len(methods)} methods and reliance in {time.perf_counter() - start:.0f} s", t0)
    start = time.perf_counter()
    deep = evaluate_explanations(
        predictor,
        x,
        masks,
        y,
        list(DEEP_METHODS),
        metrics=[Faithfulness(n_images=args.n_faithfulness), Sanity(n_images=args.n_sanity)],
        class_names=names,
        batch_size=64,
        seed=0,
    )
    log(f"{run.name}: deletion/insertion and sanity of {len(DEEP_METHODS)} methods in {time.perf_counter() - start:.0f} s", t0)
    spec = predictor.spec
    return {
        "run": run.name,
        "label": label,
        "trained_on": "figshare" if run.name.startswith("figshare") else "kaggle",
        "split": args.split,
        "n_images": len(x),
        "n_patients": len(set(ds.groups(args.split))),
        "image_size": [h, w, c],
        "classes": names,
        "accuracy": float((pred == y).mean()),
        "accuracy_3_classes": float((pred3 == y).mean()),
        "settings": spec.settings if spec is not None else {},
        "epochs_trained": spec.epochs_trained if spec is not None else None,
        "localization": {m: r.to_dict() for m, r in broad.localization.items()},
        "reliance": broad.reliance.to_dict() if broad.reliance is not None else None,
        "faithfulness": {m: r.to_dict() for m, r in deep.faithfulness.items()},
        "sanity": {m: r.to_dict() for m, r in deep.sanity.items()},
        "errors": [e.to_dict() for e in (*broad.errors, *deep.errors)],
    }


def evaluate(args: argparse.Namespace, ds: Any, t0: float) -> None:
    from neuroxai._io import write_json

    out = Path(args.out) / args.split
    runs = [(Path(args.runs) / c.name, c.label) for c in configs(args)]
    runs += [(Path(r), f"{Path(r).name} (trained on Kaggle)") for r in args.kaggle_run]
    for run, label in runs:
        dest = out / f"{run.name}.json"
        if dest.is_file() and not args.force:
            log(f"{run.name}: evaluated already ({dest})", t0)
            continue
        if not (run / "model.keras").is_file():
            log(f"{run.name}: no model at {run}; train it first", t0)
            continue
        write_json(dest, evaluate_run(run, label, ds, args, t0))
        log(f"{run.name}: wrote {dest}", t0)


# ---------------------------------------------------------------------------------------------------- report
def _fmt(v: Any, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def report(args: argparse.Namespace, ds: Any, t0: float) -> None:
    from neuroxai._io import write_json, write_text

    folder = Path(args.out) / args.split
    results = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json")) if p.name != "localization.json"]
    if not results:
        log(f"No evaluations in {folder}; run the evaluate stage first", t0)
        return
    order = {c.name: i for i, c in enumerate(CONFIGS)}
    results.sort(key=lambda r: (r["trained_on"] != "kaggle", order.get(r["run"], 99)))
    write_json(folder / "localization.json", {"split": args.split, "results": [_compact(r) for r in results]})
    write_text(folder / "summary.rst", summary_rst(results, args.split))
    bars(results, folder / "localization_bars.png")
    reliance_figure(results, folder / "reliance.png")
    log(f"Wrote {folder}/localization.json, summary.rst, localization_bars.png and reliance.png", t0)
    tuning = Path(args.out) / "tuning.json"
    if tuning.is_file():
        write_text(Path(args.out) / "tuning.rst", tuning_rst(json.loads(tuning.read_text())))
        log(f"Wrote {Path(args.out)}/tuning.rst", t0)
    pair = [Path(args.runs) / n for n in ("figshare-cnn", "figshare-cnn-cam")]
    if all((p / "model.keras").is_file() for p in pair):
        examples(pair, ds, args.split, folder / "examples.png")
        log(f"Wrote {folder}/examples.png", t0)


def _compact(obj: Any) -> Any:
    """``obj`` without its per-image lists (long lists of numbers), for the copy the docs keep."""
    if isinstance(obj, dict):
        return {k: _compact(v) for k, v in obj.items() if not (isinstance(v, list) and len(v) > 64)}
    if isinstance(obj, list):
        return [_compact(v) for v in obj]
    return obj


def tuning_rst(tuning: dict[str, Any]) -> str:
    """The table of the guidance runs tried on validation patients, from ``tuning.json``."""
    lines = [
        ".. Generated by benchmarks/localization.py from tuning.json (validation patients); do not edit.",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - run",
        "     - guidance",
        "     - val. accuracy",
        "     - Grad-CAM pointing game",
        "     - Grad-CAM energy",
        "     - pixel AP",
        "     - reliance ratio",
    ]
    for r in tuning["runs"]:
        cfg = r.get("cfg", {})
        kind, weight = cfg.get("kind", "cam" if r.get("weight") else None), r.get("weight", cfg.get("weight"))
        what = "none" if not kind else f"{kind}, weight {weight:g}" + (f" ({r['note']})" if r.get("note") else "")
        g = r["gradcam"]
        lines += [
            f"   * - {r['name']}",
            f"     - {what}",
            f"     - {_fmt(r['val_acc'])}",
            f"     - {_fmt(g['pg'])}",
            f"     - {_fmt(g['energy'])}",
            f"     - {_fmt(g['ap'])}",
            f"     - {_fmt(r.get('reliance', {}).get('ratio'), 1)}",
        ]
    center = tuning["runs"][0]["center"]
    lines += ["", f"Fixed centre prior on the same slices: pointing game {center['pg']:.3f}, energy {center['energy']:.3f}."]
    return "\n".join(lines) + "\n"


def summary_rst(results: list[dict[str, Any]], split: str) -> str:
    """The tables of the results page, written from the JSON (never by hand)."""
    first = results[0]
    n, patients = first["n_images"], first["n_patients"]
    lines = [
        f".. Generated by benchmarks/localization.py from localization.json ({split} patients); do not edit.",
        "",
        f"**Localization** of every method on {n} figshare slices of {patients} held-out patients ({split} split), "
        "pointing game (15 px at 224) and energy in the mask; each model's first two rows are the references that "
        "need no model, scored on the same slices at that model's input size. Accuracy: the three tumour classes.",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - model",
        "     - accuracy",
        "     - map",
        "     - pointing game",
        "     - energy",
        "     - pixel AP",
    ]
    for r in results:
        acc = r["accuracy_3_classes"]
        ref = r["localization"]["gradcam"]["overall"]
        rows = [("fixed centre prior", ref["center_prior"]), ("uniform map", ref["uniform"])]
        rows += [(m, loc["overall"]["method"]) for m, loc in r["localization"].items()]
        for i, (m, o) in enumerate(rows):
            lines += [
                f"   * - {r['label'] if i == 0 else ''}",
                f"     - {_fmt(acc) if i == 0 else ''}",
                f"     - {m if i > 1 else '(' + m + ')'}",
                f"     - {_fmt(o['pointing_game'])}",
                f"     - {_fmt(o['energy'])}",
                f"     - {_fmt(o['pixel_ap'])}",
            ]
    lines += [
        "",
        "**Tumour reliance** (no explainer involved): mean drop of the true class's probability when the tumour is "
        "blurred, beside the drop when the same shape elsewhere in the head is blurred; and **faithfulness and sanity** "
        "of the main methods (deletion AUC: lower is better; insertion AUC: higher is better; sanity: absolute Spearman correlation with the "
        "trained map after randomizing every layer, pass below 0.5).",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - model",
        "     - tumour drop",
        "     - control drop",
        "     - ratio",
        "     - method",
        "     - deletion AUC (random)",
        "     - insertion AUC (random)",
        "     - sanity",
    ]
    for r in results:
        rel = (r.get("reliance") or {}).get("overall") or {}
        ratio = (r.get("reliance") or {}).get("overall", {}).get("ratio")
        for i, m in enumerate(r["faithfulness"]):
            f = r["faithfulness"][m]
            s = r["sanity"].get(m)
            verdict = "-" if s is None else f"{'pass' if s['passed'] else 'FAIL'} ({s['final']['spearman']:.2f})"
            lines += [
                f"   * - {r['label'] if i == 0 else ''}",
                f"     - {_fmt(rel.get('tumour_drop')) if i == 0 else ''}",
                f"     - {_fmt(rel.get('control_drop')) if i == 0 else ''}",
                f"     - {_fmt(ratio, 1) if i == 0 else ''}",
                f"     - {m}",
                f"     - {_fmt(f['method']['deletion']['auc'])} ({_fmt(f['random']['deletion']['auc'])})",
                f"     - {_fmt(f['method']['insertion']['auc'])} ({_fmt(f['random']['insertion']['auc'])})",
                f"     - {verdict}",
            ]
    return "\n".join(lines) + "\n"


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def bars(results: list[dict[str, Any]], path: Path) -> None:
    """Pointing game and energy of Grad-CAM and LayerCAM per model, beside the centre prior and the uniform map."""
    import numpy as np

    from neuroxai._io import save_figure

    fig = _figure(10, 3.6)
    axes = fig.subplots(1, 2)
    methods = ("gradcam", "layercam")
    for ax, metric, title in zip(axes, ("pointing_game", "energy"), ("pointing game", "energy in the mask")):
        labels = [r["label"] for r in results]
        xs = np.arange(len(results))
        for i, m in enumerate(methods):
            vals = [r["localization"][m]["overall"]["method"][metric] for r in results]
            ax.bar(xs + (i - 0.5) * 0.38, vals, 0.38, label=m)
        ref = results[0]["localization"]["gradcam"]["overall"]
        ax.axhline(ref["center_prior"][metric], color="0.3", ls="--", lw=1, label="fixed centre prior")
        ax.axhline(ref["uniform"][metric], color="0.6", ls=":", lw=1, label="uniform map")
        ax.set_xticks(xs, labels, rotation=20, ha="right", fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_title(f"{title} ({results[0]['split']} patients)", fontsize=10)
        ax.legend(fontsize=7)
    save_figure(fig, path)


def reliance_figure(results: list[dict[str, Any]], path: Path) -> None:
    """Tumour drop beside control drop per model."""
    import numpy as np

    from neuroxai._io import save_figure

    rows = [r for r in results if r.get("reliance")]
    fig = _figure(6.5, 3.2)
    ax = fig.subplots()
    xs = np.arange(len(rows))
    ax.bar(xs - 0.19, [r["reliance"]["overall"]["tumour_drop"] for r in rows], 0.38, label="tumour blurred")
    ax.bar(xs + 0.19, [r["reliance"]["overall"]["control_drop"] for r in rows], 0.38, label="same area elsewhere blurred")
    ax.set_xticks(xs, [r["label"] for r in rows], rotation=20, ha="right", fontsize=7)
    ax.set_ylabel("drop of the true class's probability")
    ax.set_title("Tumour reliance (no explainer involved)", fontsize=10)
    ax.legend(fontsize=7)
    save_figure(fig, path)


def examples(runs: list[Path], ds: Any, split: str, path: Path, n: int = 6) -> None:
    """Held-out slices: image with the radiologist's outline, then each run's Grad-CAM of the true class."""
    import numpy as np

    import neuroxai
    from neuroxai.explain import Explainer

    predictors = [neuroxai.load(r) for r in runs]
    h, w, c = predictors[0].input_shape
    x, y, masks = ds.arrays(split, image_size=(h, w), channels=c, input_range=predictors[0].input_range, with_masks=True)
    rng = np.random.default_rng(0)
    pick = np.concatenate(
        [rng.permutation(np.flatnonzero(y == k))[: max(1, n // len(ds.class_names))] for k in range(len(ds.class_names))]
    )[:n]
    maps = [Explainer(p, "gradcam").explain(x[pick], targets=y[pick]).maps for p in predictors]
    fig = _figure(2.0 * (1 + len(runs)), 2.1 * len(pick))
    axes = fig.subplots(len(pick), 1 + len(runs), squeeze=False)
    for row, i in enumerate(pick):
        img = x[i, ..., 0]
        axes[row, 0].imshow(img, cmap="gray")
        axes[row, 0].contour(masks[i], levels=[0.5], colors="lime", linewidths=0.8)
        axes[row, 0].set_title(ds.class_names[int(y[i])], fontsize=8)
        for col, (run, m) in enumerate(zip(runs, maps), start=1):
            axes[row, col].imshow(img, cmap="gray")
            axes[row, col].imshow(m[row], cmap="jet", alpha=0.45, vmin=0, vmax=1)
            axes[row, col].contour(masks[i], levels=[0.5], colors="white", linewidths=0.6)
            if row == 0:
                axes[row, col].set_title(run.name.replace("figshare-", ""), fontsize=8)
    for ax in axes.ravel():
        ax.axis("off")
    fig.suptitle(f"Grad-CAM of the true class, held-out {split} patients (outline: radiologist's mask)", fontsize=9)
    from real_data import save_png_small  # the sibling benchmark script (its folder is on sys.path)

    save_png_small(fig, path)


# ---------------------------------------------------------------------------------------------------- tune
def tune(args: argparse.Namespace, ds: Any, t0: float) -> None:
    """Choose the guidance weight on validation patients: one short run per weight, Grad-CAM family localization and reliance."""
    from neuroxai import Trainer
    from neuroxai._io import write_json
    from neuroxai.evaluation import Localization, TumourReliance, evaluate_explanations
    from neuroxai.runs import predict_array
    from neuroxai.training import MaskGuidance

    size = args.image_size
    x, y, masks = ds.arrays("val", image_size=(size, size), channels=1, with_masks=True)
    rows = []
    for weight in args.tune_weights:
        name = "none" if weight == 0 else f"cam{weight:g}"
        guidance = MaskGuidance("cam", weight=weight) if weight > 0 else None
        start = time.perf_counter()
        trainer = Trainer(
            "cnn", epochs=args.tune_epochs, image_size=size, progress=False, seed=args.seed, guidance=guidance,
            model_options={"feature_stride": 8},
        )  # fmt: skip
        trainer.fit(ds, out_dir=Path(args.runs) / "tune" / name, overwrite=True)  # each tuning run starts afresh
        seconds = time.perf_counter() - start
        predictor = trainer.to_predictor()
        report = evaluate_explanations(
            predictor, x, masks, y, ["gradcam", "layercam", "hirescam"], metrics=[Localization(), TumourReliance()],
            class_names=list(ds.class_names),
        )  # fmt: skip
        row: dict[str, Any] = {
            "name": name,
            "weight": weight,
            "epochs": trainer.epochs_trained_,
            "secs": round(seconds),
            "val_acc": float((predict_array(predictor.model, x, 64).argmax(1) == y).mean()),
        }
        for method, loc in report.localization.items():
            o = loc.overall.method
            row[method] = {
                "pg": round(o.pointing_game or 0, 3),
                "energy": round(o.energy or 0, 3),
                "ap": round(o.pixel_ap or 0, 3),
            }
        center = next(iter(report.localization.values())).overall.center_prior
        row["center"] = {"pg": round(center.pointing_game or 0, 3), "energy": round(center.energy or 0, 3)}
        rel = report.reliance.overall if report.reliance is not None else None
        if rel is not None:
            row["reliance"] = {
                "tumour": round(rel.tumour_drop or 0, 3),
                "control": round(rel.control_drop or 0, 3),
                "ratio": round(rel.ratio or 0, 2),
            }
        rows.append(row)
        log(f"tune {name}: {json.dumps(row)}", t0)
    write_json(Path(args.out) / "tuning.json", {"split": "val", "epochs": args.tune_epochs, "runs": rows})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    ds = figshare(args)
    log(
        f"figshare: {', '.join(f'{s} {len(ds.labels(s))} slices / {len(set(ds.groups(s)))} patients' for s in ('train', 'val', 'test'))}",
        t0,
    )
    if args.stage in ("all", "train"):
        train(args, ds, t0)
    if args.stage in ("all", "evaluate"):
        evaluate(args, ds, t0)
    if args.stage in ("all", "report"):
        report(args, ds, t0)
    if args.stage == "tune":
        tune(args, ds, t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
