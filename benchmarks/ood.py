"""Benchmark: does the model know what it does not know, and do healthy scans come out healthy?

For one trained run (``--run``) or shipped model (``--pretrained``):

1. **Slices.** The out-of-distribution score (:class:`neuroxai.runs.OODDetector`) of in-distribution test slices
   (Kaggle ``Testing/``; the figshare test patients, the existing patient split) against images it should not
   trust: slices of healthy brain volumes (T1 template, diffusion b0 / T2-like scans), photographs, other
   modalities (CT, radiographs, ultrasound, MR of other body parts). AUROC per group and the share above the
   run's threshold.
2. **Healthy volumes** (specificity): every healthy real brain volume found in the installed packages, through
   :func:`neuroxai.volumes.predict_volume` with the default rule ("consistent", with the score) and with the
   rule of earlier releases ("top-k", nothing set aside). A tumour answer for a healthy volume is a false positive.
3. **Tumour volumes** (sensitivity): the figshare test patients' slices stacked per patient in acquisition order
   (figshare file number) as a stand-in for tumour volumes: figshare keeps only the slices that show the tumour,
   and a patient's slices may mix planes, so these are easier than real volumes in one way and odd in another.
4. **Slice accuracy**: the Kaggle test accuracy of the slice classifier, which the score does not change (it
   sets slices aside from a volume's answer, it never changes a slice's prediction).

The images come from packages that carry them (none is downloaded; a missing one is named in the JSON)::

    pip install --no-deps nilearn dipy scikit-image pydicom-data

nilearn: the MNI152 2009 T1 template (a healthy-population average, brain only); dipy: two healthy diffusion b0
volumes; nibabel: a healthy T1 crop; scikit-image: photographs; pydicom and pydicom-data: CT, radiographs,
ultrasound and MR of other body parts.

Example (the figures of docs/guide/volumes.rst)::

    python benchmarks/ood.py --pretrained cnn-mri4-v1 --kaggle ../shared/data/brain-tumor-mri \\
        --figshare ../shared/data/figshare-brain-tumor/manifest.csv --out docs/results/ood
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

SEED = 1337


def log(msg: str, t0: float) -> None:
    print(f"[{time.perf_counter() - t0:7.1f}s] {msg}", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument("--run", metavar="RUN_DIR", help="a trained run directory")
    model.add_argument("--pretrained", metavar="NAME", help="a shipped model")
    p.add_argument("--kaggle", default=os.environ.get("NEUROXAI_DATA"), metavar="DIR")
    p.add_argument("--figshare", default=os.environ.get("NEUROXAI_FIGSHARE"), metavar="CSV")
    p.add_argument("--out", required=True, metavar="DIR", help="where ood.json goes")
    p.add_argument(
        "--split", choices=("val", "test"), default="test", help="in-distribution and tumour-volume data (val: to try the code)"
    )
    args = p.parse_args(argv)
    if not args.kaggle or not args.figshare:
        p.error("give --kaggle and --figshare (or set NEUROXAI_DATA and NEUROXAI_FIGSHARE)")
    return args


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)  # a top-level package: found without importing it
    return Path(next(iter(spec.submodule_search_locations))) if spec and spec.submodule_search_locations else None


#: Healthy real brain volumes shipped inside packages: (name, package, path inside it, what it is).
HEALTHY_VOLUMES = (
    (
        "mni152-t1",
        "nilearn",
        "datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
        "MNI152 2009 T1 template (brain only)",
    ),
    ("dipy-s0-10slices", "dipy", "data/files/S0_10slices.nii.gz", "diffusion b0 (T2-weighted contrast), 10 axial slices"),
    ("dipy-aniso-vox", "dipy", "data/files/aniso_vox.nii.gz", "diffusion b0 (T2-weighted contrast), whole brain"),
    ("nibabel-anatomical", "nibabel", "tests/data/anatomical.nii", "T1, a crop around the ventricles"),
)

#: Other modalities (DICOM files inside packages): (name, package, path, what it is).
OTHER_MODALITIES = (
    ("ct-chest", "pydicom", "data/test_files/CT_small.dcm", "CT, chest"),
    ("ct-head", "data_store", "data/693_UNCR.dcm", "CT, head"),
    ("xray-chest", "data_store", "data/RG1_UNCR.dcm", "radiograph, chest"),
    ("xray-leg", "data_store", "data/RG3_UNCR.dcm", "radiograph, lower leg"),
    ("ultrasound", "data_store", "data/US1_UNCR.dcm", "ultrasound"),
    ("mr-shoulder", "data_store", "data/MR2_UNCR.dcm", "MR, shoulder"),
    ("mr-abdomen", "data_store", "data/MR-SIEMENS-DICOM-WithOverlays.dcm", "MR, abdomen"),
    ("mr-small", "pydicom", "data/test_files/MR_small.dcm", "MR, 64x64 test image"),
)


def _to_uint8(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, np.float32)
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        a = a[..., :3].mean(axis=-1)
    lo, hi = np.percentile(a, [0.5, 99.5])
    return np.clip((a - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8)


def ood_images(predictor: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Model-ready batches per group of images to distrust, and what was found or missing."""
    import pydicom

    from neuroxai.data import brain_slices, read_volume
    from neuroxai.volumes import model_slices

    groups: dict[str, list[np.ndarray]] = {"healthy brain volumes": [], "photographs": [], "other modalities": []}
    found: dict[str, Any] = {"found": [], "missing": []}
    for name, package, rel, what in HEALTHY_VOLUMES:
        root = _package_dir(package)
        if root is None or not (root / rel).is_file():
            found["missing"].append(f"{name} ({package})")
            continue
        shown = read_volume(root / rel).slices_uint8()
        brain = shown[np.asarray(brain_slices(shown), bool)]
        groups["healthy brain volumes"].append(model_slices(brain, predictor.input_shape, predictor.input_range))
        found["found"].append({"name": name, "what": what, "images": len(brain)})
    sk = _package_dir("skimage")
    photos = sorted((sk / "data").glob("*.[pj][np]g")) if sk is not None else []
    if photos:
        groups["photographs"].append(predictor.preprocess([str(p) for p in photos]))
        found["found"].append(
            {"name": "scikit-image photographs", "what": "photographs, microscopy, text", "images": len(photos)}
        )
    else:
        found["missing"].append("photographs (scikit-image)")
    for name, package, rel, what in OTHER_MODALITIES:
        root = _package_dir(package)
        if root is None or not (root / rel).is_file():
            found["missing"].append(f"{name} ({package})")
            continue
        pixels = pydicom.dcmread(root / rel).pixel_array
        frames = [pixels] if pixels.ndim == 2 or pixels.shape[-1] in (3, 4) else list(pixels)
        groups["other modalities"].append(predictor.preprocess([_to_uint8(f) for f in frames]))
        found["found"].append({"name": name, "what": what, "images": len(frames)})
    return {k: np.concatenate(v) for k, v in groups.items() if v}, found


