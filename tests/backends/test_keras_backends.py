"""The explanation core, the metrics, runs and training on Keras' other backends, and clear refusals (issue 18).

Backend-generic: ``make test-jax`` runs it under ``KERAS_BACKEND=jax``, ``make test-torch`` under
``KERAS_BACKEND=torch``; in a TensorFlow process the module is skipped, since a process runs the
backend keras was first imported with.
"""

from __future__ import annotations

import sys
from pathlib import Path

import keras
import numpy as np
import pytest

if keras.backend.backend() == "tensorflow":
    pytest.skip("other backends' tests: run `make test-jax` or `make test-torch`", allow_module_level=True)

from backend_models import METHODS, SIZE, builtin_cnn, images_for, nested_backbone, occlusion_scale

from neuroxai.errors import BackendError
from neuroxai.explain import CAMMethod, Explainer
from numerics import GRADIENT_MAP_TOL, difference_tol, forward_tol, normalised_tol

#: The backend under test (``jax`` or ``torch``).
BACKEND = keras.backend.backend()

PORTED = {
    "gradcam": {},
    "gradcam++": {},
    "layercam": {},
    "hirescam": {},
    "saliency": {},
    "smoothgrad": {"samples": 3},
    "integrated_gradients": {"steps": 4},
    "scorecam": {"max_channels": 6},
    "occlusion": {"patch_size": 8, "stride": 6},
}


@pytest.fixture(scope="module")
def models():
    keras.utils.set_random_seed(0)
    return {"cnn": builtin_cnn(), "nested": nested_backbone()}


#: Every ported method on the nested backbone; on the built-in cnn (slower to compile) one per code path.
CASES = [("nested", method) for method in PORTED] + [("cnn", "gradcam"), ("cnn", "saliency"), ("cnn", "scorecam")]


@pytest.mark.parametrize(("name", "method"), CASES)
def test_ported_methods_give_valid_maps_and_the_models_probabilities(models, name, method):
    model = models[name]
    x = images_for(model, 5)
    options = PORTED[method]
    per_image = int(options.get("samples", options.get("steps", 1)))  # the perturbation methods chunk by batch_size
    exp = Explainer(model, method, batch_size=4 * per_image, **options).explain(x)
    assert exp.maps.shape == (5, SIZE, SIZE) and exp.maps.dtype == np.float32
    assert np.isfinite(exp.maps).all() and exp.maps.min() >= 0.0 and exp.maps.max() <= 1.0
    peaks = exp.maps.reshape(5, -1).max(axis=1)
    assert set(np.round(peaks, 5)) <= {0.0, 1.0} and peaks.max() == pytest.approx(1.0)  # scaled to 1, or all zero
    # probabilities (<= 1), compiled against eager
    np.testing.assert_allclose(exp.probabilities, keras.ops.convert_to_numpy(model(x, training=False)), atol=forward_tol(1.0))
    np.testing.assert_array_equal(exp.targets, exp.probabilities.argmax(axis=1))


def test_explicit_targets_change_the_map_and_are_reported(models):
    model = models["cnn"]
    x = images_for(model, 2)
    explainer = Explainer(model, "gradcam", class_names=["a", "b", "c", "d"])
    predicted = explainer.explain(x)
    other = (predicted.targets + 1) % 4
    chosen = explainer.explain(x, other)
    np.testing.assert_array_equal(chosen.targets, other)
    assert not np.allclose(chosen.maps, predicted.maps)
    np.testing.assert_array_equal(explainer.explain(x, "b").targets, [1, 1])


def test_a_nested_backbone_layer_is_reached_by_its_path(models):
    model = models["nested"]
    x = images_for(model, 2)
    inner = Explainer(model, "gradcam", target_layer=("backbone.v1", "b_conv1")).explain(x)
    last = Explainer(model, "gradcam").explain(x)
    assert last.layer == ("backbone.v1", "b_conv2")
    assert inner.layer == ("backbone.v1", "b_conv1")
    assert not np.allclose(inner.maps, last.maps)


