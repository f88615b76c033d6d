"""The model zoo, continued: every method on reloaded backbones, and the special cases (see ``test_zoo.py``).

- **Every registered method** on two representative backbones in their loaded nested form
  (MobileNetV2: inverted residuals, batch norm, ReLU6; MobileNetV3Small: Rescaling inside,
  squeeze-and-excite blocks, hard-swish) and on every special case below, with cheap options (few samples, steps,
  channels, patches).
- **Special cases** at 32 px: Sequential with Rescaling inside, Normalization inside, mixed precision,
  a logits head, a sigmoid multi-label head, one sigmoid unit, one logit unit, a multi-output model
  where the user picks the output, a subclassed backbone under a functional head, a fully subclassed
  classifier (pixel methods work, CAM methods give a clear error), and a backbone built with a list
  output, saved and loaded (the reported bug). Grad-CAM matches the reference of each head's class
  score (pre-activation: logits, ``[-z, z]`` for one sigmoid unit).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from zoo_models import (
    APPLICATIONS,
    CAM_METHODS,
    FAST,
    NUM_CLASSES,
    build_application,
    check_maps,
    fingerprint,
    reference_gradcam,
    save_and_load,
    zoo_images,
)

from neuroxai.errors import ExplainError
from neuroxai.explain import Explainer, MethodRegistry
from numerics import DEEP_FORWARD_RTOL, FORWARD_RTOL, MIXED_FORWARD_RTOL, forward_tol

#: Every registered method once (``gradcampp`` is an alias of ``gradcam++``; attention rollout reads transformers only).
_REGISTRY = MethodRegistry(autoload=False)
METHODS = [m for m in _REGISTRY.names() if m != "gradcampp" and not _REGISTRY.get(m).needs_attention]


@pytest.fixture(scope="module")
def reloaded_backbones(tmp_path_factory):
    """MobileNetV2 and MobileNetV3Small nested under a head, saved and loaded back (built once for the module)."""
    out = {}
    for _family, constructor, size, options in APPLICATIONS:
        if constructor in ("MobileNetV2", "MobileNetV3Small"):
            forms = build_application(constructor, size, options)
            model = save_and_load(forms.nested, tmp_path_factory.mktemp(constructor) / "model.keras")
            out[constructor] = (model, (forms.backbone.name, forms.feature_layer), zoo_images(size, n=2, seed=1))
    return out


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("constructor", ["MobileNetV2", "MobileNetV3Small"])
def test_every_method_on_reloaded_backbones(reloaded_backbones, constructor, method):
    model, inner, x = reloaded_backbones[constructor]
    before = fingerprint(model)
    explainer = Explainer(model, method, batch_size=16, **FAST.get(method, {}))
    exp = explainer.explain(x)
    assert exp.layer == (inner if method in CAM_METHODS else None)
    check_maps(exp, x, explainer)
    np.testing.assert_allclose(exp.probabilities, np.asarray(model(x, training=False)), atol=forward_tol(1.0, DEEP_FORWARD_RTOL))
    assert fingerprint(model) == before


# ---- special cases -------------------------------------------------------------------------------------------------
SIZE = 32


class SubclassedBackbone(keras.Model):
    """A subclassed feature extractor (opaque to tracing) returning a 4-D feature map."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv1 = keras.layers.Conv2D(6, 3, activation="relu")
        self.conv2 = keras.layers.Conv2D(8, 3, activation="relu")

    def call(self, x):
        return self.conv2(self.conv1(x))


class SubclassedClassifier(keras.Model):
    """A classifier written as a subclassed model end to end."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv = keras.layers.Conv2D(8, 3, activation="relu")
        self.pool = keras.layers.GlobalAveragePooling2D()
        self.dense = keras.layers.Dense(NUM_CLASSES, activation="softmax")

    def call(self, x):
        return self.dense(self.pool(self.conv(x)))


def _conv_stack(x, prefix=""):
    x = keras.layers.Conv2D(6, 3, activation="relu", name=f"{prefix}conv1")(x)
    x = keras.layers.Conv2D(8, 3, activation="relu", name=f"{prefix}conv2")(x)
    return x


def _pooled_reference(model, feature, dense, pre=lambda z: z):
    """``forward(x) -> (features, scores)`` through the model's own layers: GAP, then the Dense kernel by hand."""
    inner = keras.Model(model.inputs, [feature, model.get_layer("gap").output])

    def forward(t):
        feats, pooled = inner(t, training=False)
        z = tf.matmul(tf.cast(pooled, tf.float32), tf.cast(dense.kernel, tf.float32)) + tf.cast(dense.bias, tf.float32)
        return feats, pre(z)

    return forward


