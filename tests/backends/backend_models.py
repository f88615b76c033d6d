"""Models and the explanation run shared by the cross-backend tests (imported by the test and by the worker).

Nothing here imports a backend at module level: the worker sets ``KERAS_BACKEND`` before keras is imported.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

SIZE = 32
#: Methods whose maps must agree across backends: each code path once (LayerCAM and HiResCAM differ from
#: Grad-CAM in ``weigh`` only; SmoothGrad draws backend-specific noise). test_jax.py runs all of them on JAX.
METHODS: dict[str, dict[str, object]] = {
    "gradcam": {},
    "gradcam++": {},
    "saliency": {},
    "integrated_gradients": {"steps": 4},
}
#: Largest absolute difference allowed between the TensorFlow and the JAX map of one image (maps are in [0, 1]),
#: and between their class probabilities. Measured: below 3e-6 on the tiny models, float32 summation order.
MAP_ATOL = 1e-4
PROB_ATOL = 1e-5


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
    return out