def test_changed_weights_are_seen_by_the_next_call_without_retracing():
    keras.utils.set_random_seed(1)
    model = nested_backbone()
    x = images_for(model, 3)
    explainer = Explainer(model, "gradcam")
    before = explainer.explain(x)
    assert explainer.cache.tracing_count() == 1
    explainer.explain(x)
    assert explainer.cache.tracing_count() == 1  # same batch shape: no new trace
    model.get_layer("logits").set_weights([w * -1.0 for w in model.get_layer("logits").get_weights()])
    after = explainer.explain(x)
    fresh = Explainer(model, "gradcam").explain(x)
    assert explainer.cache.tracing_count() == 1
    np.testing.assert_allclose(after.probabilities, keras.ops.convert_to_numpy(model(x, training=False)), atol=forward_tol(1.0))
    np.testing.assert_array_equal(after.maps, fresh.maps)  # the same compiled function (one trace), the same batch
    assert not np.allclose(after.maps, before.maps)


def test_batches_larger_than_batch_size_are_split_and_joined(models):
    model = models["cnn"]
    x = images_for(model, 7)
    whole = Explainer(model, "layercam", batch_size=32).explain(x)
    split = Explainer(model, "layercam", batch_size=3).explain(x)
    np.testing.assert_allclose(split.maps, whole.maps, atol=GRADIENT_MAP_TOL)  # kernels per batch size


def test_smoothgrad_noise_is_seeded(models):
    model = models["nested"]
    x = images_for(model, 2)
    a = Explainer(model, "smoothgrad", samples=3, seed=7).explain(x).maps
    b = Explainer(model, "smoothgrad", samples=3, seed=7).explain(x).maps
    c = Explainer(model, "smoothgrad", samples=3, seed=8).explain(x).maps
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_a_cam_subclass_written_on_keras_ops_runs_on_this_backend(models):
    class AbsCAM(CAMMethod):
        name = "abscam"

        def weigh(self, activations, gradients):
            return keras.ops.sum(keras.ops.abs(gradients) * activations, axis=-1)

    exp = Explainer(models["cnn"], AbsCAM()).explain(images_for(models["cnn"], 2))
    assert exp.maps.shape == (2, SIZE, SIZE) and exp.maps.max() == pytest.approx(1.0)


def test_a_method_narrowed_to_tensorflow_refuses_and_names_what_runs(models):
    from neuroxai.explain import GradCAM

    class TFOnlyCAM(GradCAM):
        name = "tfonlycam"
        backends = ("tensorflow",)

    with pytest.raises(BackendError, match=rf"tensorflow Keras backend only.*KERAS_BACKEND='{BACKEND}'") as info:
        Explainer(models["cnn"], TFOnlyCAM())
    ported = str(info.value).split("these methods run:")[1]
    assert all(name in ported for name in PORTED)


def test_gradient_free_methods_chunk_without_changing_the_map(models):
    model = models["nested"]
    x = images_for(model, 3)
    for method, options in (("scorecam", {}), ("occlusion", METHODS["occlusion"])):
        whole = Explainer(model, method, batch_size=3 * 64, **options).explain(x)
        split = Explainer(model, method, batch_size=3 * 5, **options).explain(x)  # a shorter last chunk, too
        if method == "occlusion":  # probability drops divided by their peak, per image (an all-zero map stays zero)
            peaks, scale = occlusion_scale(model, x, whole.targets)
            tols = [normalised_tol(difference_tol(scale), p) if p > 0 else 0.0 for p in peaks]
        else:  # Score-CAM: non-negative terms (probabilities times ReLU'd activations): rounding of itself, /peak
            tols = [normalised_tol(forward_tol(1.0), 1.0)] * len(x)
        for i, tol in enumerate(tols):
            np.testing.assert_allclose(split.maps[i], whole.maps[i], atol=tol, err_msg=f"{method} image {i}")


@pytest.mark.skipif(BACKEND != "torch", reason="mask-guided training runs on JAX (tests/backends/test_jax_training.py)")
def test_guided_training_refuses_on_torch_before_writing_anything(tmp_path):
    from neuroxai import Trainer
    from neuroxai.data import Dataset

    out = tmp_path / "run"
    with pytest.raises(BackendError, match=r"Mask-guided training.*tensorflow or jax Keras backend only.*KERAS_BACKEND='torch'"):
        Trainer("cnn", epochs=1, image_size=SIZE, guidance="cam").fit(Dataset.__new__(Dataset), out_dir=out)
    assert not out.exists()


