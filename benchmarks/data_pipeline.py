"""Benchmark: neuroxai's tf.data input pipeline versus a plain PIL loop, on the real dataset.

Usage::

    python benchmarks/data_pipeline.py [DATA_PATH] [--image-size 224] [--channels 3] [--batch-size 32] [--limit N]

DATA_PATH defaults to $NEUROXAI_DATA, then ../shared/data/brain-tumor-mri.
Measures, in one run and on the same training files:

1. index: ``Dataset(path)`` (reads and validates every file, hashes it);
2. plain loop: open each file with PIL, convert, resize, scale to float32 (one thread), and the same loop
   with the training augmentation done in PIL/numpy;
3. pipeline, first pass: decode + resize + cache + shuffle + batch + augment + prefetch;
4. pipeline, cached epoch: the same pipeline's second epoch (served from the cache, still augmented);
5. pipeline, cached epoch without augmentation (what validation and test batches cost).

and prints images/second and the ratio to the plain loop.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=os.environ.get("NEUROXAI_DATA", "../shared/data/brain-tumor-mri"))
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--channels", type=int, default=3, choices=(1, 3))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N training images (0: all)")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.path):
        print(f"data folder {args.path} not found; pass it as an argument or set NEUROXAI_DATA", file=sys.stderr)
        return 2

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    from PIL import Image

    from neuroxai.data import Dataset

    size = (args.image_size, args.image_size)
    print(
        f"data: {args.path}  image size: {size}  channels: {args.channels}  batch: {args.batch_size}  "
        f"cpus: {os.cpu_count()}  tensorflow {tf.__version__}"
    )

    t0 = time.perf_counter()
    ds = Dataset(args.path, progress=False)
    t_index = time.perf_counter() - t0
    if args.limit:
        keep = ds._indices("train")[args.limit :]
        ds._splits[keep] = "unused"  # benchmark-only trim
    paths = ds.paths("train")
    n = len(paths)
    print(
        f"index: {len(ds)} images read and validated in {t_index:.1f} s ({len(ds) / t_index:.0f} img/s); train split: {n} images"
    )

    mode = "RGB" if args.channels == 3 else "L"
    t0 = time.perf_counter()
    for p in paths:
        with Image.open(p) as img:
            arr = np.asarray(img.convert(mode).resize(size, Image.BILINEAR), dtype=np.float32) / 255.0
    t_plain = time.perf_counter() - t0

    # the same plain loop plus the augmentation the training pipeline applies, done with PIL and numpy
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for p in paths:
        with Image.open(p) as img:
            img = img.convert(mode).resize(size, Image.BILINEAR)
            if rng.random() < 0.5:
                img = img.transpose(Image.FLIP_LEFT_RIGHT)
            if rng.random() < 0.5:
                zoom = rng.uniform(0.9, 1.1)
                img = img.rotate(rng.uniform(-10, 10), resample=Image.BILINEAR)
                img = img.resize((round(size[1] * zoom), round(size[0] * zoom)), Image.BILINEAR)
                img = img.resize(size, Image.BILINEAR)  # crude stand-in for centre crop/pad
            arr = np.asarray(img, dtype=np.float32) / 255.0
            arr = np.clip((arr - arr.mean()) * rng.uniform(0.85, 1.15) + arr.mean() + rng.uniform(-0.08, 0.08), 0, 1)
    t_plain_aug = time.perf_counter() - t0
    del arr

    pipe = ds.pipeline("train", image_size=size, channels=args.channels, batch_size=args.batch_size, seed=0)

    def epoch() -> tuple[int, float]:
        count = 0
        start = time.perf_counter()
        for x, _ in pipe:
            count += int(x.shape[0])
        return count, time.perf_counter() - start

    n1, t_first = epoch()
    n2, t_cached = epoch()
    assert n1 == n2 == n, (n1, n2, n)
    pipe = ds.pipeline("train", image_size=size, channels=args.channels, batch_size=args.batch_size, seed=0, augment=False)
    epoch()
    n3, t_plain_cached = epoch()
    assert n3 == n

    rows = [
        ("plain PIL loop (open, convert, resize, /255)", n / t_plain),
        ("plain PIL loop + PIL/numpy augmentation", n / t_plain_aug),
        ("pipeline, first pass (decode+resize+cache+augment)", n / t_first),
        ("pipeline, cached epoch (augmented)", n / t_cached),
        ("pipeline, cached epoch, no augmentation", n / t_plain_cached),
    ]
    base = rows[0][1]
    print(f"\n{'':52s}{'img/s':>10s}{'x plain':>10s}")
    for name, rate in rows:
        print(f"{name:52s}{rate:10.0f}{rate / base:10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
