"""Every method on every kind of model: shapes, ranges, finiteness, layer used, score source."""

from __future__ import annotations

import numpy as np
import pytest
from explain_models import BUILDERS, SIZE, images_for

from neuroxai.explain import Explainer, MethodRegistry
from numerics import forward_tol

REGISTRY = MethodRegistry(autoload=False)
#: Every method that reads any model (attention rollout reads transformers only: tests/explain/test_tokens.py).
METHODS = [m for m in REGISTRY.names() if not REGISTRY.get(m).needs_attention]
FAST_OPTIONS = {
    "smoothgrad": {"samples": 4},
    "integrated_gradients": {"steps": 4},
    "occlusion": {"patch_size": 8},
    "scorecam": {},
}
CAM_METHODS = {"gradcam", "gradcam++", "gradcampp", "layercam", "hirescam", "scorecam"}
EXPECTED_LAYER = {
    "sequential_gray": "conv2",
    "functional_rgb": "conv3",
    "nested_backbone": ("backbone.v1", "b_conv2"),
    "no_softmax": "conv",
}
EXPECTED_SCORE = {"sequential_gray": "logits", "functional_rgb": "logits", "nested_backbone": "logits", "no_softmax": "logits"}
#: What each model outputs: no_softmax ends in a linear Dense, so its outputs are logits (shown softmaxed).
EXPECTED_HEAD = {"sequential_gray": "softmax", "functional_rgb": "softmax", "nested_backbone": "softmax", "no_softmax": "logits"}


def test_builtin_method_names():
    assert set(REGISTRY.names()) == {
        "gradcam",
        "gradcam++",
        "gradcampp",
        "layercam",
        "hirescam",
        "scorecam",
        "saliency",
        "smoothgrad",
        "integrated_gradients",
        "occlusion",
        "attention_rollout",
        "grad_rollout",
    }


@pytest.mark.parametrize("model_name", list(BUILDERS))
@pytest.mark.parametrize("method", METHODS)
def test_every_method_on_every_model(tiny_models, model_name, method):
    model = tiny_models[model_name]
    x = images_for(model, n=3)
    exp = Explainer(model, method, batch_size=8, **FAST_OPTIONS.get(method, {})).explain(x)
    assert exp.maps.shape == (3, SIZE, SIZE)
    assert exp.maps.dtype == np.float32
    assert np.all(np.isfinite(exp.maps))
    assert exp.maps.min() >= 0.0 and exp.maps.max() <= 1.0
    k = int(model.outputs[0].shape[-1])
    assert exp.probabilities.shape == (3, k)
    out = np.asarray(model(x, training=False))
    if EXPECTED_HEAD[model_name] == "logits":
        out = np.exp(out) / np.exp(out).sum(axis=1, keepdims=True)
    assert exp.head == EXPECTED_HEAD[model_name]
    np.testing.assert_allclose(exp.probabilities, out, atol=forward_tol(1.0))  # probabilities <= 1, compiled vs eager
    np.testing.assert_array_equal(exp.predicted, exp.probabilities.argmax(axis=1))
    np.testing.assert_array_equal(exp.targets, exp.predicted)
    assert exp.layer == (EXPECTED_LAYER[model_name] if method in CAM_METHODS else None)
    assert exp.score_source == EXPECTED_SCORE[model_name]
    assert exp.method == ("gradcam++" if method == "gradcampp" else method)
    # a non-trivial model yields a non-trivial map somewhere in the batch
    assert exp.maps.max() == pytest.approx(1.0)