FIT_SCRIPT = """
import os, sys
import keras
assert keras.backend.backend() == os.environ["KERAS_BACKEND"]
from training_helpers import epoch_hook
from neuroxai.data import phantoms
from neuroxai.training import Trainer

out, log, kill_after = sys.argv[1], sys.argv[2], int(os.environ.get("KILL_AFTER", "0"))

ds = phantoms(n_per_class=6, image_size=32, seed=0)
trainer = Trainer("cnn", epochs=3, image_size=32, batch_size=8, progress=False, seed=1, early_stopping_patience=None,
                  model_options={"width": 0.25}, callbacks=[epoch_hook(log, kill_after)]).fit(ds, out_dir=out)
print("FINISHED", trainer.evaluate(ds).metrics.n)
"""


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_one_phase_cnn_trains_and_a_killed_run_resumes(tmp_path):
    import csv
    import json
    import signal

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
    from training_helpers import run_python

    import neuroxai

    out, log1, log2 = tmp_path / "run", tmp_path / "first.log", tmp_path / "second.log"

    def run(log, kill_after=0):
        code = f"import sys; sys.argv = ['x', {str(out)!r}, {str(log)!r}]\n" + FIT_SCRIPT
        return run_python(code, env={"KERAS_BACKEND": BACKEND, "JAX_PLATFORMS": "cpu", "KILL_AFTER": str(kill_after)})

    first = run(log1, kill_after=2)
    assert first.returncode == -signal.SIGKILL, first.stderr[-3000:]
    assert json.loads((out / "backup" / "state.json").read_text())["epoch"] == 2
    assert not (out / "model.keras").exists()
    second = run(log2)
    assert second.returncode == 0 and "FINISHED" in second.stdout, second.stderr[-3000:]
    assert log1.read_text().split() == ["1", "2"] and log2.read_text().split() == ["3"]  # continued, not restarted
    with open(out / "history.csv", newline="") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [1, 2, 3]
    versions = json.loads((out / "neuroxai.json").read_text())["versions"]
    assert versions["keras_backend"] == BACKEND and versions[BACKEND]  # the run says which backend trained it
    predictor = neuroxai.load(out)
    x = images_for(predictor.model, 3)
    probs = predictor.predict_batch(x, calibrated=False)
    assert probs.shape == (3, 4) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert Explainer(predictor).explain(x).maps.shape == (3, SIZE, SIZE)


def test_model_running_metrics_run_on_this_backend(models):
    """Values equal TensorFlow's within the tolerances of backend_models (tests/backends/test_cross_backend.py)."""
    from neuroxai.evaluation import cascading_randomization, deletion_insertion_curves, evaluate_explanations, tumour_reliance
    from neuroxai.evaluation.faithfulness import _make_step

    model = models["cnn"]
    x = images_for(model, 3)
    rng = np.random.default_rng(0)
    maps = rng.random((3, SIZE, SIZE)).astype(np.float32)
    masks = np.zeros((3, SIZE, SIZE), bool)
    masks[:, 8:16, 8:16] = True
    y = np.array([0, 1, 2])
    probs = keras.ops.convert_to_numpy(model(x, training=False))
    curves = deletion_insertion_curves(model, x, maps, y, steps=4, batch_size=20)
    # probabilities (<= 1) of another batch and graph
    np.testing.assert_allclose(curves.deletion[:, 0], probs[np.arange(3), y], atol=forward_tol(1.0))  # nothing removed yet
    np.testing.assert_allclose(curves.insertion[:, -1], probs[np.arange(3), y], atol=forward_tol(1.0))  # everything inserted
    deletion_insertion_curves(model, x, maps, y, steps=4, batch_size=20)
    assert _make_step(model).tracing_count() == 1  # one compiled step per model, one trace per chunk shape (eager on torch)
    reliance = tumour_reliance(model, x, masks, y, foreground_threshold=None, margin=2.0)
    assert reliance.n_scored == 3 and np.allclose(reliance.probability, probs[np.arange(3), y], atol=forward_tol(1.0))
    sanity = cascading_randomization(model, x, y, lambda m, i, t: Explainer(m, "gradcam").explain(i, t).maps, max_layers=2)
    assert sanity.spearman[0] == pytest.approx(1.0) and len(sanity.spearman) == 3
    report = evaluate_explanations(model, x, masks, y, ["gradcam"], metrics=["localization", "faithfulness"])
    assert not report.errors and set(report.faithfulness) == {"gradcam"} and set(report.localization) == {"gradcam"}


