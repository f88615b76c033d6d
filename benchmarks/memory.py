"""Benchmark: peak memory of ``audit``, ``predict`` and ``explain`` on inputs that claim to be huge.

Usage::

    python benchmarks/memory.py [--limit-mb 1500] [--cases volume-bomb,dicom-2000,...] [--src PATH]

Writes, in a temporary folder, per case:

- ``volume-bomb``: a 2 MB ``.nii.gz`` whose header says 2048 x 2048 x 512 (its voxels, zeros, really are there:
  2.1 billion of them, 8.6 GB as float32). Refused from the header (over ``MAX_VOLUME_VOXELS``);
- ``nifti-at-limit``: a 512 x 512 x 256 int16 head-like ``.nii.gz``, exactly ``MAX_VOLUME_VOXELS`` voxels: the largest
  volume read by default, read, classified and explained in full;
- ``dicom-2000``: a DICOM series of 2000 slices of 128 x 128 (one file each, a head-like phantom), read,
  classified and explained in full;
- ``image-16k``: a 16384 x 16384 grayscale PNG (268 megapixels, a few hundred KB): refused from its header;
- ``huge``: a 13000 x 13000 PNG, and ``huge x3`` (three of them); ``big x3``: three 6000 x 6000 RGB PNGs (36
  megapixels each: under the limit, decoded reduced).

Each task runs in a fresh subprocess, which prints its peak resident memory (``resource.getrusage``).
``predict`` and ``explain`` are the commands themselves (``neuroxai.cli.main``) with the built-in ``cnn`` at
128 x 128 x 1 (untrained: memory does not depend on the weights); ``audit`` is ``Dataset(folder).audit()`` of the
image cases. The same command on one small PNG gives TensorFlow's own peak (imports, model, compiled steps):
"above base" is a case's peak minus that baseline (for ``audit``: minus the memory after its imports), the
number the budget (``--limit-mb``, 1.5 GB) applies to.
``--src`` measures another source tree (e.g. an older checkout's ``src``) instead; the volume bomb is not run
there unless named in ``--cases`` (the reader before issue 26 took 17.6 GB on it).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

CHILD = textwrap.dedent(
    """
    import json, os, resource, sys
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    def peak_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux

    task, argv = sys.argv[1], json.loads(sys.argv[2])
    out = {}
    if task == "audit":
        from neuroxai.data import Dataset
        base = peak_mb()
        try:
            report = Dataset(argv[0], progress=False).audit(progress=False)
            out["done"], out["skipped"] = report.images, len(report.skipped)
        except Exception as exc:
            out["error"] = f"{type(exc).__name__}: {str(exc)[:120]}"
    elif task == "make-run":
        from neuroxai.models import ModelRegistry
        from neuroxai.runs import RunDirectory, RunSpec
        names = ("glioma", "meningioma", "notumor", "pituitary")
        model = ModelRegistry(autoload=False).create("cnn", num_classes=4, input_shape=(128, 128, 1))
        spec = RunSpec(model="cnn", model_source="neuroxai", class_names=names, input_shape=(128, 128, 1),
                       input_range=(0.0, 1.0))
        RunDirectory(argv[0]).commit(model, spec, {"epoch": [1], "loss": [1.0]}, None)
        base = peak_mb()
    else:
        import keras  # TensorFlow's own imports count in the base, not in the work
        from neuroxai.cli import main
        base = peak_mb()
        out["exit"] = main(argv)
    out["peak_mb"], out["above_imports_mb"] = peak_mb(), peak_mb() - base
    print("RESULT " + json.dumps(out))
    """
)

GiB = 1 << 30


def _head(rows: int, cols: int, z: int, n: int):
    """One head-like int16 slice (an ellipse of textured 'brain' on zero background), varying along z."""
    import numpy as np

    yy, xx = np.ogrid[:rows, :cols]
    t = 1.0 - abs(2.0 * z / max(n - 1, 1) - 1.0)  # 0 at the ends, 1 in the middle
    ry, rx = 0.42 * rows * (0.3 + 0.7 * t), 0.36 * cols * (0.3 + 0.7 * t)
    inside = ((yy - rows / 2) / ry) ** 2 + ((xx - cols / 2) / rx) ** 2 <= 1.0
    texture = (np.add.outer(np.arange(rows) % 7, np.arange(cols) % 5) * 9).astype(np.int16)
    return np.where(inside, 400 + texture, 0).astype(np.int16)


def _write_bomb(path: Path) -> None:
    import nibabel as nib
    import numpy as np

    hdr = nib.Nifti1Header()
    hdr.set_data_shape((2048, 2048, 512))
    hdr.set_data_dtype(np.uint8)
    hdr.set_qform(np.eye(4), code=1)
    hdr.set_sform(np.eye(4), code=1)
    hdr["vox_offset"] = 352
    zeros = bytes(64 << 20)
    with gzip.open(path, "wb", compresslevel=9) as fh:
        fh.write(hdr.binaryblock + b"\x00" * 4)
        for _ in range(2 * GiB // len(zeros)):
            fh.write(zeros)


def _write_nifti_at_limit(path: Path) -> None:
    import nibabel as nib
    import numpy as np

    n, rows, cols = 256, 512, 512  # 67,108,864 voxels: MAX_VOLUME_VOXELS
    data = np.empty((cols, rows, n), np.int16)  # file order [x, y, z]
    for z in range(n):
        data[:, :, z] = _head(rows, cols, z, n).T
    nib.save(nib.Nifti1Image(data, np.diag([-0.5, -0.5, 0.6, 1.0])), str(path))


def _write_dicom_series(folder: Path, n: int = 2000, size: int = 128) -> None:
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    folder.mkdir(parents=True)
    series, study = generate_uid(), generate_uid()
    for z in range(n):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = study, series, 1, z + 1
        ds.Modality = "MR"
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.ImagePositionPatient = ["0", "0", f"{0.5 * z:g}"]
        ds.PixelSpacing, ds.SliceThickness = ["1", "1"], "0.5"
        ds.Rows, ds.Columns = size, size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = "1", "0"
        ds.PixelData = np.ascontiguousarray(_head(size, size, z, n)).tobytes()
        ds.save_as(folder / f"IM{z:05d}.dcm", enforce_file_format=True)


def _write_images(root: Path, case: str) -> Path:
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    for c in ("glioma", "notumor"):
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8)).save(root / c / f"s{i}.png")
    if case == "image-16k":
        img = Image.new("L", (16384, 16384), 20)
        ImageDraw.Draw(img).ellipse((4000, 4000, 12000, 12000), fill=200)
        img.save(root / "glioma" / "huge16k.png", optimize=False, compress_level=9)
    elif case.startswith("huge"):
        img = Image.new("L", (13000, 13000), 20)
        ImageDraw.Draw(img).ellipse((3000, 3000, 10000, 10000), fill=200)
        img.save(root / "glioma" / "huge0.png", optimize=False, compress_level=9)
        for k in range(1, 3 if case == "huge x3" else 1):
            os.link(root / "glioma" / "huge0.png", root / "glioma" / f"huge{k}.png")
    elif case == "big x3":
        img = Image.new("RGB", (6000, 6000), (30, 30, 30))
        ImageDraw.Draw(img).ellipse((1000, 1000, 5000, 5000), fill=(200, 120, 90))
        for k in range(3):
            img.save(root / "glioma" / f"big{k}.png", compress_level=1)
    return root


CASES = ("baseline", "volume-bomb", "nifti-at-limit", "dicom-2000", "image-16k", "huge", "huge x3", "big x3")


def _make(tmp: Path, case: str) -> tuple[Path, bool]:
    """The input of ``case`` and whether it is an image folder (then audited too)."""
    folder = tmp / case.replace(" ", "_")
    if case == "baseline":
        return _write_images(folder, case) / "glioma" / "s0.png", False
    if case == "volume-bomb":
        folder.mkdir()
        _write_bomb(folder / "bomb.nii.gz")
        return folder / "bomb.nii.gz", False
    if case == "nifti-at-limit":
        folder.mkdir()
        _write_nifti_at_limit(folder / "head.nii.gz")
        return folder / "head.nii.gz", False
    if case == "dicom-2000":
        _write_dicom_series(folder / "series")
        return folder / "series", False
    return _write_images(folder, case), True


def _run(env: dict[str, str], task: str, argv: list[str]) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, task, json.dumps(argv)], env=env, capture_output=True, text=True, timeout=1800
    )
    line = next((li for li in proc.stdout.splitlines() if li.startswith("RESULT ")), None)
    if line is None:
        return {"error": f"killed (exit {proc.returncode}): {proc.stderr.strip()[-200:]}"}
    result: dict[str, object] = json.loads(line[len("RESULT ") :])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit-mb", type=float, default=1500.0, help="peak above TensorFlow's own a case may take (1.5 GB)")
    parser.add_argument("--cases", default=None, help=f"comma-separated subset of {', '.join(CASES[1:])}")
    parser.add_argument("--src", default=None, help="source tree to import neuroxai from (default: the installed one)")
    args = parser.parse_args(argv)
    cases = ["baseline", *(c.strip() for c in args.cases.split(","))] if args.cases else list(CASES)
    if args.src and not args.cases:
        cases.remove("volume-bomb")  # the old reader allocates 17.6 GB on it: only when asked for

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", NEUROXAI_DISABLE_PLUGIN_AUTOLOAD="1", NEUROXAI_NO_PROGRESS="1")
    env.pop("NEUROXAI_MAX_VOLUME_VOXELS", None)
    env.pop("NEUROXAI_MAX_IMAGE_PIXELS", None)
    if args.src:
        env["PYTHONPATH"] = os.pathsep.join([str(Path(args.src).resolve()), env.get("PYTHONPATH", "")])
    header = f"{'case':<16} {'task':<8} {'peak MB':>8} {'above base':>10} {'limit':>6}  result"
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        made = _run(env, "make-run", [str(tmp / "run")])
        if "error" in made:
            print(f"could not build the run: {made['error']}")
            return 2
        baseline: dict[str, float] = {}
        print(header)
        for case in cases:
            target, is_folder = _make(tmp, case)
            size_mb = sum(f.stat().st_size for f in ([target] if target.is_file() else target.rglob("*"))) / 1e6
            tasks = (["audit"] if is_folder else []) + ["predict", "explain"]
            for task in tasks:
                if task == "audit":
                    cmd = [str(target)]
                elif task == "predict":
                    cmd = ["predict", str(tmp / "run"), str(target), "--no-progress"]
                else:
                    out = tmp / f"explained-{case.replace(' ', '_')}"
                    cmd = ["explain", str(tmp / "run"), str(target), "--out", str(out), "--no-progress"]
                r = _run(env, task, cmd)
                if "error" in r:
                    print(f"{case:<16} {task:<8} {'-':>8} {'-':>10} {'-':>6}  {r['error']}")
                    worst = float("inf")
                    continue
                peak = float(r["peak_mb"])  # type: ignore[arg-type]
                if case == "baseline":
                    baseline[task] = peak
                above = peak - baseline.get(task, float(r["peak_mb"]) - float(r["above_imports_mb"]))  # type: ignore[arg-type]
                if case != "baseline":
                    worst = max(worst, above)
                verdict = "" if case == "baseline" else ("ok" if above <= args.limit_mb else "OVER")
                note = f"exit {r['exit']}" if "exit" in r else f"{r.get('done')} read, {r.get('skipped')} skipped"
                print(f"{case:<16} {task:<8} {peak:>8.0f} {above:>10.0f} {verdict:>6}  {note}; input {size_mb:.1f} MB on disk")
    verdict = "within" if worst <= args.limit_mb else "OVER"
    print(f"largest peak above TensorFlow's own: {worst:.0f} MB ({verdict} the {args.limit_mb:.0f} MB budget)")
    return 0 if worst <= args.limit_mb else 1


if __name__ == "__main__":
    raise SystemExit(main())
