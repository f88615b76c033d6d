"""Models and the explanation run shared by the cross-backend tests (imported by the test and by the worker).

Nothing here imports a backend at module level: the worker sets ``KERAS_BACKEND`` before keras is imported.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

SIZE = 32
#: Methods whose maps must agree across backends: each code path once (LayerCAM and HiResCAM differ from
#: Grad-CAM in ``weigh`` only; SmoothGrad draws backend-specific noise; Score-CAM with a channel selection,
#: occlusion with a patch grid that does not tile the image exactly). test_keras_backends.py runs all of them on JAX
#: and PyTorch.
METHODS: dict[str, dict[str, object]] = {
    "gradcam": {},
    "gradcam++": {},
    "saliency": {},
    "integrated_gradients": {"steps": 4},
    "scorecam": {"max_channels": 6},
    "occlusion": {"patch_size": 8, "stride": 6},
}
#: The randomization check's rank correlations and SSIM compare Grad-CAM maps of randomized models, where pixels a
#: rounding apart may swap ranks; a near-tie broken differently across many pixels moves them by more than rounding.
#: Measured: below 5e-6 TensorFlow <-> JAX, below 7e-5 TensorFlow <-> PyTorch.
SANITY_ATOL = 1e-3


def tolerance(key: str, reference: dict[str, np.ndarray]) -> float | list[float]:
    """How far another backend's value of ``reference[key]`` may be, from the numerics of the value (tests/numerics.py).

    Both backends' kernels sum float32 in their own order. Maps of the small models: ``GRADIENT_MAP_TOL``; occlusion's
    maps are probability drops divided by their peak, per image (``<model>/occlusion/peak`` and ``/scale``, from
    :func:`occlusion_scale`: a list, one per image); probabilities, deletion/insertion curves and the evaluation's
    scores: one forward pass's rounding of values <= 1; reliance drops: a difference of two such values.
    """
    from numerics import GRADIENT_MAP_TOL, difference_tol, forward_tol, normalised_tol

    if key.endswith("/occlusion/maps"):
        stem = key[: -len("/maps")]
        peaks, scale = reference[f"{stem}/peak"], float(reference[f"{stem}/scale"])
        # an all-zero map (no patch lowers the score) must be all zero on the other backend too
        return [normalised_tol(difference_tol(scale), peak) if peak > 0 else 0.0 for peak in peaks]
    if key.endswith("/maps"):
        return GRADIENT_MAP_TOL
    if "/metric/sanity" in key:
        return SANITY_ATOL
    if "/metric/reliance" in key:
        return difference_tol(1.0)
    return forward_tol(1.0)


def compare(reference: dict[str, np.ndarray], other: dict[str, np.ndarray], prefix: str) -> None:
    """Assert that ``other[prefix/key]`` equals ``reference[key]`` for every key, within :func:`tolerance`."""
    assert sorted(f"{prefix}/{k}" for k in reference) == sorted(k for k in other if k.startswith(prefix + "/"))
    for key, value in reference.items():
        if key.endswith(("/peak", "/scale")):  # the scale of occlusion's maps, not a result: each backend's own
            continue
        got, atol = other[f"{prefix}/{key}"], tolerance(key, reference)
        if isinstance(atol, list):  # one per image
            for i, image_atol in enumerate(atol):
                np.testing.assert_allclose(got[i], value[i], rtol=0, atol=image_atol, err_msg=f"{key}, image {i}")
        else:
            np.testing.assert_allclose(got, value, rtol=0, atol=atol, err_msg=key)


def nested_backbone(num_classes: int = 3):
    """The explain tests' nested backbone (a functional model as ONE layer, BatchNorm and Dropout included)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "explain"))
    from explain_models import nested_backbone as build  # backend-neutral: imports keras only when called

    return build(num_classes)


def builtin_cnn():
    """The registry's ``cnn`` on 32x32 grayscale images, four classes, at a quarter width (cheap to compile)."""
    from neuroxai.models import ModelRegistry

    return ModelRegistry(autoload=False).create("cnn", num_classes=4, input_shape=(SIZE, SIZE, 1), width=0.25)


BUILDERS = {"cnn": builtin_cnn, "nested": nested_backbone}


def build_and_save(folder: Path) -> None:
    """Build every model with seeded weights (BatchNorm statistics moved off their defaults) and save it as .keras."""
    import keras

    folder.mkdir(parents=True, exist_ok=True)
    for i, (name, build) in enumerate(BUILDERS.items()):
        keras.utils.set_random_seed(10 + i)
        model = build()
        rng = np.random.default_rng(20 + i)
        for layer in model.layers + [lay for sub in model.layers if isinstance(sub, keras.Model) for lay in sub.layers]:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.moving_mean.assign(rng.normal(0, 0.1, layer.moving_mean.shape).astype("float32"))
                layer.moving_variance.assign(rng.uniform(0.5, 1.5, layer.moving_variance.shape).astype("float32"))
        model.save(folder / f"{name}.keras")


