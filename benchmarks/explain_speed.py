"""Grad-CAM speed: compiled forward pass vs neuroxai's Grad-CAM vs the textbook eager per-image recipe.

Same batch of 16 random images at 224x224 for each built-in model (random
weights: speed does not depend on them). Prints images/second for

- ``forward``: the model alone, ``tf.function``-compiled, batched, given the
  same numpy batch (so both sides pay for handing the batch to TensorFlow);
- ``ours``: ``Explainer(model, "gradcam").explain(batch)`` (compiled, batched,
  gradients only back to the target layer, maps returned as numpy);
- ``textbook``: the Keras-docs recipe, a ``GradientTape`` per image around the
  full grad model, eager;

and the ratios ``ours/forward`` (target <= 1.2) and ``textbook/ours`` (target >= 10).

Then a zoo table: the same ratio for a handful of ``keras.applications``
backbones (random weights) nested as one layer under a GAP + Dense head, at a
modest size (``--zoo-size 128``, ``--zoo-batch 8``); ``--no-zoo`` skips it.

Run: ``python benchmarks/explain_speed.py [--batch 16] [--size 224] [--repeats 5] [--no-zoo]``
(about two minutes on 2 CPU cores). Times are the best of the repeats, forward
and ours measured alternately. Uses the built-in models from ``neuroxai.ModelRegistry``.

``--backend jax`` measures the same on Keras' JAX backend (the forward pass
under ``jax.jit`` over the model's variables; no textbook column, which is
TensorFlow code). ``--backend torch`` measures PyTorch (eager forward pass
under ``torch.no_grad``, as the library runs it). ``--backend all`` (``both`` is the same) runs the
built-in models once per installed backend (TensorFlow, and JAX and PyTorch
where installed), each in its own process (a process runs one backend), and
prints them side by side with each backend's Grad-CAM throughput relative to
TensorFlow's.

``--methods scorecam,occlusion`` (default; ``--methods ""`` for none) adds a table of the gradient-free
methods with their default options on the built-in models: images/second and cost in forward passes
(``method/forward``; Score-CAM scores one masked copy per selected channel, occlusion one per patch, so
their cost is that many forward passes, batched), per backend in ``both``.

Then the transformer and 3-D rows (issue 29; ``--no-extra`` skips them), per backend in ``all``:

- ``3-D CNN``: a small Conv3D classifier (16-32-64 channels, two poolings) on ``--volume-batch`` volumes of
  ``--volume-size``^3 (default 4 at 64^3): the compiled forward pass against Grad-CAM (maps at the full
  64^3 resolution; target <= 1.3x) and saliency;
- ``ViT``: a ViT built from Keras layers (16 px patches, a class token, ``--vit-depth`` blocks of width 192,
  three heads) on ``--vit-batch`` images of ``--vit-size`` px (default 8 at 224, 6 blocks): Grad-CAM at the
  token layer, attention rollout and its gradient-weighted variant.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _timing import best_time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _registry_models(size: int):
    """The built-in models at ``size`` x ``size`` (random weights) with their default target layers."""
    from neuroxai.models import ModelRegistry

    registry = ModelRegistry(autoload=False)
    out = {}
    for name in ("cnn", "efficientnetb0"):
        opts = {"weights": None} if name == "efficientnetb0" else {}
        spec = registry.get(name)
        out[name] = (registry.create(name, num_classes=4, input_shape=(size, size, 3), **opts), spec.target_layer)
    return out


def _time_pair(fn_a, fn_b, repeats: int) -> tuple[float, float]:
    """Best times of two functions measured alternately, so load changes hit both alike."""
    fn_a()
    fn_b()
    a, b = [], []
    for _ in range(repeats):
        for fn, out in ((fn_a, a), (fn_b, b)):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return min(a), min(b)


def textbook_gradcam(model, layer_name, images):
    """The per-image eager recipe from the Keras Grad-CAM example (``make_gradcam_heatmap`` per image)."""
    import keras
    import tensorflow as tf

    maps = []
    for img in images:
        grad_model = keras.Model(model.inputs, [model.get_layer(layer_name).output, model.output])
        with tf.GradientTape() as tape:
            acts, preds = grad_model([img[None]])
            score = preds[:, tf.argmax(preds[0])]
        grads = tape.gradient(score, acts)
        pooled = tf.reduce_mean(grads, axis=(0, 1, 2))
        heat = tf.squeeze(acts[0] @ pooled[..., None])
        heat = tf.maximum(heat, 0) / (tf.reduce_max(heat) + 1e-12)
        maps.append(tf.image.resize(heat[..., None], images.shape[1:3])[..., 0].numpy())
    return maps


def _measure(model, layer, x, repeats: int, textbook: bool = True):
    """``(layer used, forward time, ours time, textbook time)`` for one model and batch."""

    t_fwd, t_ours, explainer = _forward_and_ours(model, layer, x, repeats)
    layer_name = explainer.layer if isinstance(explainer.layer, str) else None
    t_book = best_time(lambda: textbook_gradcam(model, layer_name, x), 1) if layer_name and textbook else float("nan")
    return explainer.layer, t_fwd, t_ours, t_book


def _compiled_forward(model, x):
    """The model's compiled, batched forward pass for batches shaped like ``x``, on the running backend."""
    import keras

    if keras.backend.backend() != "tensorflow":
        from neuroxai._keras_backend import compile_model_function

        return compile_model_function(model, lambda t: model(t, training=False))  # jax.jit, or eager on torch
    import tensorflow as tf

    spec = tf.TensorSpec((None, *x.shape[1:]), tf.float32)
    return tf.function(lambda t: model(t, training=False), input_signature=[spec])


