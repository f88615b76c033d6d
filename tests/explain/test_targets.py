"""Targets beyond a class index (issue 29, item 3): names, the predicted class, callables on the model output.

On the explain tests' functional model (four classes, a Dense(softmax) head): Grad-CAM of a margin between two
logits, of a probability and of a plain function equals a ``GradientTape`` reference of that value; per-image
lists mix classes, the predicted class and callables in one call (one compiled call per kind of target, not per
image); gradient-free methods watch a callable's value; wrong use says what is expected.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from explain_models import functional_rgb, images_for
from zoo_models import reference_gradcam

from neuroxai.errors import ExplainError
from neuroxai.explain import ClassProbability, ClassScore, Explainer, ExplainMethod, Margin

NAMES = ["glioma", "meningioma", "notumor", "pituitary"]


@pytest.fixture(scope="module")
def model():
    return functional_rgb(num_classes=4)


def _reference(model, x, value):
    """Grad-CAM of ``value(logits, probabilities) -> [B]`` at ``conv3``, written out with a GradientTape.

    Returns the maps and the tolerance another float32 computation meets (``numerics.cam_tol``).
    """
    probe = keras.Model(model.inputs, [model.get_layer("conv3").output, model.get_layer("head").input])
    dense = model.get_layer("head")

    def forward(t):
        feats, pooled = probe(t, training=False)
        logits = tf.matmul(pooled, dense.kernel) + dense.bias
        return feats, value(logits, tf.nn.softmax(logits))[:, None]

    return reference_gradcam(forward, x, np.zeros(len(x), np.int64))


def test_why_glioma_rather_than_meningioma(model):
    x = images_for(model, 3)
    explainer = Explainer(model, "gradcam", class_names=NAMES)
    exp = explainer.explain(x, targets=Margin("glioma", "meningioma"))
    np.testing.assert_array_equal(exp.targets, [-1, -1, -1])
    assert exp.target_names == ("glioma - meningioma",) * 3
    assert exp.objectives == ("glioma - meningioma",) * 3
    reference, map_tol = _reference(model, x, lambda z, p: z[:, 0] - z[:, 1])
    assert reference.max() == pytest.approx(1.0)
    np.testing.assert_allclose(exp.maps, reference, atol=map_tol)
    assert "explained: glioma - meningioma" in exp.title(0)
    np.testing.assert_allclose(exp.probabilities, np.asarray(model(x, training=False)), atol=1e-6)


def test_a_probability_a_logit_and_a_plain_function(model):
    x = images_for(model, 2, seed=1)
    explainer = Explainer(model, "gradcam", class_names=NAMES)
    by_probability = explainer.explain(x, targets=ClassProbability("notumor"))
    reference, map_tol = _reference(model, x, lambda z, p: p[:, 2])
    np.testing.assert_allclose(by_probability.maps, reference, atol=map_tol)
    assert by_probability.target_names == ("p(notumor)", "p(notumor)")
    by_logit = explainer.explain(x, targets=ClassScore(2))
    np.testing.assert_allclose(by_logit.maps, explainer.explain(x, targets=2).maps, atol=1e-7)  # what an index explains

    def runner_up_margin(output):
        top2 = keras.ops.top_k(output.scores, k=2)[0]
        return top2[:, 0] - top2[:, 1]

    exp = explainer.explain(x, targets=runner_up_margin)
    assert exp.target_names == ("runner_up_margin",) * 2

    def reference_margin(z, p):
        top2 = tf.math.top_k(z, k=2).values
        return top2[:, 0] - top2[:, 1]

    reference, map_tol = _reference(model, x, reference_margin)
    np.testing.assert_allclose(exp.maps, reference, atol=map_tol)


def test_one_target_per_image_mixes_kinds_in_one_call_per_kind(model):
    x = images_for(model, 4, seed=2)
    explainer = Explainer(model, "gradcam", class_names=NAMES)
    margin = Margin("pituitary", "glioma")
    mixed = explainer.explain(x, targets=[0, None, margin, "notumor"])
    predicted = explainer.explain(x)
    np.testing.assert_array_equal(mixed.targets, [0, predicted.predicted[1], -1, 2])
    assert mixed.target_names == ("glioma", predicted.predicted_names[1], "pituitary - glioma", "notumor")
    alone = [explainer.explain(x[i : i + 1], targets=t).maps[0] for i, t in enumerate([0, None, margin, "notumor"])]
    np.testing.assert_allclose(mixed.maps, np.stack(alone), atol=1e-6)
    traces = explainer.cache.tracing_count()
    explainer.explain(x, targets=Margin("pituitary", "glioma"))  # equal by value: the compiled step is reused
    assert explainer.cache.tracing_count() == traces


@pytest.mark.parametrize("method", ["saliency", "occlusion"])  # input gradients; perturbation (Score-CAM shares its path)
def test_pixel_and_gradient_free_methods_explain_a_callable(model, method):
    x = images_for(model, 2, seed=3)
    explainer = Explainer(model, method, class_names=NAMES, **({"patch_size": 8} if method == "occlusion" else {}))
    if method == "occlusion":  # it watches the target's probability fall: the same as the class's
        np.testing.assert_allclose(
            explainer.explain(x, targets=ClassProbability(1)).maps, explainer.explain(x, targets=1).maps, atol=1e-6
        )
    margin = explainer.explain(x, targets=Margin(1, 3)).maps
    assert margin.shape == (2, 32, 32) and np.isfinite(margin).all() and margin.max() == pytest.approx(1.0)
    assert not np.allclose(margin, explainer.explain(x, targets=1).maps)


def test_wrong_targets_say_what_is_expected(model):
    x = images_for(model, 2, seed=4)
    explainer = Explainer(model, "gradcam", class_names=NAMES)
    with pytest.raises(ExplainError, match=r"Unknown class 'astrocytoma' in Margin; expected one of \['glioma'"):
        explainer.explain(x, targets=Margin("astrocytoma", "glioma"))
    with pytest.raises(ExplainError, match="Margin of a class over itself"):
        explainer.explain(x, targets=Margin(1, "meningioma"))
    with pytest.raises(
        ExplainError, match=r"one value per image, shape \[batch\]; <lambda> returned shape \(2, 4\) for a batch of 2"
    ):
        explainer.explain(x, targets=lambda output: output.scores)
    with pytest.raises(ExplainError, match="neither a class index, a class name, None"):
        explainer.explain(x, targets=[0, 1.5])
    with pytest.raises(ExplainError, match="Got 3 targets for 2 images"):
        explainer.explain(x, targets=[0, 1, Margin(0, 1)])

    class ClassesOnly(ExplainMethod):
        name = "classes_only"
        backends = ("tensorflow", "jax", "torch")

    with pytest.raises(
        ExplainError, match="'classes_only' explains class targets only; got the callable target glioma - notumor"
    ):
        Explainer(model, ClassesOnly(), class_names=NAMES).explain(x, targets=Margin("glioma", "notumor"))