def test_a_saved_model_loads_predicts_and_explains(models, tmp_path):
    import neuroxai

    path = tmp_path / "cnn.keras"
    models["cnn"].save(path)
    predictor = neuroxai.load(path)
    x = images_for(models["cnn"], 3)
    np.testing.assert_allclose(
        predictor.predict_batch(x, batch_size=2), keras.ops.convert_to_numpy(models["cnn"](x)), atol=forward_tol(1.0)
    )  # probabilities of batches of 2 against one of 3
    exp = Explainer(predictor).explain(x)
    assert exp.class_names == predictor.class_names and exp.maps.shape == (3, SIZE, SIZE)
    tta = predictor.predict_batch(x, tta=3)
    assert tta.shape == (3, 4) and np.allclose(tta.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(tta, predictor.predict_batch(x, tta=3))


def test_a_saved_model_evaluates_on_a_dataset_split(models, tmp_path):
    """The metrics equal TensorFlow's for the same saved model: tests/backends/test_cross_backend.py (evaluate_values)."""
    import neuroxai
    from neuroxai.data import phantoms
    from neuroxai.runs import Predictor, classification_metrics

    data = phantoms(n_per_class=4, image_size=SIZE, seed=3, test_fraction=0.5)
    path = tmp_path / "cnn.keras"
    models["cnn"].save(path)
    loaded = neuroxai.load(path)
    predictor = Predictor(loaded.model, data.class_names, loaded.input_shape)
    report = predictor.evaluate(data, batch_size=3)  # a shorter last batch, too
    read = data.read_split("test", image_size=(SIZE, SIZE), channels=1, input_range=(0.0, 1.0))
    probs = keras.ops.convert_to_numpy(models["cnn"](read.x, training=False))
    expected = classification_metrics(read.labels, probs, data.class_names)
    assert report.split == "test" and report.metrics.n == len(data.labels("test")) > 0
    assert report.metrics.confusion_matrix == expected.confusion_matrix
    assert report.metrics.accuracy == pytest.approx(expected.accuracy)
    assert report.metrics.roc_auc == pytest.approx(expected.roc_auc, abs=1e-6)
    assert report.calibration is not None


def _dropout_model(rate: float = 0.5):
    """Ones through a top-level Dropout: each output is 0 (dropped) or ``1 / (1 - rate)`` (kept)."""
    inputs = keras.Input((64,))
    return keras.Model(inputs, keras.layers.Dropout(rate, seed=5)(inputs))


def test_mc_dropout_draws_new_masks_per_call_with_the_rate_and_seeded_reproducibly():
    """The seed state advances between calls (under jax.jit as under tf.function; eagerly on torch), with TensorFlow's
    statistics."""
    from neuroxai.runs import predict_array
    from neuroxai.runs._uncertainty import _mc_model

    model = _dropout_model(0.5)
    twin, states = _mc_model(model)
    ones = np.ones((32, 64), np.float32)
    first, second = predict_array(twin, ones, 16), predict_array(twin, ones, 16)
    assert set(np.unique(first)) <= {0.0, 2.0}
    assert not np.array_equal(first, second)  # new masks per call
    assert not np.array_equal(first[:16], first[16:])  # and per batch within a call
    draws = np.concatenate([first, second])
    assert abs((draws == 0).mean() - 0.5) < 0.03  # 4096 draws: the rate within ~4 standard deviations
    np.testing.assert_array_equal(predict_array(model, ones, 16), ones)  # the model's own dropout stays off
    for layer, state in states:
        layer.seed_generator.state.assign(state)
    np.testing.assert_array_equal(predict_array(twin, ones, 16), first)  # the seed gives the same draws again


def test_test_time_augmentation_and_mc_dropout_run_on_this_backend(models):
    from neuroxai.runs import predict_array, tta_probabilities

    inputs = keras.Input((SIZE, SIZE, 1))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(8, 3, activation="relu")(inputs))
    x = keras.layers.Dense(3, activation="softmax")(keras.layers.Dropout(0.5)(x))
    model = keras.Model(inputs, x)
    images = images_for(model, 6)
    plain = predict_array(model, images, 4)
    mc = tta_probabilities(model, images, 4, augment=False, batch_size=4)
    assert not np.allclose(mc, plain, atol=1e-4) and np.allclose(mc.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(mc, tta_probabilities(model, images, 4, augment=False, batch_size=4))  # seeded
    # probabilities (<= 1) of another graph and batch
    np.testing.assert_allclose(tta_probabilities(model, images, 4, mc_dropout=False, augment=False), plain, atol=forward_tol(1.0))
    flips = tta_probabilities(models["cnn"], images_for(models["cnn"], 3), 2, mc_dropout=False)
    cnn_x = images_for(models["cnn"], 3)
    expected = (predict_array(models["cnn"], cnn_x, 8) + predict_array(models["cnn"], cnn_x[:, :, ::-1].copy(), 8)) / 2
    np.testing.assert_allclose(flips, expected, atol=forward_tol(1.0))


@pytest.fixture(scope="module")
def with_tensorflow(tmp_path_factory):
    """``(maps here of models saved here, maps here of TF-saved models, everything the TensorFlow worker computed)``."""
    from backend_models import round_trip

    return round_trip(tmp_path_factory.mktemp("backends"), BACKEND, "tensorflow")


#: The TensorFlow <-> JAX round trip runs in the TensorFlow suite (test_cross_backend.py), whose venv has jax.
ROUND_TRIP_HERE = pytest.mark.skipif(BACKEND == "jax", reason="TensorFlow <-> JAX runs in test_cross_backend.py")


@pytest.mark.slow
@ROUND_TRIP_HERE
def test_models_saved_here_explain_the_same_on_tensorflow(with_tensorflow):
    """Every method of backend_models.METHODS, the metrics and Predictor.evaluate, within its tolerances."""
    from backend_models import METHODS, compare

    here, _, on_tf = with_tensorflow
    compare(here, on_tf, "saved")
    for method in METHODS:  # real maps, not all-zero ones compared to each other
        assert max(here[f"{model}/{method}/maps"].max() for model in ("cnn", "nested")) == pytest.approx(1.0), method


@pytest.mark.slow
@ROUND_TRIP_HERE
def test_models_saved_on_tensorflow_explain_the_same_here(with_tensorflow):
    from backend_models import compare

    _, here, on_tf = with_tensorflow
    compare(here, on_tf, "built")


@pytest.mark.skipif(BACKEND != "torch", reason="PyTorch's autograd")
def test_torch_gradients_start_at_the_target_activation_and_leave_the_autograd_mode_alone():
    """The backward pass stops at the target layer's output (a leaf), gives full autograd's gradient, and the
    caller's grad mode is as it was; the model's parameters get no gradient."""
    import torch

    from neuroxai.explain import _backend

    keras.utils.set_random_seed(3)
    model = nested_backbone()
    traced = Explainer(model, "gradcam", target_layer=("backbone.v1", "b_conv1")).traced
    x = _backend.as_tensor(images_for(model, 2))
    targets = _backend.as_tensor(np.array([-1, 1], np.int32))
    for mode in (True, False):
        with torch.set_grad_enabled(mode):
            result, resolved, grads = _backend.feature_gradients(traced, x, targets)
            assert torch.is_grad_enabled() is mode
        assert result.features.is_leaf and result.features.grad_fn is None
        assert all(v.value.grad is None for v in model.trainable_variables)
    kept = {}

    def keep(t):
        t.retain_grad()
        kept["features"] = t
        return t

    with torch.enable_grad():  # the reference: autograd through the whole model
        full = traced(x, keep)
        torch.sum(_backend.gather_scores(full.scores, resolved)).backward()
    assert kept["features"].grad_fn is not None
    np.testing.assert_allclose(_backend.to_numpy(grads), _backend.to_numpy(kept["features"].grad), atol=1e-6)
    np.testing.assert_array_equal(_backend.to_numpy(resolved)[1], 1)


@pytest.mark.skipif(BACKEND != "torch", reason="PyTorch's inference mode")
def test_explaining_inside_torch_inference_mode_gives_the_same_maps(models):
    import torch

    model = models["nested"]
    x = images_for(model, 2)
    for method in ("gradcam", "saliency"):
        outside = Explainer(model, method).explain(x)
        with torch.inference_mode():
            inside = Explainer(model, method).explain(x)
        np.testing.assert_allclose(inside.maps, outside.maps, atol=1e-6, err_msg=method)
        assert inside.maps.max() == pytest.approx(1.0)