def _forward_and_ours(model, layer, x, repeats: int):
    """Best times of the compiled forward pass and of our Grad-CAM on the same numpy batch, measured alternately."""
    from neuroxai._keras_backend import to_numpy
    from neuroxai.explain import Explainer

    compiled = _compiled_forward(model, x)

    def forward(t):
        return to_numpy(compiled(t))

    explainer = Explainer(model, "gradcam", target_layer=layer, batch_size=len(x))
    t_fwd, t_ours = _time_pair(lambda: forward(x), lambda: explainer.explain(x), repeats)
    return t_fwd, t_ours, explainer


#: Backbones of the zoo table: (keras.applications constructor, options).
ZOO = (
    ("VGG16", {}),
    ("ResNet50V2", {}),
    ("MobileNetV2", {}),
    ("EfficientNetB0", {}),
    ("DenseNet121", {}),
    ("ConvNeXtTiny", {}),
)


def zoo_table(size: int, batch: int, repeats: int):
    """``(name, automatic layer, forward time, ours time)`` per backbone nested under a GAP + Dense(softmax) head."""
    import keras
    import numpy as np

    rows = []
    x = (np.random.default_rng(1).random((batch, size, size, 3), dtype=np.float32) * 255.0).astype(np.float32)
    for name, options in ZOO:
        keras.utils.set_random_seed(0)
        backbone = getattr(keras.applications, name)(include_top=False, weights=None, input_shape=(size, size, 3), **options)
        inputs = keras.Input((size, size, 3))
        pooled = keras.layers.GlobalAveragePooling2D()(backbone(inputs))
        model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(pooled))
        t_fwd, t_ours, explainer = _forward_and_ours(model, None, x, repeats)
        rows.append((name, explainer.layer[-1], t_fwd, t_ours))
    return rows


