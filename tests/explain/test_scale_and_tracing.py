"""The input-scale guard, and compiled functions that are traced once: many batches, explainers, models, evaluations."""

from __future__ import annotations

import gc
import logging
import weakref

import keras
import numpy as np
import pytest
import tensorflow as tf
from explain_models import SIZE, images_for, sequential_gray

from neuroxai.data import check_pixel_range
from neuroxai.errors import DataError, ExplainError
from neuroxai.explain import Explainer
from neuroxai.runs import Predictor
from numerics import GRADIENT_MAP_TOL, forward_tol


# ---- input scale -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gray():
    return sequential_gray()


def test_uint8_images_for_a_0_1_model_raise_a_clear_error(gray):
    predictor = Predictor(gray, ["a", "b", "c"], (SIZE, SIZE, 1), input_range=(0.0, 1.0))
    x = (images_for(gray, 2) * 255).astype(np.uint8)
    with pytest.raises(ExplainError, match=r"run from \d+ to \d+ \(uint8, a 0\.\.255 scale\), but the model expects 0\.\.1"):
        Explainer(predictor, "gradcam").explain(x)
    with pytest.raises(ExplainError, match="input_scale='convert'"):
        Explainer(gray, "gradcam", input_range=(0, 1)).explain(x.astype(np.float32))  # floats on 0..255 too


def test_convert_rescales_and_gives_the_maps_of_the_scaled_batch(gray):
    x = images_for(gray, 2)
    as_uint8 = np.round(x * 255).astype(np.uint8)
    converted = Explainer(gray, "gradcam", input_range=(0, 1), input_scale="convert").explain(as_uint8)
    expected = Explainer(gray, "gradcam", input_range=(0, 1)).explain(as_uint8.astype(np.float32) / 255)
    np.testing.assert_allclose(converted.images, as_uint8 / 255.0, atol=1e-6)
    # the images agree to one rounding of x / 255; the model sees them in another graph
    np.testing.assert_allclose(converted.maps, expected.maps, atol=GRADIENT_MAP_TOL)
    np.testing.assert_allclose(converted.probabilities, expected.probabilities, atol=forward_tol(1.0))


def test_0_1_images_for_a_0_255_model_raise_or_convert(gray):
    x = images_for(gray, 2)
    with pytest.raises(ExplainError, match="a 0..1 scale"):
        Explainer(gray, "saliency", input_range=(0, 255)).explain(x)
    exp = Explainer(gray, "saliency", input_range=(0, 255), input_scale="convert").explain(x)
    np.testing.assert_allclose(exp.images, x * 255, rtol=1e-5)


def test_in_range_undeclared_and_ignored_batches_pass(gray):
    x = images_for(gray, 2)
    Explainer(gray, "gradcam", input_range=(0, 1)).explain(np.clip(x * 1.05, 0, 1.05))  # slight overshoot is fine
    Explainer(gray, "gradcam").explain(x * 255)  # a bare model declares no range: nothing to check
    Explainer(gray, "gradcam", input_range=(0, 1), input_scale="ignore").explain(x * 255)
    with pytest.raises(ExplainError, match="input_scale must be one of check, convert, ignore"):
        Explainer(gray, "gradcam", input_scale="auto")


def test_check_pixel_range_cannot_convert_a_batch_on_no_known_scale():
    x = np.linspace(-50, 50, 16, dtype=np.float32).reshape(1, 4, 4, 1)
    with pytest.raises(DataError, match="neither a 0..1 nor a 0..255 scale"):
        check_pixel_range(x, (0.0, 1.0), convert=True)


# ---- tracing ---------------------------------------------------------------------------------------------------------
@pytest.fixture()
def tf_warnings():
    """TensorFlow's own log messages (its retracing warning among them)."""
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    handler = Collect(level=logging.WARNING)
    tf.get_logger().addHandler(handler)
    yield messages
    tf.get_logger().removeHandler(handler)


def test_many_batches_and_explainers_of_one_model_trace_once(gray, tf_warnings):
    functions = set()
    for i, n in enumerate((1, 2, 3, 5, 4, 7)):
        explainer = Explainer(gray, "gradcam", batch_size=4)  # a new explainer every time, as loops do
        explainer.explain(images_for(gray, n, seed=i), targets=i % 3)
        functions.update(explainer.cache._functions.values())
    assert len(functions) == 1
    assert next(iter(functions)).experimental_get_tracing_count() == 1
    assert not [m for m in tf_warnings if "retracing" in m]


def test_many_models_each_trace_once_and_are_not_kept_alive(tf_warnings):
    refs = []
    for seed in range(6):
        keras.utils.set_random_seed(seed)
        model = sequential_gray()
        explainer = Explainer(model, "gradcam++")
        for n in (2, 3):
            explainer.explain(images_for(model, n, seed=seed))
        assert explainer.cache.tracing_count() == 1
        refs.append(weakref.ref(model))
        del model, explainer
    gc.collect()
    assert not [m for m in tf_warnings if "retracing" in m]
    assert all(r() is None for r in refs)  # compiled functions do not pin the models


def test_evaluate_explanations_in_a_loop_does_not_retrace(gray, tf_warnings):
    from neuroxai.evaluation import evaluate_explanations
    from neuroxai.evaluation.faithfulness import _make_step

    x = images_for(gray, 4, seed=3)
    masks = np.zeros(x.shape[:3], bool)
    masks[:, 8:20, 8:20] = True
    labels = np.array([0, 1, 2, 0])
    for _ in range(6):
        report = evaluate_explanations(gray, x, masks, labels, ["gradcam"], metrics=["localization", "faithfulness"])
        assert not report.errors
    assert not [m for m in tf_warnings if "retracing" in m]
    assert _make_step(gray).experimental_get_tracing_count() <= 2  # one per batch shape at most, not one per call
    explainer = Explainer(gray, "gradcam")
    explainer.explain(x)
    assert explainer.cache.tracing_count() == 1
    assert next(iter(explainer.cache._functions.values())).experimental_get_tracing_count() == 1
