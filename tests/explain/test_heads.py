"""Output heads (softmax, logits, independent sigmoids, one sigmoid unit) from the model to the predict CSV."""

from __future__ import annotations

import csv

import keras
import numpy as np
import pytest
from PIL import Image

from neuroxai.cli import main
from neuroxai.errors import ExplainError, ModelError
from neuroxai.explain import Explainer
from neuroxai.models import HEADS, check_head, detect_head, output_probabilities
from neuroxai.runs import Predictor, load
from numerics import EPS32, forward_tol

SIZE = 16


def _model(activation, units, name):
    keras.utils.set_random_seed(11)
    inputs = keras.Input((SIZE, SIZE, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    # a large bias so logits run far outside [0, 1] and a single unit sits clearly on one side
    dense = keras.layers.Dense(units, activation=activation, name="head", bias_initializer=keras.initializers.Constant(3.0))
    return keras.Model(inputs, dense(x), name=name)


def _images(n=3):
    return np.random.default_rng(0).random((n, SIZE, SIZE, 1), dtype=np.float32)


@pytest.mark.parametrize(
    "activation, units, head",
    [("softmax", 3, "softmax"), (None, 3, "logits"), ("sigmoid", 3, "sigmoid"), ("sigmoid", 1, "binary"), (None, 1, "logits")],
)
def test_head_is_read_from_the_last_layer(activation, units, head):
    assert detect_head(_model(activation, units, "m")) == (head, True)


def test_an_unreadable_last_layer_is_assumed_softmax_and_can_be_stated():
    keras.utils.set_random_seed(12)
    inputs = keras.Input((SIZE, SIZE, 1))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(3, 3, name="conv")(inputs))
    model = keras.Model(inputs, keras.layers.ReLU(name="odd")(x))
    assert detect_head(model) == ("softmax", False)
    exp = Explainer(model, "gradcam", head="logits").explain(_images())
    assert exp.head == "logits" and exp.score_source == "logits"
    np.testing.assert_allclose(exp.probabilities.sum(axis=1), 1.0, atol=2 * 3 * EPS32)  # 3 quotients of one sum


def test_check_head_rejects_heads_that_do_not_fit():
    assert set(HEADS) == {"softmax", "logits", "sigmoid", "binary"}
    assert check_head("sigmoid", 1) == "binary"
    with pytest.raises(ModelError, match="'binary' means one sigmoid output unit"):
        check_head("binary", 3)
    with pytest.raises(ModelError, match="'softmax' needs at least 2"):
        check_head("softmax", 1)
    with pytest.raises(ModelError, match="must be one of softmax, logits, sigmoid, binary"):
        check_head("probabilities")
    with pytest.raises(ExplainError, match="'binary' means one sigmoid"):
        Explainer(_model("softmax", 3, "m"), "saliency", head="binary")


def test_output_probabilities_for_every_head():
    z = np.array([[2.0, -1.0, 0.5]], np.float32)
    np.testing.assert_allclose(output_probabilities(z, "logits"), np.exp(z) / np.exp(z).sum(), rtol=1e-6)
    np.testing.assert_array_equal(output_probabilities(z, "sigmoid"), z)
    np.testing.assert_allclose(output_probabilities(np.array([[0.8]]), "binary"), [[0.2, 0.8]], rtol=1e-6)
    np.testing.assert_allclose(output_probabilities(np.array([[0.0]]), "logits"), [[0.5, 0.5]])


def test_binary_unit_explains_either_class_with_opposite_logits():
    model = _model("sigmoid", 1, "binary")
    x = _images()
    explainer = Explainer(model, "gradcam", class_names=["healthy", "tumour"])
    p = np.asarray(model(x))[:, 0]
    exp = explainer.explain(x)
    np.testing.assert_allclose(exp.probabilities, np.stack([1 - p, p], axis=1), atol=forward_tol(1.0))  # compiled vs eager
    np.testing.assert_array_equal(exp.predicted, (p > 0.5).astype(int))  # not always class 0
    result = explainer.traced(keras.ops.convert_to_tensor(x))
    scores = np.asarray(result.scores)
    np.testing.assert_allclose(scores[:, 0], -scores[:, 1])  # the negative class's score is -z
    np.testing.assert_allclose(1 / (1 + np.exp(-scores[:, 1])), p, atol=forward_tol(1.0))


def test_predictor_gives_probabilities_for_every_head(tmp_path):
    x = _images()
    for activation, units, head in [(None, 3, "logits"), ("sigmoid", 1, "binary"), ("sigmoid", 3, "sigmoid")]:
        model = _model(activation, units, f"m_{head}")
        path = tmp_path / f"{head}.keras"
        model.save(path)
        predictor = load(path)
        assert predictor.head == head
        proba = predictor.predict(x)
        assert proba.shape == (3, 2 if units == 1 else 3)
        assert proba.min() >= 0.0 and proba.max() <= 1.0
        if head != "sigmoid":
            np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
        assert len(predictor.class_names) == proba.shape[1]
    with pytest.raises(ModelError, match="2 classes, but 3 class names"):
        Predictor(_model("sigmoid", 1, "b"), ["a", "b", "c"], (SIZE, SIZE, 1))
    stated = load(tmp_path / "sigmoid.keras", head="softmax")  # the user's word wins (here: wrongly)
    assert stated.head == "softmax"


@pytest.fixture()
def scans(tmp_path):
    root = tmp_path / "scans"
    root.mkdir()
    rng = np.random.default_rng(1)
    for name in ("a.png", "b.png"):
        Image.fromarray((rng.random((SIZE, SIZE)) * 255).astype(np.uint8)).save(root / name)
    return root


def _predict_csv(model_file, scans, tmp_path, *extra):
    out = tmp_path / f"pred_{len(list(tmp_path.iterdir()))}.csv"
    assert main(["predict", str(model_file), str(scans), "--csv", str(out), *extra]) == 0
    with open(out, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("activation, units", [(None, 3), ("sigmoid", 1)])
def test_predict_csv_columns_are_probabilities_for_logits_and_binary_heads(tmp_path, scans, activation, units):
    model = _model(activation, units, "cli_model")
    model_file = tmp_path / "model.keras"
    model.save(model_file)
    rows = _predict_csv(model_file, scans, tmp_path)
    columns = [c for c in rows[0] if c.startswith("p_")]
    assert len(columns) == (2 if units == 1 else 3)  # one unit: two classes
    for row in rows:
        probs = np.array([float(row[c]) for c in columns])
        assert 0.0 <= float(row["confidence"]) <= 1.0
        np.testing.assert_allclose(probs.sum(), 1.0, atol=1e-5)
        assert row["predicted"] == columns[int(probs.argmax())][2:]
        assert float(row["confidence"]) == pytest.approx(probs.max(), abs=1e-6)
    if units == 1:  # the unit's bias of 3 puts every image on the positive side: never "always class 0"
        assert {row["predicted"] for row in rows} == {"class_1"}
    stated = _predict_csv(model_file, scans, tmp_path, "--head", "logits")
    if units == 1:  # the sigmoid output read as a logit gives other numbers: the option is used
        assert stated[0]["p_class_1"] != rows[0]["p_class_1"]