def _conv3d_model(size: int):
    """A small Conv3D classifier of one-channel volumes ``size``^3 (random weights)."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, size, 1))
    x = layers.Conv3D(16, 3, padding="same", activation="relu")(inputs)
    x = layers.MaxPooling3D(2)(x)
    x = layers.Conv3D(32, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling3D(2)(x)
    x = layers.Conv3D(64, 3, padding="same", activation="relu", name="conv3")(x)
    x = layers.Dense(4, activation="softmax")(layers.GlobalAveragePooling3D()(x))
    return keras.Model(inputs, x, name="cnn3d")


def _vit_model(size: int, depth: int, dim: int = 192, heads: int = 3, patch: int = 16):
    """A ViT from Keras layers: patch-embedding Conv2D, a learned class token, pre-norm blocks, a class-token head."""
    import keras
    from keras import layers, ops

    class ClassToken(layers.Layer):
        def build(self, input_shape):
            self.token = self.add_weight(shape=(1, 1, input_shape[-1]), initializer="random_normal")

        def call(self, x):
            return ops.concatenate([ops.broadcast_to(self.token, (ops.shape(x)[0], 1, ops.shape(x)[-1])), x], axis=1)

    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, 3))
    x = layers.Conv2D(dim, patch, strides=patch)(inputs)
    x = ClassToken()(layers.Reshape(((size // patch) ** 2, dim))(x))
    for _ in range(depth):
        y = layers.LayerNormalization(epsilon=1e-6)(x)
        x = layers.Add()([x, layers.MultiHeadAttention(heads, dim // heads)(y, y)])
        y = layers.LayerNormalization(epsilon=1e-6)(x)
        x = layers.Add()([x, layers.Dense(dim)(layers.Dense(4 * dim, activation="gelu")(y))])
    x = layers.LayerNormalization(epsilon=1e-6)(x)
    return keras.Model(inputs, layers.Dense(4, activation="softmax")(x[:, 0]), name="vit")


def _extra_rows(args) -> list[tuple[str, str, float, dict[str, float]]]:
    """``(model, input, forward time, {method: time})`` for the 3-D CNN and the ViT, each measured alternately."""
    import numpy as np

    from neuroxai._keras_backend import to_numpy
    from neuroxai.explain import Explainer

    rng = np.random.default_rng(0)
    cases = [
        (
            "3-D CNN",
            f"{args.volume_batch} x {args.volume_size}^3",
            _conv3d_model(args.volume_size),
            rng.random((args.volume_batch, *(args.volume_size,) * 3, 1), dtype=np.float32),
            ("gradcam", "saliency"),
        ),
        (
            f"ViT ({args.vit_depth} blocks)",
            f"{args.vit_batch} x {args.vit_size} px",
            _vit_model(args.vit_size, args.vit_depth),
            rng.random((args.vit_batch, args.vit_size, args.vit_size, 3), dtype=np.float32),
            ("gradcam", "attention_rollout", "grad_rollout"),
        ),
    ]
    rows = []
    for name, shape, model, x, methods in cases:
        compiled = _compiled_forward(model, x)
        times = {}
        t_fwd = float("inf")
        for method in methods:
            explainer = Explainer(model, method, batch_size=len(x))
            fwd, ours = _time_pair(
                lambda c=compiled, b=x: to_numpy(c(b)), lambda e=explainer, b=x: e.explain(b), max(2, args.repeats - 2)
            )
            t_fwd, times[method] = min(t_fwd, fwd), ours
        rows.append((name, shape, t_fwd, times))
    return rows


def _print_extra(rows_by_backend: dict[str, list]) -> None:
    """The 3-D and transformer table: items/second of the forward pass and of each method, and their ratio."""
    if not any(rows_by_backend.values()):
        return
    print("\nTransformers and 3-D networks: the compiled forward pass against each method (best of the repeats)")
    print(f"{'backend':<12}{'model':<18}{'batch':<16}{'fwd items/s':>12}  methods (items/s, method/forward)")
    for backend, rows in rows_by_backend.items():
        for name, shape, t_fwd, times in rows:
            n = int(shape.split(" x ")[0])
            cells = ", ".join(f"{m} {n / t:.2f} ({t / t_fwd:.2f}x)" for m, t in times.items())
            print(f"{backend:<12}{name:<18}{shape:<16}{n / t_fwd:>12.2f}  {cells}")
    print("target: 3-D CNN Grad-CAM/forward <= 1.3x")


def _backend_info() -> str:
    """``"TensorFlow 2.x, devices: [...]"`` or ``"JAX 0.x, devices: [...]"`` for the running Keras backend."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return f"JAX {jax.__version__}, devices: {[d.platform.upper() for d in jax.devices()]}"
    if keras.backend.backend() == "torch":
        import torch

        return f"PyTorch {torch.__version__}, device: {keras.ops.zeros(1).device}"
    import tensorflow as tf

    return f"TensorFlow {tf.__version__}, devices: {[d.device_type for d in tf.config.list_logical_devices()]}"