def healthy_volumes(predictor: Any) -> list[dict[str, Any]]:
    """Per healthy volume: the answer with the default rule and with the rule of earlier releases."""
    from neuroxai.data import read_volume
    from neuroxai.volumes import predict_volume

    out = []
    for name, package, rel, what in HEALTHY_VOLUMES:
        root = _package_dir(package)
        if root is None or not (root / rel).is_file():
            continue
        volume = read_volume(root / rel)
        now = predict_volume(predictor, volume)
        old = predict_volume(predictor, volume, rule="top-k")
        before = predict_volume(_without_ood(predictor), volume, rule="top-k")
        out.append(
            {
                "name": name,
                "what": what,
                "slices": volume.n_slices,
                "classified": len(now.slices),
                "set_aside": len(now.set_aside),
                "answer": now.answer,
                "reason": now.reason,
                "answer_top_k_with_ood": old.answer,
                "answer_earlier_release": before.answer,
                "earlier_release_evidence": dict(before.evidence),
            }
        )
    return out


def _without_ood(predictor: Any) -> Any:
    import copy

    bare = copy.copy(predictor)
    bare.ood = None
    return bare


def tumour_volumes(predictor: Any, fig: Any, split: str) -> list[dict[str, Any]]:
    """The figshare test patients' slices stacked per patient (file-number order) as volumes."""
    from PIL import Image

    from neuroxai.data import Volume
    from neuroxai.volumes import predict_volume

    paths, labels, groups = fig.paths(split), fig.labels(split), fig.groups(split)
    by_patient: dict[str, list[tuple[int, str, str]]] = {}
    for path, label, group in zip(paths, labels, groups):
        by_patient.setdefault(str(group), []).append((int(Path(path).stem), str(path), fig.class_names[int(label)]))
    out = []
    for patient, rows in sorted(by_patient.items()):
        rows.sort()
        stack = np.stack([np.asarray(Image.open(p).convert("L"), np.float32) for _, p, _ in rows])
        volume = Volume(
            source=f"figshare-patient-{patient}",
            name=f"patient-{patient}",
            series=None,
            voxels=stack,
            affine=np.eye(4),
            source_shape=tuple(stack.shape),
            window=(0.0, 255.0),
        )
        pred = predict_volume(predictor, volume)
        truth = rows[0][2]
        out.append(
            {
                "patient": patient,
                "class": truth,
                "slices": len(rows),
                "answer": pred.answer,
                "set_aside": len(pred.set_aside),
                "reason": pred.reason,
                "answer_earlier_release": predict_volume(_without_ood(predictor), volume, rule="top-k").answer,
            }
        )
    return out