def round_trip(root: Path, here: str, other: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Models saved on this backend (``here``) explained on ``other`` in one worker process, and the other way round.

    Builds and saves the models of :data:`BUILDERS` here; the worker (``backend_worker.py``) explains them on
    ``other``, builds, saves and explains its own; then this process explains those.

    Returns:
        ``(maps here of the models saved here, maps here of the models saved on other, everything the worker
        computed: keys "saved/..." and "built/...")``.
    """
    import os
    import subprocess

    saved, built, out = root / f"saved_on_{here}", root / f"saved_on_{other}", root / f"{other}.npz"
    build_and_save(saved)
    env = dict(os.environ, KERAS_BACKEND=other, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
    worker = Path(__file__).resolve().parent / "backend_worker.py"
    proc = subprocess.run(
        [sys.executable, str(worker), other, str(saved), str(built), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    with np.load(out) as results:
        theirs = dict(results)
    return explain_folder(saved), explain_folder(built), theirs


def images_for(model, n: int = 4, seed: int = 0) -> np.ndarray:
    """Random images in [0, 1] shaped for ``model``."""
    shape = tuple(model.inputs[0].shape[1:])
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


def explain_folder(folder: Path) -> dict[str, np.ndarray]:
    """Load every ``.keras`` file in ``folder`` (safe mode) and explain it with every method of :data:`METHODS`.

    Returns:
        ``{"<model>/<method>/maps": [N, H, W], "<model>/<method>/probabilities": [N, K]}``.
    """
    import keras

    from neuroxai.explain import Explainer

    out: dict[str, np.ndarray] = {}
    for path in sorted(folder.glob("*.keras")):
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
        x = images_for(model)
        for method, options in METHODS.items():
            explanation = Explainer(model, method, batch_size=8, **options).explain(x)
            out[f"{path.stem}/{method}/maps"] = explanation.maps
            out[f"{path.stem}/{method}/probabilities"] = explanation.probabilities
        peak, scale = occlusion_scale(model, x, out[f"{path.stem}/occlusion/probabilities"].argmax(axis=1))
        out[f"{path.stem}/occlusion/peak"], out[f"{path.stem}/occlusion/scale"] = peak, np.float64(scale)
        out.update(metric_values(path.stem, model, x))
    return out


def occlusion_scale(model, x: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, float]:
    """Occlusion by the paper on this backend, eager, one patch at a time (fill 0, the grid of ``Occlusion`` with the
    options in :data:`METHODS`): each raw map's peak (its largest ReLU'd mean drop) and the largest target
    probability the drops subtract."""
    import keras

    patch, stride = (int(str(METHODS["occlusion"][k])) for k in ("patch_size", "stride"))
    n, h, w = x.shape[:3]
    rows = np.arange(n)

    def starts(size: int) -> list[int]:
        last = max(size - patch, 0)
        found = list(range(0, last + 1, stride))
        return found + ([last] if found[-1] < last else [])

    clean = keras.ops.convert_to_numpy(model(x, training=False))[rows, targets]
    total, count, scale = np.zeros((n, h, w)), np.zeros((h, w)), float(clean.max())
    for y0 in starts(h):
        for x0 in starts(w):
            mask = np.zeros((h, w), np.float32)
            mask[y0 : y0 + patch, x0 : x0 + patch] = 1.0
            covered = keras.ops.convert_to_numpy(model(x * (1 - mask[None, :, :, None]), training=False))[rows, targets]
            total += (clean - covered)[:, None, None] * mask
            count += mask
            scale = max(scale, float(covered.max()))
    return np.maximum(total / np.maximum(count, 1.0), 0.0).max(axis=(1, 2)), scale


def metric_values(stem: str, model, x: np.ndarray) -> dict[str, np.ndarray]:
    """The explanation metrics that run the model, on fixed maps and masks (and Grad-CAM for the sanity check)."""
    from neuroxai.evaluation import cascading_randomization, deletion_insertion_curves, tumour_reliance
    from neuroxai.explain import Explainer

    n, h, w = x.shape[:3]
    yy, xx = np.mgrid[:h, :w]
    maps = np.stack([np.cos((i + 1) * xx / w) * np.sin((i + 2) * yy / h) for i in range(n)]).astype(np.float32)
    masks = np.zeros((n, h, w), bool)
    masks[:, 4:12, 6:14] = True
    labels = np.arange(n) % int(model.outputs[0].shape[-1])
    curves = deletion_insertion_curves(model, x, maps, labels, steps=5, batch_size=24)
    reliance = tumour_reliance(model, x, masks, labels, margin=2.0, foreground_threshold=None, batch_size=8)
    sanity = cascading_randomization(
        model, x, labels, lambda m, images, t: Explainer(m, "gradcam").explain(images, t).maps, max_layers=2
    )
    return {
        **evaluation_values(stem, model),
        f"{stem}/metric/deletion": curves.deletion,
        f"{stem}/metric/insertion": curves.insertion,
        f"{stem}/metric/reliance_tumour_drop": np.asarray(reliance.tumour_drop),
        f"{stem}/metric/reliance_control_drop": np.asarray(reliance.control_drop),
        f"{stem}/metric/sanity_spearman": np.asarray(sanity.spearman),
        f"{stem}/metric/sanity_ssim": np.asarray(sanity.ssim),
    }


def evaluation_values(stem: str, model) -> dict[str, np.ndarray]:
    """``Predictor.evaluate`` of a four-class model on tiny phantoms (the split decoded by tf.data on both backends)."""
    from neuroxai.data import phantoms
    from neuroxai.runs import Predictor

    data = phantoms(n_per_class=4, image_size=SIZE, seed=3, test_fraction=0.5)
    if int(model.outputs[0].shape[-1]) != data.num_classes:
        return {}
    report = Predictor(model, data.class_names, tuple(model.inputs[0].shape[1:])).evaluate(data, batch_size=3)
    m = report.metrics
    scores = [m.n, m.accuracy, m.roc_auc, m.ece, m.macro_avg.f1 if m.macro_avg else None]
    return {
        f"{stem}/metric/evaluate_scores": np.asarray([np.nan if v is None else v for v in scores], np.float64),
        f"{stem}/metric/evaluate_confusion": np.asarray(m.confusion_matrix, np.float64),
    }