def _head_model(activation, units, name):
    keras.utils.set_random_seed(5)
    inputs = keras.Input((SIZE, SIZE, 3))
    feats = _conv_stack(inputs)
    pooled = keras.layers.GlobalAveragePooling2D(name="gap")(feats)
    dense = keras.layers.Dense(units, activation=activation, name="head")
    model = keras.Model(inputs, dense(pooled), name=name)
    binary = units == 1
    return model, dense, feats, binary


def case_sequential_rescaling():
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Rescaling(1 / 255.0, name="rescale"),
            keras.layers.Conv2D(6, 3, activation="relu", name="conv1"),
            keras.layers.Conv2D(8, 3, activation="relu", name="conv2"),
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(NUM_CLASSES, name="logits"),
            keras.layers.Activation("softmax", name="probabilities"),
        ],
        name="seq_rescaling",
    )
    forward = _pooled_reference(model, model.get_layer("conv2").output, model.get_layer("logits"))
    return {"model": model, "layer": "conv2", "head": "softmax", "forward": forward, "scale": 255.0}


def case_normalization():
    keras.utils.set_random_seed(2)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Normalization(mean=[0.4, 0.5, 0.6], variance=[0.04, 0.05, 0.06], name="norm")(inputs)
    feats = _conv_stack(x)
    pooled = keras.layers.GlobalAveragePooling2D(name="gap")(feats)
    dense = keras.layers.Dense(NUM_CLASSES, activation="softmax", name="head")
    model = keras.Model(inputs, dense(pooled), name="normalized")
    return {"model": model, "layer": "conv2", "head": "softmax", "forward": _pooled_reference(model, feats, dense)}


def case_mixed_precision():
    keras.utils.set_random_seed(3)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        inputs = keras.Input((SIZE, SIZE, 3))
        feats = _conv_stack(inputs)
        pooled = keras.layers.GlobalAveragePooling2D(name="gap")(feats)
        dense = keras.layers.Dense(NUM_CLASSES, name="logits")
        out = keras.layers.Activation("softmax", dtype="float32", name="probabilities")(dense(pooled))
        model = keras.Model(inputs, out, name="mixed")
    finally:
        keras.config.set_dtype_policy(previous)
    forward = _pooled_reference(model, feats, dense)
    return {"model": model, "layer": "conv2", "head": "softmax", "forward": forward, "rtol": MIXED_FORWARD_RTOL}


def case_logits():
    model, dense, feats, _ = _head_model(None, NUM_CLASSES, "logits_head")
    return {"model": model, "layer": "conv2", "head": "logits", "forward": _pooled_reference(model, feats, dense)}


def case_sigmoid_multilabel():
    model, dense, feats, _ = _head_model("sigmoid", NUM_CLASSES, "multilabel")
    return {"model": model, "layer": "conv2", "head": "sigmoid", "forward": _pooled_reference(model, feats, dense)}


def case_binary_sigmoid():
    model, dense, feats, _ = _head_model("sigmoid", 1, "binary")
    forward = _pooled_reference(model, feats, dense, pre=lambda z: tf.concat([-z, z], axis=-1))
    return {"model": model, "layer": "conv2", "head": "binary", "forward": forward, "classes": 2}


def case_binary_logit():
    model, dense, feats, _ = _head_model(None, 1, "binary_logit")
    forward = _pooled_reference(model, feats, dense, pre=lambda z: tf.concat([-z, z], axis=-1))
    return {"model": model, "layer": "conv2", "head": "logits", "forward": forward, "classes": 2}


