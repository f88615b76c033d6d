"""Volume speed: reading a BraTS-size NIfTI volume vs classifying and explaining its slices with the ``cnn``.

A synthetic 155-slice 240x240 head volume (an ellipsoid of textured "brain" with mild noise and a bright blob on a
zero background, NOT medical data) is written to a temporary folder three ways: int16 ``.nii.gz`` (how scanners
and BraTS store it), float32 ``.nii.gz`` and int16 ``.nii``; it is read, and its every axial slice
classified and explained with Grad-CAM by the built-in ``cnn`` at its default input size. The model has
untrained, random weights: speed does not depend on the weights (a trained model would give the same times).
Prints slices per second for

- ``reading`` (per file type): :func:`neuroxai.data.read_volume` (decompress, reorient, percentile window) +
  :meth:`~neuroxai.data.Volume.slices_uint8` + conversion to model input
  (:func:`neuroxai.volumes.model_slices`: channels, resize, input range) of all 155 slices;
- ``predicting``: :meth:`neuroxai.runs.Predictor.predict_batch` on the model-ready batch (compiled, batched);
- ``explaining``: :meth:`neuroxai.Explainer.explain` (Grad-CAM, one class for all slices, compiled, batched);
- ``predict_volume`` and ``explain_volume`` end to end from the volume in memory (foreground test, the
  per-volume rule, maps resized back to 240x240 and weighted);

and the ratios ``reading/predicting`` (target >= 5: reading is not the bottleneck).

Run: ``python benchmarks/volume_speed.py [--slices 155] [--size 240] [--batch 32] [--repeats 3]``
(about a minute on 2 CPU cores). Times are the best of the repeats after one warm-up run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from _timing import best_time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _head(slices: int, size: int, seed: int = 0):
    """float32 ``[Z, H, W]``: an ellipsoid head of smooth texture with mild noise and a bright blob, zero background."""
    import numpy as np

    rng = np.random.default_rng(seed)
    z, y, x = np.ogrid[0:slices, 0:size, 0:size]
    c = (size - 1) / 2
    head = ((z - slices / 2) / (0.42 * slices)) ** 2 + ((y - c) / (0.42 * size)) ** 2 + ((x - c) / (0.36 * size)) ** 2 <= 1
    texture = 60.0 * np.sin(y / 7.0 + z / 11.0) * np.cos(x / 9.0)  # tissue-like, low frequency
    noise = 15.0 * rng.standard_normal((slices, size, size))
    vol = np.where(head, 400.0 + texture + noise, 0.0).astype(np.float32)
    blob = ((z - 0.55 * slices) / (0.06 * slices)) ** 2 + ((y - 0.4 * size) / 12.0) ** 2 + ((x - 0.6 * size) / 12.0) ** 2 <= 1
    vol[blob & head] += 500.0
    return vol


def _predictor(name: str):
    """A built-in model at its default input, random weights, as a Predictor."""
    from neuroxai.data import PHANTOM_CLASSES
    from neuroxai.models import ModelRegistry
    from neuroxai.runs import Predictor

    registry = ModelRegistry(autoload=False)
    spec = registry.get(name)
    options = {"weights": None} if name == "efficientnetb0" else {}
    model = registry.create(name, num_classes=len(PHANTOM_CLASSES), input_shape=spec.input_shape, **options)
    return Predictor(model, PHANTOM_CLASSES, spec.input_shape, spec.input_range, target_layer=spec.target_layer)


def _time_model(
    name: str, files: dict[str, Path], kinds: list[str], n: int, batch_size: int, repeats: int
) -> list[tuple[str, float, int]]:
    """``(stage, seconds, slices)`` rows for one built-in model: reading each file kind in ``kinds``, then the model."""
    from neuroxai import Explainer
    from neuroxai.data import read_volume
    from neuroxai.volumes import explain_volume, model_slices, predict_volume

    predictor = _predictor(name)
    explainer = Explainer(predictor, "gradcam", batch_size=batch_size)
    last: dict[str, object] = {}

    def read(path: Path) -> None:  # the file to the model's input: Volume, 8-bit slices, size, channels, range
        volume = read_volume(path)
        last["x"] = model_slices(volume.slices_uint8(), predictor.input_shape, predictor.input_range, batch_size=64)
        last["volume"] = volume

    rows = [(f"reading, {kind}", best_time(lambda p=files[kind]: read(p), repeats), n) for kind in kinds]
    x, volume = last["x"], last["volume"]
    if "int16 .nii.gz" in kinds:  # where reading's time goes, for the main file kind
        import gzip

        raw = files["int16 .nii.gz"].read_bytes()
        slices = volume.slices_uint8()
        rows += [
            ("  of which: gzip inflate alone", best_time(lambda: gzip.decompress(raw), repeats), n),
            ("  of which: read_volume", best_time(lambda: read_volume(files["int16 .nii.gz"]), repeats), n),
            ("  of which: window to 8 bit", best_time(volume.slices_uint8, repeats), n),
            (
                "  of which: resize to model input",
                best_time(lambda: model_slices(slices, predictor.input_shape, predictor.input_range, batch_size=64), repeats),
                n,
            ),
        ]
    pred = predict_volume(predictor, volume, batch_size=batch_size)
    rows += [
        ("predicting", best_time(lambda: predictor.predict_batch(x, batch_size), repeats), n),
        ("explaining (Grad-CAM)", best_time(lambda: explainer.explain(x, targets="glioma"), repeats), n),
        ("predict_volume (in memory)", best_time(lambda: predict_volume(predictor, volume, batch_size=batch_size), repeats), n),
        (
            f"explain_volume ({len(pred.slices)} brain)",
            best_time(lambda: explain_volume(explainer, volume, prediction=pred, target="glioma"), repeats),
            len(pred.slices),
        ),
    ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=155)
    parser.add_argument("--size", type=int, default=240)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["cnn", "efficientnetb0"], help="built-in models to time")
    args = parser.parse_args()

    import keras
    import nibabel as nib
    import numpy as np

    keras.utils.set_random_seed(0)
    n = args.slices
    vol = _head(n, args.size)
    affine = np.diag([-1.0, -1.0, 1.0, 1.0])
    kinds = {"int16 .nii.gz": (np.int16, "nii.gz"), "float32 .nii.gz": (np.float32, "nii.gz"), "int16 .nii": (np.int16, "nii")}
    print(f"volume {n} x {args.size} x {args.size} (synthetic), batch {args.batch}, untrained weights, best of {args.repeats}")
    print("reading = file -> Volume -> 8-bit slices -> the model's input (size, channels, range)")
    print(f"{'model':<16}{'stage':<34}{'slices/s':>10}{'seconds':>10}")
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for kind, (dtype, ext) in kinds.items():  # on disk: x, y, z
            files[kind] = Path(tmp) / f"head_{np.dtype(dtype).name}.{ext}"
            nib.save(nib.Nifti1Image(np.ascontiguousarray(np.rint(vol).astype(dtype).transpose(2, 1, 0)), affine), files[kind])
        for index, name in enumerate(args.models):
            wanted = list(kinds) if index == 0 else ["int16 .nii.gz"]  # the file kinds once; the main one for every model
            rows = _time_model(name, files, wanted, n, args.batch, args.repeats)
            t_pred = next(t for stage, t, _ in rows if stage == "predicting")
            for stage, t, count in rows:
                print(f"{name:<16}{stage:<34}{count / t:>10.1f}{t:>10.3f}")
            ratios += [(name, stage.split(", ")[1], t_pred / t) for stage, t, _ in rows if stage.startswith("reading")]
    for model_name, kind, ratio in ratios:
        print(f"ratio reading/predicting, {model_name}, {kind}: {ratio:.1f}x (target >= 5)")


if __name__ == "__main__":
    main()
