"""Speed of deletion/insertion curves: batched, compiled perturbation + forward passes.

Prints images/second of ``deletion_insertion_curves`` (100 images x 20 steps,
deletion and insertion: 100 * 21 * 2 = 4200 forward passes of perturbed
images) beside one plain forward pass over the same 100 images, and the ratio.
A per-image Python loop would cost about ``2 * (steps + 1)`` times a forward
pass *plus* per-call overhead; the batched version should stay close to the
pure compute cost ``2 * (steps + 1)`` (42x at 20 steps).

It also times ``tumour_reliance`` (two perturbed copies per image, blur and
control placement included) beside the same forward pass: the batched,
compiled version should cost about 2x a forward pass plus the numpy work.

Run: ``python benchmarks/xai_metrics_speed.py [--n 100] [--steps 20] [--size 128] [--model cnn|tiny]``
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _model(kind: str, size: int):
    import keras

    if kind == "cnn":
        try:
            from neuroxai.models import ModelRegistry

            return ModelRegistry(autoload=False).create("cnn", num_classes=4, input_shape=(size, size, 1))
        except Exception as exc:  # the registry may not be there yet
            print(f"(built-in 'cnn' unavailable: {type(exc).__name__}: {exc}; using a tiny CNN)")
    keras.utils.set_random_seed(0)
    inp = keras.Input((size, size, 1))
    x = inp
    for f in (16, 32, 64):
        x = keras.layers.Conv2D(f, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(4, name="logits")(x)
    return keras.Model(inp, keras.layers.Softmax(name="probabilities")(x))


def main() -> None:
    import numpy as np
    import tensorflow as tf

    from neuroxai.evaluation import deletion_insertion_curves, tumour_reliance

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--model", choices=("cnn", "tiny"), default="cnn")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()

    rng = np.random.default_rng(0)
    x = rng.random((a.n, a.size, a.size, 1)).astype(np.float32)
    maps = rng.random((a.n, a.size, a.size)).astype(np.float32)
    y = rng.integers(0, 4, a.n)
    model = _model(a.model, a.size)
    fwd = tf.function(lambda t: model(t, training=False))

    def forward() -> None:
        for i in range(0, a.n, a.batch_size):
            fwd(tf.constant(x[i : i + a.batch_size])).numpy()

    passes = 2 * (a.steps + 1)
    big = np.repeat(x, passes, axis=0)  # as many plain images as the curves perturb

    def floor() -> None:
        for i in range(0, len(big), a.batch_size):
            fwd(tf.constant(big[i : i + a.batch_size])).numpy()

    def curves() -> None:
        deletion_insertion_curves(model, x, maps, y, steps=a.steps, batch_size=a.batch_size)

    yy, xx = np.mgrid[0 : a.size, 0 : a.size]
    centres = rng.integers(a.size // 4, 3 * a.size // 4, (a.n, 2))
    masks = (yy[None] - centres[:, :1, None]) ** 2 + (xx[None] - centres[:, 1:, None]) ** 2 <= (a.size // 10) ** 2
    probs = model.predict(x, batch_size=a.batch_size, verbose=0)

    def reliance() -> None:
        tumour_reliance(model, x, masks, y, probabilities=probs, batch_size=a.batch_size)

    def best(fn) -> float:
        fn()  # warm-up: tracing
        times = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    t_fwd = best(forward)
    t_floor = best(floor)
    t_cur = best(curves)
    t_rel = best(reliance)
    print(
        f"device: {tf.config.list_logical_devices()[-1].device_type}, model: {model.name}, "
        f"{a.n} images {a.size}x{a.size}, steps={a.steps}, batch={a.batch_size}"
    )
    print(f"{'forward pass only':<34} {t_fwd:8.3f} s  {a.n / t_fwd:10.1f} images/s")
    print(f"{f'forward over {len(big)} images':<34} {t_floor:8.3f} s  {a.n / t_floor:10.1f} images/s  (compute floor)")
    print(f"{'deletion+insertion (batched)':<34} {t_cur:8.3f} s  {a.n / t_cur:10.1f} images/s")
    print(
        f"ratio curves/forward: {t_cur / t_fwd:.1f}x  (perturbed forward passes per image: {passes}; "
        f"per-pass cost {t_cur / t_fwd / passes:.2f}x a plain forward pass; "
        f"{t_cur / t_floor:.2f}x the compute floor)"
    )
    print(f"{'tumour reliance (batched)':<34} {t_rel:8.3f} s  {a.n / t_rel:10.1f} images/s")
    print(f"ratio reliance/forward: {t_rel / t_fwd:.1f}x  (perturbed forward passes per image: 2)")


if __name__ == "__main__":
    main()