def case_multi_output():
    """Two outputs; an auxiliary 4-D branch comes after the classifier's feature map in layer order."""
    keras.utils.set_random_seed(6)
    inputs = keras.Input((SIZE, SIZE, 3))
    feats = _conv_stack(inputs)
    pooled = keras.layers.GlobalAveragePooling2D(name="gap")(feats)
    dense = keras.layers.Dense(NUM_CLASSES, activation="softmax", name="cls")
    aux = keras.layers.Conv2D(4, 3, name="aux_conv")(inputs)
    aux = keras.layers.Dense(1, name="size")(keras.layers.GlobalAveragePooling2D(name="aux_gap")(aux))
    model = keras.Model(inputs, {"cls": dense(pooled), "size": aux}, name="two_outputs")
    return {
        "model": model,
        "layer": "conv2",
        "head": "softmax",
        "forward": _pooled_reference(model, feats, dense),
        "output": "cls",
    }


def case_subclassed_backbone():
    keras.utils.set_random_seed(7)
    inputs = keras.Input((SIZE, SIZE, 3))
    backbone = SubclassedBackbone(name="sub_backbone")
    feats = backbone(inputs)
    pooled = keras.layers.GlobalAveragePooling2D(name="gap")(feats)
    dense = keras.layers.Dense(NUM_CLASSES, activation="softmax", name="head")
    model = keras.Model(inputs, dense(pooled), name="with_subclassed_backbone")
    return {"model": model, "layer": "sub_backbone", "head": "softmax", "forward": _pooled_reference(model, feats, dense)}


def case_list_output_backbone_reloaded(tmp_path):
    """The reported bug: a backbone built with a one-element list output, nested, saved and loaded back."""
    keras.utils.set_random_seed(8)
    b_in = keras.Input((SIZE, SIZE, 3))
    backbone = keras.Model(b_in, [_conv_stack(b_in, "b_")], name="list_backbone")
    inputs = keras.Input((SIZE, SIZE, 3))
    pooled = keras.layers.GlobalAveragePooling2D(name="gap")(backbone(inputs)[0])
    model = keras.Model(inputs, keras.layers.Dense(NUM_CLASSES, activation="softmax", name="head")(pooled), name="outer")
    loaded = save_and_load(model, tmp_path / "list_backbone.keras")
    flat = keras.Model(backbone.inputs, [backbone.get_layer("b_conv2").output])  # the same weights, reached directly
    dense = loaded.get_layer("head")
    kernel, bias = np.asarray(dense.kernel), np.asarray(dense.bias)

    def forward(t):
        feats = flat(t, training=False)
        return feats, tf.matmul(tf.reduce_mean(feats, axis=[1, 2]), kernel) + bias

    return {"model": loaded, "layer": ("list_backbone", "b_conv2"), "head": "softmax", "forward": forward}


CASES = {
    "sequential_rescaling": case_sequential_rescaling,
    "normalization": case_normalization,
    "mixed_precision": case_mixed_precision,
    "logits": case_logits,
    "sigmoid_multilabel": case_sigmoid_multilabel,
    "binary_sigmoid": case_binary_sigmoid,
    "binary_logit": case_binary_logit,
    "multi_output": case_multi_output,
    "subclassed_backbone": case_subclassed_backbone,
    "list_output_backbone_reloaded": case_list_output_backbone_reloaded,
}


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    built = {}
    for name, build in CASES.items():
        built[name] = build(tmp_path_factory.mktemp(name)) if name == "list_output_backbone_reloaded" else build()
    return built


def _probabilities(case, x):
    out = case["model"](x, training=False)
    out = np.asarray(out[case["output"]] if isinstance(out, dict) else out, dtype=np.float64)
    head = case["head"]
    if out.shape[1] == 1:
        p = out[:, 0] if head == "binary" else 1 / (1 + np.exp(-out[:, 0]))
        return np.stack([1 - p, p], axis=1)
    if head == "logits":
        return np.exp(out) / np.exp(out).sum(axis=1, keepdims=True)
    return out


