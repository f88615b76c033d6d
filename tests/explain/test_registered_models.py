"""Every explanation method on every model in the built-in registry (32x32, random weights)."""

from __future__ import annotations

import numpy as np
import pytest

from neuroxai.explain import Explainer, MethodRegistry
from neuroxai.models import ModelRegistry

REGISTRY = ModelRegistry(autoload=False)
MODEL_NAMES = REGISTRY.names()
#: Every registered method once (``gradcampp`` is an alias of ``gradcam++``; attention rollout reads transformers only).
_REGISTRY = MethodRegistry(autoload=False)
METHODS = [m for m in _REGISTRY.names() if m != "gradcampp" and not _REGISTRY.get(m).needs_attention]
FAST = {
    "smoothgrad": {"samples": 2},
    "integrated_gradients": {"steps": 2},
    "occlusion": {"patch_size": 16},
    "scorecam": {"max_channels": 8},
}


@pytest.fixture(scope="module")
def built():
    cache = {}

    def get(name):
        if name not in cache:
            spec = REGISTRY.get(name)
            channels = spec.input_shape[-1]
            opts = {"weights": None} if name == "efficientnetb0" else {}
            model = REGISTRY.create(name, num_classes=4, input_shape=(32, 32, channels), **opts)
            lo, hi = spec.input_range
            x = lo + (hi - lo) * np.random.default_rng(0).random((2, 32, 32, channels), dtype=np.float32)
            cache[name] = (spec, model, x)
        return cache[name]

    return get


# Tracing a full EfficientNetB0 costs seconds per method on a shared CPU: on models that large, one
# method per code path (gradient CAM, Score-CAM, input gradients); every method on the others.
LARGE = {"efficientnetb0"}
CASES = [
    (model, method)
    for model in MODEL_NAMES
    for method in METHODS
    if model not in LARGE or method in {"gradcam", "scorecam", "saliency"}
]


def test_builtin_models_are_covered():
    assert {"cnn", "efficientnetb0"} <= set(MODEL_NAMES)


@pytest.mark.parametrize("model_name, method", CASES)
def test_every_method_on_registered_model(built, model_name, method):
    spec, model, x = built(model_name)
    cam = method in {"gradcam", "gradcam++", "layercam", "hirescam", "scorecam"}
    exp = Explainer(model, method, target_layer=spec.target_layer if cam else None, **FAST.get(method, {})).explain(x)
    assert exp.maps.shape == (2, 32, 32)
    assert np.all(np.isfinite(exp.maps)) and exp.maps.min() >= 0 and exp.maps.max() <= 1
    assert exp.score_source == "logits"  # built-ins end in 'logits' -> 'probabilities'
    if cam:
        assert exp.layer == spec.target_layer
