"""Explainer behaviour users rely on: correctness vs the textbook recipe, nested models, targets, errors."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from explain_models import SIZE, functional_rgb, images_for, model_state, nested_backbone, sequential_gray
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuroxai.errors import ExplainError, NeuroxaiError, UnknownMethodError
from neuroxai.explain import Explainer, Explanation, normalize_maps
from numerics import GRADIENT_MAP_TOL, cam_tol, forward_tol


def textbook_gradcam(model, layer_name, logits_layer, x, targets):
    """The Keras-docs recipe on a flat model, per image, eager; gradients of the logits layer."""
    grad_model = keras.Model(model.inputs, [model.get_layer(layer_name).output, model.get_layer(logits_layer).output])
    terms = []
    for i in range(len(x)):
        with tf.GradientTape() as tape:
            acts, logits = grad_model([x[i : i + 1]])
            score = logits[:, targets[i]]
        grads = tape.gradient(score, acts)
        terms.append(tf.reduce_mean(grads, axis=(1, 2), keepdims=True) * acts)
    terms = tf.concat(terms, 0)
    return normalize_maps(tf.reduce_sum(terms, axis=-1), (x.shape[1], x.shape[2])).numpy(), cam_tol(terms)


def test_gradcam_matches_textbook_recipe_on_flat_model(tiny_models):
    model = tiny_models["sequential_gray"]
    x = images_for(model, n=4, seed=5)
    exp = Explainer(model, "gradcam", target_layer="conv1").explain(x, targets=[0, 1, 2, 1])
    ref, tol = textbook_gradcam(model, "conv1", "logits", x, [0, 1, 2, 1])
    np.testing.assert_allclose(exp.maps, ref, atol=tol)


def test_nested_backbone_gradcam_matches_manual_split(tiny_models):
    """The textbook recipe fails with 'Graph disconnected' here; we compute the reference by hand."""
    model = tiny_models["nested_backbone"]
    backbone = model.get_layer("backbone.v1")
    with pytest.raises(ValueError):
        keras.Model(model.inputs, [backbone.get_layer("b_conv2").output, model.output])
    x = images_for(model, n=3, seed=6)
    exp = Explainer(model, "gradcam", target_layer=("backbone.v1", "b_conv2")).explain(x, targets=2)
    acts = backbone(x, training=False)
    with tf.GradientTape() as tape:
        tape.watch(acts)
        pooled = tf.reduce_mean(acts, axis=(1, 2))
        logits = model.get_layer("logits")(pooled)
        score = tf.reduce_sum(logits[:, 2])
    grads = tape.gradient(score, acts)
    terms = tf.reduce_mean(grads, axis=(1, 2), keepdims=True) * acts
    raw = tf.reduce_sum(terms, axis=-1)
    np.testing.assert_allclose(exp.maps, normalize_maps(raw, (SIZE, SIZE)).numpy(), atol=cam_tol(terms))
    assert exp.layer == ("backbone.v1", "b_conv2")


def test_inner_layer_name_found_without_path(tiny_models):
    exp = Explainer(tiny_models["nested_backbone"], "gradcam", target_layer="b_conv1")
    assert exp.layer == ("backbone.v1", "b_conv1")


def test_efficientnetb0_nested_at_32px():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    base = keras.applications.EfficientNetB0(include_top=False, weights=None, input_shape=(SIZE, SIZE, 3))
    x = keras.layers.GlobalAveragePooling2D()(base(inputs))
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(x))
    before = model_state(model)
    exp = Explainer(model, "gradcam").explain(np.random.default_rng(0).random((2, SIZE, SIZE, 3), dtype=np.float32) * 255)
    assert exp.layer == ("efficientnetb0", "top_activation")
    assert exp.maps.shape == (2, SIZE, SIZE) and np.all(np.isfinite(exp.maps))
    assert exp.score_source == "logits"
    after = model_state(model)
    assert before["config"] == after["config"] and before["layers"] == after["layers"]


def test_logits_are_explained_not_probabilities(tiny_models):
    """Dense(activation='softmax') output: the score is x @ W + b, reached without touching the layer."""
    model = tiny_models["functional_rgb"]
    explainer = Explainer(model, "saliency")
    x = tf.constant(images_for(model, n=2))
    result = explainer.traced(x)
    head = model.get_layer("head")
    penultimate = keras.Model(model.inputs, head.input)(x)
    expected = tf.matmul(penultimate, head.kernel) + head.bias
    np.testing.assert_allclose(result.scores.numpy(), expected.numpy(), atol=forward_tol(expected))  # logits
    assert head.activation is keras.activations.softmax  # unchanged


def test_softmax_inside_nested_head_model_is_bypassed():
    keras.utils.set_random_seed(0)
    inner_in = keras.Input((8,))
    dense = keras.layers.Dense(2, activation="softmax", name="dense_softmax")
    inner = keras.Model(inner_in, dense(inner_in), name="head_model")
    inputs = keras.Input((SIZE, SIZE, 1))
    x = keras.layers.Conv2D(8, 3, name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inputs, inner(x))
    images = images_for(model, 2)
    explainer = Explainer(model, "gradcam")
    exp = explainer.explain(images)
    assert exp.score_source == "logits" and exp.head == "softmax"
    assert np.all(np.isfinite(exp.maps))
    pooled = keras.Model(inputs, model.get_layer("gap").output)(images)
    expected = np.asarray(pooled) @ np.asarray(dense.kernel) + np.asarray(dense.bias)
    result = explainer.traced(tf.constant(images))
    np.testing.assert_allclose(result.scores.numpy(), expected, atol=forward_tol(expected))  # logits
    np.testing.assert_allclose(result.probabilities.numpy(), np.asarray(model(images)), atol=forward_tol(1.0))


def test_batch_equals_single_images(tiny_models):
    model = tiny_models["nested_backbone"]
    x = images_for(model, n=5, seed=7)
    for method in ("gradcam", "scorecam", "smoothgrad"):
        explainer = Explainer(model, method, batch_size=4, **({"samples": 4} if method == "smoothgrad" else {}))
        batch = explainer.explain(x, targets=1).maps
        singles = np.concatenate([explainer.explain(x[i : i + 1], targets=1).maps for i in range(len(x))])
        np.testing.assert_allclose(batch, singles, atol=GRADIENT_MAP_TOL, err_msg=method)  # kernels per batch size


def test_same_input_twice_gives_same_map(tiny_models):
    model = tiny_models["functional_rgb"]
    x = images_for(model, n=2)
    for method in ("gradcam++", "smoothgrad", "occlusion"):
        a = Explainer(model, method).explain(x).maps
        b = Explainer(model, method).explain(x.copy()).maps
        np.testing.assert_array_equal(a, b, err_msg=method)


@pytest.mark.parametrize(
    "method", ["gradcam", "gradcam++", "layercam", "hirescam", "scorecam", "saliency", "integrated_gradients", "occlusion"]
)
def test_constant_image_and_zero_gradient_stay_finite(method):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 1)),
            keras.layers.Conv2D(4, 3, name="conv", kernel_initializer="zeros"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, kernel_initializer="zeros"),
            keras.layers.Softmax(),
        ]
    )
    options = {"steps": 4} if method == "integrated_gradients" else {}
    explainer = Explainer(model, method, **options)
    for x in (np.zeros((2, SIZE, SIZE, 1), np.float32), np.full((2, SIZE, SIZE, 1), 0.7, np.float32)):
        maps = explainer.explain(x).maps
        assert np.all(np.isfinite(maps))
        np.testing.assert_array_equal(maps, 0.0)  # all-zero map stays zero


def test_normalize_maps_guards_zero_and_nonfinite():
    raw = np.zeros((3, 4, 4), np.float32)
    raw[1] = -1.0
    raw[2, 0, 0] = np.nan
    raw[2, 1, 1] = 2.0
    out = normalize_maps(raw, (8, 8)).numpy()
    assert out.shape == (3, 8, 8) and np.all(np.isfinite(out))
    assert out[0].max() == 0.0 and out[1].max() == 0.0 and out[2].max() == pytest.approx(1.0)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(1, 4),
    scale=st.sampled_from([1.0, 255.0, 1e-3]),
    method=st.sampled_from(["gradcam", "layercam", "hirescam", "saliency"]),
    seed=st.integers(0, 2**16),
)
def test_maps_properties_over_random_inputs(tiny_models, n, scale, method, seed):
    model = tiny_models["sequential_gray"]
    x = np.random.default_rng(seed).random((n, SIZE, SIZE, 1), dtype=np.float32) * scale
    exp = Explainer(model, method).explain(x)
    assert exp.maps.shape == (n, SIZE, SIZE)
    assert np.all(np.isfinite(exp.maps))
    assert exp.maps.min() >= 0.0 and exp.maps.max() <= 1.0


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "scorecam", "smoothgrad", "integrated_gradients", "occlusion"])
def test_model_is_never_modified(method):
    model = nested_backbone()
    before = model_state(model)
    opts = {"smoothgrad": {"samples": 2}, "integrated_gradients": {"steps": 2}, "occlusion": {"patch_size": 16}}.get(method, {})
    Explainer(model, method, **opts).explain(images_for(model, 2))
    after = model_state(model)
    assert before["config"] == after["config"]
    assert before["layers"] == after["layers"]
    assert before["trainable"] == after["trainable"]
    for a, b in zip(before["weights"], after["weights"]):
        np.testing.assert_array_equal(a, b)


def test_targets_forms(tiny_models):
    model = tiny_models["functional_rgb"]
    names = ["glioma", "meningioma", "notumor", "pituitary"]
    explainer = Explainer(model, "gradcam", class_names=names)
    x = images_for(model, n=3)
    assert list(explainer.explain(x, targets=2).targets) == [2, 2, 2]
    assert explainer.explain(x, targets="notumor").target_names == ("notumor",) * 3
    assert list(explainer.explain(x, targets=[0, "pituitary", np.int64(1)]).targets) == [0, 3, 1]
    assert list(explainer.explain(x, targets=np.array([3, 2, 1])).targets) == [3, 2, 1]
    exp = explainer.explain(x)
    assert list(exp.targets) == list(exp.predicted)
    assert exp.predicted_names == tuple(names[i] for i in exp.predicted)
    # the explained class changes the map
    a = explainer.explain(x[:1], targets=0).maps
    b = explainer.explain(x[:1], targets=3).maps
    assert not np.allclose(a, b)


@pytest.mark.parametrize(
    "targets, message",
    [
        ([0, 1], "Got 2 targets for 3 images"),
        ([0, 1, 2, 3], "Got 4 targets"),
        ("tumour", "Unknown target class 'tumour'"),
        (7, "out of range"),
        (-1, "out of range"),
        ([0, 1.5, 2], "neither a class index"),
        (True, "neither"),
    ],
)
def test_target_errors(tiny_models, targets, message):
    model = tiny_models["functional_rgb"]
    explainer = Explainer(model, "gradcam", class_names=["a", "b", "c", "d"])
    with pytest.raises(ExplainError, match=message):
        explainer.explain(images_for(model, n=3), targets=targets)


def test_unknown_method_suggests_and_lists():
    with pytest.raises(UnknownMethodError, match=r"Did you mean 'gradcam'.*Available: .*scorecam") as info:
        Explainer(sequential_gray(), "gradcm")
    assert isinstance(info.value, ExplainError) and isinstance(info.value, KeyError)


def test_unknown_option_is_an_error():
    with pytest.raises(ExplainError, match="accepted options: noise, samples, seed"):
        Explainer(sequential_gray(), "smoothgrad", sample=3)


def test_wrong_layer_lists_candidates(tiny_models):
    with pytest.raises(ExplainError, match=r"'conv3' not found.*Did you mean 'conv2'.*conv2, bn, conv1"):
        Explainer(tiny_models["sequential_gray"], "gradcam", target_layer="conv3")
    with pytest.raises(ExplainError, match="has a 2-D output"):
        Explainer(tiny_models["sequential_gray"], "gradcam", target_layer="gap")
    with pytest.raises(ExplainError, match=r"no layer at \('backbone.v1', 'nope'\)"):
        Explainer(tiny_models["nested_backbone"], "gradcam", target_layer=("backbone.v1", "nope"))
    with pytest.raises(ExplainError, match="tuple of names"):
        Explainer(tiny_models["nested_backbone"], "gradcam", target_layer="backbone.v1.b_conv2")


def test_image_shape_errors(tiny_models):
    explainer = Explainer(tiny_models["sequential_gray"], "gradcam")
    with pytest.raises(ExplainError, match="channels 3 does not match"):
        explainer.explain(np.zeros((2, SIZE, SIZE, 3)))
    with pytest.raises(ExplainError, match="height 16"):
        explainer.explain(np.zeros((2, 16, SIZE, 1)))
    with pytest.raises(ExplainError, match="NaN"):
        explainer.explain(np.full((1, SIZE, SIZE, 1), np.nan))
    # [N, H, W] grayscale and a single [H, W, C] image are accepted
    assert explainer.explain(np.zeros((2, SIZE, SIZE))).maps.shape == (2, SIZE, SIZE)
    assert explainer.explain(np.zeros((SIZE, SIZE, 1))).maps.shape == (1, SIZE, SIZE)


def test_model_without_feature_map_needs_pixel_method():
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])
    with pytest.raises(ExplainError, match="no layer with a 4-D|pixel method"):
        Explainer(model, "gradcam")


def test_class_names_must_match_outputs(tiny_models):
    with pytest.raises(ExplainError, match="class_names has 2 names but model"):
        Explainer(tiny_models["sequential_gray"], "gradcam", class_names=["a", "b"])


def test_errors_are_neuroxai_errors():
    assert issubclass(ExplainError, NeuroxaiError) and issubclass(ExplainError, ValueError)


def test_predictor_like_object_supplies_defaults(tiny_models):
    class Predictor:
        model = tiny_models["sequential_gray"]
        class_names = ("x", "y", "z")
        target_layer = "conv1"
        input_range = (0.0, 1.0)

    exp = Explainer(Predictor()).explain(images_for(Predictor.model, 2))
    assert exp.layer == "conv1" and exp.class_names == ("x", "y", "z")
    assert Explainer(Predictor(), target_layer="conv2").layer == "conv2"


def test_model_loaded_from_keras_file(tmp_path):
    model = functional_rgb()
    path = tmp_path / "someone_elses.keras"
    model.save(path)
    x = images_for(model, n=2)
    from_file = Explainer(str(path), "gradcam").explain(x)
    in_memory = Explainer(model, "gradcam").explain(x)
    np.testing.assert_allclose(from_file.maps, in_memory.maps, atol=GRADIENT_MAP_TOL)  # another model, another trace
    assert from_file.layer == "conv3"


def test_missing_model_path_is_model_error(tmp_path):
    from neuroxai.errors import ModelError

    with pytest.raises(ModelError, match="does not exist"):
        Explainer(str(tmp_path / "nope.keras"))


def test_explain_fn_callable(tiny_models):
    model = tiny_models["sequential_gray"]
    explainer = Explainer(model, "gradcam")
    x = images_for(model, 2)
    np.testing.assert_array_equal(explainer(x, [0, 1]), explainer.explain(x, [0, 1]).maps)


def test_explanation_is_returned_type(tiny_models):
    assert isinstance(
        Explainer(tiny_models["sequential_gray"]).explain(images_for(tiny_models["sequential_gray"], 1)), Explanation
    )


def _write_run_dir(path, model):
    import json

    path.mkdir()
    model.save(path / "model.keras")
    spec = {
        "class_names": ["glioma", "notumor", "pituitary"],
        "input_shape": [SIZE, SIZE, 1],
        "input_range": [0.0, 1.0],
        "target_layer": "conv1",
        "model": "seq_gray",
    }
    (path / "neuroxai.json").write_text(json.dumps(spec))
    return path


def test_run_directory_supplies_class_names_and_layer(tmp_path):
    from neuroxai.runs import load

    model = sequential_gray()
    run = _write_run_dir(tmp_path / "run", model)
    exp = Explainer(str(run)).explain(images_for(model, 2), targets="notumor")
    assert exp.class_names == ("glioma", "notumor", "pituitary")
    assert exp.layer == "conv1" and list(exp.targets) == [1, 1]
    predictor = load(run)  # the same loader as a path: neuroxai.runs.load
    assert Explainer(predictor).class_names == exp.class_names and Explainer(predictor).layer == "conv1"
    np.testing.assert_allclose(
        Explainer(predictor).explain(images_for(model, 2)).maps,
        Explainer(model, target_layer="conv1").explain(images_for(model, 2)).maps,
        atol=GRADIENT_MAP_TOL,  # the run's model loaded from its file: another model, another trace
    )


def test_explaining_never_imports_training_or_builtin_models(tmp_path):
    """Explaining a user's model or a saved run needs neither the trainer nor the built-in models
    (a broken model plugin must not break explanations)."""
    import subprocess
    import sys

    run = _write_run_dir(tmp_path / "run", sequential_gray())
    code = (
        "import sys, numpy as np\n"
        "from explain_models import functional_rgb, images_for\n"
        "from neuroxai.explain import Explainer\n"
        "model = functional_rgb()\n"
        "Explainer(model, 'gradcam').explain(images_for(model, 1))\n"
        f"Explainer({str(run)!r}, 'scorecam').explain(np.zeros((1, {SIZE}, {SIZE}, 1), np.float32))\n"
        "print(sorted(m for m in sys.modules if m.startswith(('neuroxai.training', 'neuroxai.models.builtin'))))\n"
    )
    here = str(Path(__file__).parent)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=here)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_compiled_explainer_reads_current_weights():
    """Sanity checks randomise weights in place and reuse the explainer: it must see the new weights."""
    model = functional_rgb()
    explainer = Explainer(model, "gradcam")
    x = images_for(model, 2)
    before = explainer.explain(x, targets=0)
    rng = np.random.default_rng(1)
    model.get_layer("conv3").set_weights(
        [rng.normal(size=w.shape).astype("float32") for w in model.get_layer("conv3").get_weights()]
    )
    after = explainer.explain(x, targets=0)
    fresh = Explainer(model, "gradcam").explain(x, targets=0)
    assert not np.allclose(before.maps, after.maps)
    np.testing.assert_array_equal(after.maps, fresh.maps)  # the same compiled function (the cache is per model)
    np.testing.assert_allclose(after.probabilities, np.asarray(model(x)), atol=forward_tol(1.0))