#: oneDNN's instruction sets without float16 arithmetic, for ``ONEDNN_MAX_CPU_ISA``.
_NO_FLOAT16_ISAS = {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX512_CORE", "AVX512_CORE_VNNI", "AVX512_CORE_BF16"}


def _float16_capped_away() -> bool:
    """TensorFlow sends float16 convolutions to oneDNN when the CPU has float16 arithmetic (AVX512-FP16, AMX-FP16 or
    AVX-NE-CONVERT: ``IsDataTypeSupportedByOneDNNOnThisCPU`` reads CPUID), but oneDNN capped below it by
    ``ONEDNN_MAX_CPU_ISA`` refuses them ("could not create a primitive descriptor"). Only capping a CPU that has more
    does this: on a CPU without float16 arithmetic TensorFlow runs them on Eigen, which `make test-kernels` checks
    with TF_ENABLE_ONEDNN_OPTS=0, and uncapped oneDNN runs them in `make test`."""
    import os

    if os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "0" or os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper() not in _NO_FLOAT16_ISAS:
        return False
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return bool({"avx512_fp16", "amx_fp16", "avx_ne_convert"} & set(flags))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", list(CASES))
def test_every_method_on_every_special_case(cases, name, method):
    if name == "mixed_precision" and _float16_capped_away():
        pytest.skip("oneDNN capped below this CPU's float16 arithmetic refuses the float16 convolutions TensorFlow sends it")
    case = cases[name]
    model = case["model"]
    x = zoo_images(SIZE, n=3, seed=2, scale=case.get("scale", 1.0))
    before = fingerprint(model)
    explainer = Explainer(model, method, batch_size=16, output=case.get("output"), **FAST.get(method, {}))
    exp = explainer.explain(x)
    assert exp.layer == (case["layer"] if method in CAM_METHODS else None)
    assert exp.head == case["head"]
    assert len(exp.class_names) == case.get("classes", NUM_CLASSES)
    check_maps(exp, x, explainer)
    rtol = case.get("rtol", FORWARD_RTOL)  # float16 layers round at EPS16
    np.testing.assert_allclose(exp.probabilities, _probabilities(case, x), atol=forward_tol(1.0, rtol))  # probabilities <= 1
    if method == "gradcam":
        reference, map_tol = reference_gradcam(case["forward"], x, exp.targets, rtol)
        np.testing.assert_allclose(exp.maps, reference, atol=map_tol)
        assert exp.score_source == "logits"
    assert fingerprint(model) == before


def test_multi_output_model_needs_the_output_named(cases):
    model = cases["multi_output"]["model"]
    with pytest.raises(ExplainError, match=r"2 outputs .*cls.*size.*output="):
        Explainer(model, "gradcam")
    with pytest.raises(ExplainError, match="no output named 'nope'"):
        Explainer(model, "gradcam", output="nope")
    by_index = Explainer(model, "gradcam", output=0).explain(zoo_images(SIZE, 2, scale=1.0))
    assert by_index.layer == "conv2"  # the auxiliary branch's aux_conv is not on the explained output's path


def test_subclassed_classifier_pixel_methods_work_and_cams_say_why_not():
    keras.utils.set_random_seed(9)
    model = SubclassedClassifier(name="subclassed")
    x = zoo_images(SIZE, n=2, scale=1.0)
    model(x)  # built by a call, as subclassed models are
    before = fingerprint(model)
    for method in ("saliency", "occlusion"):
        explainer = Explainer(model, method, **FAST.get(method, {}))
        exp = explainer.explain(x)
        check_maps(exp, x, explainer)
        np.testing.assert_allclose(exp.probabilities, np.asarray(model(x)), atol=forward_tol(1.0))  # probabilities <= 1
    with pytest.raises(ExplainError, match=r"subclassed keras.Model.*Wrap it as a functional model.*pixel method"):
        Explainer(model, "gradcam")
    assert fingerprint(model) == before


def test_no_feature_map_on_the_output_path_names_the_candidates():
    keras.utils.set_random_seed(10)
    inputs = keras.Input((SIZE, SIZE, 3))
    side = keras.layers.Conv2D(4, 3, name="side_conv")(inputs)  # a 4-D layer the output does not depend on
    pooled = keras.layers.GlobalAveragePooling2D(name="gap")(inputs)
    model = keras.Model(inputs, [keras.layers.Dense(2, activation="softmax", name="head")(pooled), side])
    with pytest.raises(ExplainError, match=r"no layer with a feature map .* on the path .*candidate layers .*side_conv"):
        Explainer(model, "gradcam", output=0)