def summary_rst(result: dict[str, Any]) -> str:
    """The tables the volumes guide includes, from the JSON only."""
    sl = result["slices"]
    lines = [
        ".. Generated by benchmarks/ood.py from ood.json; do not edit.",
        "",
        f"**Slices** (model ``{result['model']}``, threshold {sl['threshold']:.3f}). In distribution: "
        + "; ".join(f"{k}: {v['n']} slices, {v['flagged']:.1%} flagged" for k, v in sl["in_distribution"].items())
        + ".",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - images the model should not trust",
        "     - images",
        "     - AUROC against the in-distribution test slices",
        "     - flagged at the threshold",
    ]
    for group, g in sl["groups"].items():
        lines += [f"   * - {group}", f"     - {g['n']}", f"     - {g['auroc']:.3f}", f"     - {g['flagged']:.0%}"]
    lines += [
        "",
        "**Healthy volumes** (every one found in the installed packages):",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - volume",
        "     - brain slices",
        "     - set aside",
        "     - answer (rule consistent)",
        "     - why",
        "     - earlier release (top-k, nothing set aside)",
    ]
    for v in result["healthy_volumes"]:
        lines += [
            f"   * - {v['name']}: {v['what']}",
            f"     - {v['classified']}",
            f"     - {v['set_aside']}",
            f"     - **{v['answer']}**",
            f"     - {v['reason']}",
            f"     - {v['answer_earlier_release']}",
        ]
    tumour = result["tumour_volumes"]
    short = [v for v in tumour if v["slices"] < 3]
    lines += [
        "",
        f"**Specificity** on healthy volumes: {result['specificity']:.0%} no tumour answer (earlier release: "
        f"{result['specificity_earlier_release']:.0%}). **Sensitivity** on the {len(tumour)} figshare test patients stacked "
        f"as volumes: {result['sensitivity']:.1%} got a tumour answer ({result['sensitivity_right_class']:.1%} the right "
        f"class; earlier release {result['sensitivity_earlier_release']:.1%}); {result['referred_tumour_volumes']} were "
        f"referred (of them, {sum(v['answer'] == 'refer' for v in short)} stacks of fewer than three slices), "
        f"{sum(v['answer'] == 'notumor' for v in tumour)} called no tumour. The slice classifier's Kaggle test "
        f"accuracy is unchanged by the score: {next(iter(result['slice_accuracy'].values())):.2%}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    from sklearn.metrics import roc_auc_score

    import neuroxai
    from neuroxai import Dataset
    from neuroxai._io import write_json

    predictor = neuroxai.pretrained(args.pretrained) if args.pretrained else neuroxai.load(args.run)
    if predictor.ood is None:
        raise SystemExit("the model has no out-of-distribution score: fit one with `neuroxai calibrate RUN --data DIR`")
    h, w, c = predictor.input_shape
    kaggle = Dataset(args.kaggle, val_fraction=0.15, seed=SEED, progress=False)
    fig = Dataset(args.figshare, val_fraction=0.15, test_fraction=0.15, seed=SEED, progress=False)
    inside: dict[str, np.ndarray] = {}
    accuracy = {}
    for name, ds in ((f"Kaggle {args.split}", kaggle), (f"figshare {args.split} patients", fig)):
        x, y = ds.arrays(args.split, image_size=(h, w), channels=c, input_range=predictor.input_range)
        proba, scores = predictor.predict_with_ood(x, 64)
        inside[name] = scores
        if ds is kaggle:
            accuracy[name] = float((proba.argmax(1) == y).mean())
    log(f"in distribution: {', '.join(f'{k} {len(v)}' for k, v in inside.items())}", t0)
    outside, found = ood_images(predictor)
    known = np.concatenate(list(inside.values()))
    thr = predictor.ood.threshold
    slices: dict[str, Any] = {
        "threshold": thr,
        "in_distribution": {
            k: {"n": len(v), "flagged": float(np.mean(v > thr)), "median": float(np.median(v))} for k, v in inside.items()
        },
        "groups": {},
    }
    for group, x in outside.items():
        scores = predictor.predict_with_ood(x, 64)[1]
        auroc = roc_auc_score(np.r_[np.zeros(len(known)), np.ones(len(scores))], np.r_[known, scores])
        slices["groups"][group] = {
            "n": len(scores),
            "auroc": float(auroc),
            "flagged": float(np.mean(scores > thr)),
            "median": float(np.median(scores)),
        }
        log(f"{group}: AUROC {auroc:.3f}, flagged {np.mean(scores > thr):.2f} of {len(scores)}", t0)
    healthy = healthy_volumes(predictor)
    tumour = tumour_volumes(predictor, fig, args.split)
    tumour_classes = {"glioma", "meningioma", "pituitary"}
    result = {
        "model": args.pretrained or str(args.run),
        "split": args.split,
        "slices": slices,
        "sources": found,
        "healthy_volumes": healthy,
        "specificity": float(np.mean([v["answer"] not in tumour_classes for v in healthy])) if healthy else None,
        "specificity_earlier_release": float(np.mean([v["answer_earlier_release"] not in tumour_classes for v in healthy]))
        if healthy
        else None,
        "tumour_volumes": tumour,
        "sensitivity": float(np.mean([v["answer"] in tumour_classes for v in tumour])),
        "sensitivity_right_class": float(np.mean([v["answer"] == v["class"] for v in tumour])),
        "referred_tumour_volumes": int(sum(v["answer"] == "refer" for v in tumour)),
        "sensitivity_earlier_release": float(np.mean([v["answer_earlier_release"] in tumour_classes for v in tumour])),
        "slice_accuracy": accuracy,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    write_json(Path(args.out) / ("ood.json" if args.split == "test" else f"ood-{args.split}.json"), result)
    if args.split == "test":
        from neuroxai._io import write_text

        write_text(Path(args.out) / "summary.rst", summary_rst(result))
    log(
        f"specificity {result['specificity']} (earlier rule {result['specificity_earlier_release']}), sensitivity "
        f"{result['sensitivity']:.3f} (right class {result['sensitivity_right_class']:.3f}) -> {args.out}/ood.json",
        t0,
    )
    print(json.dumps({v["name"]: [v["answer"], v["answer_earlier_release"]] for v in healthy}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
