"""Benchmark: peak memory of ``audit`` and ``predict`` on folders holding huge images.

Usage::

    python benchmarks/memory.py [--limit-mb 1024] [--src PATH]

Writes, in a temporary folder, two classes of small PNG slices plus, per case:

- ``huge``: one 13000 x 13000 grayscale PNG (a few hundred KB on disk, 169
  megapixels: under Pillow's own error limit, over neuroxai's
  ``MAX_IMAGE_PIXELS``), and three of them;
- ``big``: three 6000 x 6000 RGB PNGs (36 megapixels each: under the limit,
  decoded reduced).

Each case runs in a fresh subprocess, which prints its peak resident memory
(``resource.getrusage``) and the part of it above the memory the process held
after its imports (TensorFlow for ``predict`` only, as the commands do). ``audit`` is ``Dataset(folder).audit()``
(indexing reads every file); ``predict`` is ``Predictor.predict`` of a small
Keras model over every file of the folder at 224 x 224 (unreadable files are
listed instead, as ``neuroxai predict`` does). ``--src`` measures another
source tree (e.g. an older checkout's ``src``) side by side.
"""

from __future__ import annotations

import argparse
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
    from neuroxai.data import Dataset, find_images, load_images
    if sys.argv[2] == "predict":
        import keras  # TensorFlow's own ~0.7 GB counts in the imports, not in the work

    def peak_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux

    folder, task = sys.argv[1], sys.argv[2]
    base = peak_mb()
    out = {}
    try:
        if task == "audit":
            report = Dataset(folder, progress=False).audit(progress=False)
            out["images"], out["skipped"] = report.images, len(report.skipped)
        else:
            inputs = keras.Input((224, 224, 3))
            x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, strides=4)(inputs))
            model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
            paths = find_images([folder]).paths
            x, ok, skipped = load_images(paths, image_size=(224, 224), channels=3)
            proba = model.predict(x, verbose=0)
            out["images"], out["skipped"] = len(proba), len(skipped)
    except Exception as exc:  # what the old code did with these files
        out["error"] = f"{type(exc).__name__}: {str(exc)[:120]}"
    out["peak_mb"], out["above_imports_mb"] = peak_mb(), peak_mb() - base
    print("RESULT " + json.dumps(out))
    """
)


def _write_data(root: Path, case: str) -> Path:
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    for c in ("glioma", "notumor"):
        for i in range(6):
            (root / c).mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8)).save(root / c / f"s{i}.png")
    if case.startswith("huge"):
        img = Image.new("L", (13000, 13000), 20)
        ImageDraw.Draw(img).ellipse((3000, 3000, 10000, 10000), fill=200)
        img.save(root / "glioma" / "huge0.png", optimize=False, compress_level=9)
        for k in range(1, 3 if case == "huge x3" else 1):
            os.link(root / "glioma" / "huge0.png", root / "glioma" / f"huge{k}.png")
    else:
        img = Image.new("RGB", (6000, 6000), (30, 30, 30))
        ImageDraw.Draw(img).ellipse((1000, 1000, 5000, 5000), fill=(200, 120, 90))
        for k in range(3):
            img.save(root / "glioma" / f"big{k}.png", compress_level=1)
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit-mb", type=float, default=1024.0, help="peak memory a case may take (default 1 GB)")
    parser.add_argument("--src", default=None, help="source tree to import neuroxai from (default: the installed one)")
    args = parser.parse_args(argv)

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", NEUROXAI_DISABLE_PLUGIN_AUTOLOAD="1")
    if args.src:
        env["PYTHONPATH"] = os.pathsep.join([str(Path(args.src).resolve()), env.get("PYTHONPATH", "")])
    print(f"{'case':<10} {'task':<8} {'peak MB':>9} {'above imports':>14} {'images':>7} {'skipped':>8}  note")
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for case in ("huge", "huge x3", "big x3"):
            folder = _write_data(Path(tmp) / case.replace(" ", "_"), case)
            size_kb = sum(f.stat().st_size for f in folder.rglob("*.png")) / 1024
            for task in ("audit", "predict"):
                proc = subprocess.run(
                    [sys.executable, "-c", CHILD, str(folder), task], env=env, capture_output=True, text=True, timeout=600
                )
                line = next((li for li in proc.stdout.splitlines() if li.startswith("RESULT ")), None)
                if line is None:
                    print(f"{case:<10} {task:<8} {'killed':>9}  (exit {proc.returncode}) {proc.stderr.strip()[-200:]}")
                    worst = float("inf")
                    continue
                r = json.loads(line[len("RESULT ") :])
                worst = max(worst, r["peak_mb"])
                note = r.get("error", f"folder holds {size_kb:.0f} KB of PNG")
                print(
                    f"{case:<10} {task:<8} {r['peak_mb']:>9.0f} {r['above_imports_mb']:>14.0f} "
                    f"{r.get('images', '-')!s:>7} {r.get('skipped', '-')!s:>8}  {note}"
                )
    verdict = "within" if worst <= args.limit_mb else "OVER"
    print(f"largest peak: {worst:.0f} MB ({verdict} the {args.limit_mb:.0f} MB budget)")
    return 0 if worst <= args.limit_mb else 1


if __name__ == "__main__":
    raise SystemExit(main())