def _method_times(model, layer, x, methods, repeats: int) -> dict[str, tuple[float, float]]:
    """``{method: (forward time, method time)}`` for the gradient-free methods, default options, measured alternately."""
    import numpy as np

    from neuroxai.explain import Explainer

    compiled = _compiled_forward(model, x)
    out = {}
    for method in methods:
        explainer = Explainer(model, method, target_layer=layer if method == "scorecam" else None)
        out[method] = _time_pair(lambda: np.asarray(compiled(x)), lambda e=explainer: e.explain(x), max(1, repeats // 2))
    return out


def _builtin_rows(args):
    """One row per built-in model: ``(name, layer, forward time, ours time, textbook time, {method: times})``."""
    import keras
    import numpy as np

    models = _registry_models(args.size)
    rng = np.random.default_rng(0)
    textbook = keras.backend.backend() == "tensorflow" and not args.no_textbook
    rows = []
    for name, (model, layer) in models.items():
        x = (rng.random((args.batch, args.size, args.size, 3), dtype=np.float32) * 255.0).astype(np.float32)
        measured = _measure(model, layer, x, args.repeats, textbook=textbook)
        rows.append((name, *measured, _method_times(model, layer, x, _methods(args), args.repeats)))
    return rows


def _methods(args) -> list[str]:
    return [m.strip() for m in args.methods.split(",") if m.strip()]


def _print_methods(rows_by_backend: dict[str, list], n: int) -> None:
    """The gradient-free methods' table: images/second and cost in forward passes, per backend."""
    methods = sorted({m for rows in rows_by_backend.values() for row in rows for m in row[-1]})
    if not methods:
        return
    print(f"\nGradient-free methods (default options), batch of {n}: images/second and cost in forward passes")
    print(f"{'backend':<12}{'model':<16}" + "".join(f"{m + ' img/s':>18}{m + '/fwd':>16}" for m in methods))
    for backend, rows in rows_by_backend.items():
        for row in rows:
            cells = "".join(f"{n / row[-1][m][1]:>18.2f}{row[-1][m][1] / row[-1][m][0]:>15.1f}x" for m in methods)
            print(f"{backend:<12}{row[0]:<16}{cells}")


def _installed_backends() -> list[str]:
    """TensorFlow, and JAX and PyTorch where installed (found without importing them)."""
    import importlib.util

    return ["tensorflow", *(name for name in ("jax", "torch") if importlib.util.find_spec(name) is not None)]


def _both(args) -> None:
    """Run the built-in models on each installed backend (one process each) and print them side by side."""
    import tempfile

    backends = _installed_backends()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            out = os.path.join(tmp, f"{backend}.json")
            cmd = [sys.executable, os.path.abspath(__file__), "--backend", backend, "--json", out, "--no-zoo", "--no-textbook"]
            cmd += ["--batch", str(args.batch), "--size", str(args.size), "--repeats", str(args.repeats)]
            cmd += ["--methods", args.methods]
            cmd += ["--no-extra"] if args.no_extra else _extra_args(args)
            cmd += ["--no-builtin"] if args.no_builtin else []
            subprocess.run(cmd, check=True, env=dict(os.environ, KERAS_BACKEND=backend))
            with open(out, encoding="utf-8") as fh:
                results[backend] = json.load(fh)
    if not args.no_builtin:
        _print_builtin(results, backends, args)
    _print_extra({backend: [tuple(r) for r in results[backend].get("extra", [])] for backend in backends})


def _print_builtin(results: dict, backends: list[str], args) -> None:
    """The built-in models' Grad-CAM table and the gradient-free methods' table, one row per backend."""
    n = args.batch
    print(f"\nGrad-CAM on each backend, batch of {n} images at {args.size}x{args.size}, best of {args.repeats}")
    for backend in backends:
        print(f"  {backend}: {results[backend]['info']}")
    print(f"{'backend':<12}{'model':<16}{'fwd img/s':>11}{'ours img/s':>12}{'ours/fwd':>10}{'ours vs TF':>12}")
    tf_ours = {r[0]: r[3] for r in results["tensorflow"]["rows"]}
    for backend in backends:
        for name, _layer, fwd, ours, _, _ in results[backend]["rows"]:
            print(f"{backend:<12}{name:<16}{n / fwd:>11.1f}{n / ours:>12.1f}{ours / fwd:>9.2f}x{tf_ours[name] / ours:>11.2f}x")
    print("targets: ours/fwd <= 1.2x on each backend; 'ours vs TF' is the ratio of Grad-CAM throughputs (>1: faster than TF)")
    _print_methods({backend: results[backend]["rows"] for backend in backends}, n)


def _extra_args(args) -> list[str]:
    return [
        *("--volume-size", str(args.volume_size), "--volume-batch", str(args.volume_batch)),
        *("--vit-size", str(args.vit_size), "--vit-batch", str(args.vit_batch), "--vit-depth", str(args.vit_depth)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-zoo", action="store_true", help="skip the keras.applications table")
    parser.add_argument("--zoo-size", type=int, default=128)
    parser.add_argument("--zoo-batch", type=int, default=8)
    parser.add_argument(
        "--backend",
        choices=("tensorflow", "jax", "torch", "all", "both"),
        default=os.environ.get("KERAS_BACKEND", "tensorflow"),
        help="Keras backend to measure; 'all' (or 'both'): the built-in models on every installed backend side by side",
    )
    parser.add_argument("--no-textbook", action="store_true", help="skip the (slow) textbook column")
    parser.add_argument("--methods", default="scorecam,occlusion", help="gradient-free methods to time too ('' for none)")
    parser.add_argument("--no-extra", action="store_true", help="skip the 3-D CNN and ViT rows")
    parser.add_argument("--no-builtin", action="store_true", help="skip the built-in models (only the other tables)")
    parser.add_argument("--volume-size", type=int, default=64)
    parser.add_argument("--volume-batch", type=int, default=4)
    parser.add_argument("--vit-size", type=int, default=224)
    parser.add_argument("--vit-batch", type=int, default=8)
    parser.add_argument("--vit-depth", type=int, default=6)
    parser.add_argument("--json", help=argparse.SUPPRESS)  # used by --backend both: write the rows there, print nothing
    args = parser.parse_args()
    if args.backend in ("all", "both"):
        _both(args)
        return
    os.environ["KERAS_BACKEND"] = args.backend  # before keras is first imported

    rows = [] if args.no_builtin else _builtin_rows(args)
    extra = [] if args.no_extra else _extra_rows(args)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"info": _backend_info(), "rows": [[r[0], str(r[1]), *r[2:]] for r in rows], "extra": extra}, fh)
        return

    n = args.batch
    _print_extra({args.backend: extra})
    if args.no_builtin:
        return
    print(f"\nGrad-CAM speed, batch of {n} images at {args.size}x{args.size}, {_backend_info()}")
    print(
        f"{'model':<16}{'layer':<18}{'forward img/s':>14}{'ours img/s':>12}{'textbook img/s':>16}"
        f"{'ours/forward':>14}{'textbook/ours':>15}"
    )
    for name, layer, t_fwd, t_ours, t_book, _ in rows:
        print(
            f"{name:<16}{layer!s:<18}{n / t_fwd:>14.1f}{n / t_ours:>12.1f}{n / t_book:>16.2f}"
            f"{t_ours / t_fwd:>13.2f}x{t_book / t_ours:>14.1f}x"
        )
    print("targets: ours/forward <= 1.2x, textbook/ours >= 10x (TensorFlow only)")
    _print_methods({args.backend: rows}, n)
    if args.no_zoo:
        return
    zoo = zoo_table(args.zoo_size, args.zoo_batch, max(2, args.repeats - 2))
    print(
        f"\nGrad-CAM cost per keras.applications backbone (nested under GAP + Dense), batch of {args.zoo_batch} at "
        f"{args.zoo_size}x{args.zoo_size}, automatic target layer"
    )
    print(f"{'backbone':<16}{'layer':<26}{'forward img/s':>14}{'ours img/s':>12}{'ours/forward':>14}")
    for name, layer, t_fwd, t_ours in zoo:
        b = args.zoo_batch
        print(f"{name:<16}{layer!s:<26}{b / t_fwd:>14.1f}{b / t_ours:>12.1f}{t_ours / t_fwd:>13.2f}x")


if __name__ == "__main__":
    main()
