"""Transformers (issue 29, item 1): Grad-CAM at token layers, attention rollout, and the errors of wrong use.

Models from ``token_models.py`` (Keras layers only, 32 px images): a ViT with a class-token head and one
with a pooled head, a Swin-style model (window attention, shifted windows, patch merging), and the
class-token ViT's encoder nested as one layer, saved to ``.keras`` and loaded back. For each:

- the automatic target layer (the last token layer; for a class-token head the input of the last
  attention, whose patch tokens reach the class token), its grid (from the patch embedding, or a Swin
  stage's window merge) and extra tokens;
- Grad-CAM equal to a plain ``GradientTape`` reference on the tokens put on that grid by hand;
- every method's maps valid (float32, [0, 1], finite, input-sized, not all constant), probabilities the
  model's, the model unchanged;
- attention rollout and its gradient-weighted variant equal to numpy references from the attention the
  ``MultiHeadAttention`` layers return (``return_attention_scores=True``) in a forward pass written out by hand.
"""

from __future__ import annotations

import logging

import keras
import numpy as np
import pytest
import tensorflow as tf
from token_models import NUM_CLASSES, SIZE, nested_vit, swin, token_images, vit
from zoo_models import FAST, check_maps, fingerprint, reference_gradcam, save_and_load

from neuroxai.errors import ExplainError
from neuroxai.explain import Explainer, MethodRegistry, TokenGrid
from numerics import GRADIENT_MAP_TOL

_REGISTRY = MethodRegistry(autoload=False)
ATTENTION_METHODS = [m for m in _REGISTRY.names() if _REGISTRY.get(m).needs_attention]
#: Rollouts against numpy: maps of a small model normalised by their peak, computed twice (numerics.GRADIENT_MAP_TOL;
#: measured below 7e-7 by default, under ONEDNN_MAX_CPU_ISA=AVX2 and under TF_ENABLE_ONEDNN_OPTS=0).
ROLLOUT_TOL = GRADIENT_MAP_TOL


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Each token model once; the nested ViT also saved and loaded back (with its pre-save twin for references)."""
    built = {"vit_cls": vit(class_token=True), "vit_gap": vit(class_token=False), "swin": swin()}
    nested = nested_vit()
    built["nested_vit_reloaded"] = save_and_load(nested, tmp_path_factory.mktemp("nested_vit") / "vit.keras")
    built["nested_vit"] = nested
    return built


#: name -> (automatic target layer, grid, extra tokens, the target's name in its encoder, the last token layer, pooling)
CASES = {
    "vit_cls": ("block1_norm1", (4, 4), 1, "block1_norm1", "encoder_norm", "cls"),
    "vit_gap": ("encoder_norm", (4, 4), 0, "encoder_norm", "encoder_norm", "gap"),
    "swin": ("final_norm", (4, 4), 0, "final_norm", "final_norm", "gap"),
    "nested_vit_reloaded": (("vit_backbone", "block1_norm1"), (4, 4), 1, "block1_norm1", "encoder_norm", "cls"),
}


def _encoder_of(models, name):
    """The model whose layers a reference reads, and the head Dense (weights shared with the explained model)."""
    if name == "nested_vit_reloaded":
        original = models["nested_vit"]
        return original.get_layer("vit_backbone"), original.get_layer("head")
    model = models[name]
    return model, model.get_layer("head")


def _forward(models, name):
    """``forward(x) -> (the target tokens, pre-softmax class scores)`` through the model's own layers."""
    layer, last, pooling = CASES[name][3:]
    encoder, head = _encoder_of(models, name)
    probe = keras.Model(encoder.inputs, [encoder.get_layer(layer).output, encoder.get_layer(last).output])

    def forward(t):
        tokens, last = probe(t, training=False)
        pooled = last[:, 0] if pooling == "cls" else tf.reduce_mean(last, axis=1)
        return tokens, tf.matmul(pooled, head.kernel) + head.bias

    return forward


def _to_grid(name):
    """The class token dropped and the patch tokens reshaped to their grid, by hand."""
    grid, extra = CASES[name][1:3]
    return lambda t: tf.reshape(t[:, extra:], (-1, *grid, t.shape[-1]))


@pytest.mark.parametrize("name", list(CASES))
def test_gradcam_on_token_models_matches_a_gradient_tape_reference(models, name):
    model = models[name]
    layer, grid, extra = CASES[name][:3]
    x = token_images(3, seed=1)
    before = fingerprint(model)
    explainer = Explainer(model, "gradcam")
    exp = explainer.explain(x)
    assert exp.layer == layer
    assert explainer.layout.kind == "tokens" and explainer.layout.grid == grid and explainer.layout.extra_tokens == extra
    check_maps(exp, x, explainer)
    np.testing.assert_allclose(exp.probabilities, np.asarray(model(x, training=False)), atol=1e-5)
    reference, map_tol = reference_gradcam(_forward(models, name), x, exp.targets, to_grid=_to_grid(name))
    assert reference.max() == pytest.approx(1.0)  # a real map, not zeros compared with zeros
    np.testing.assert_allclose(exp.maps, reference, atol=map_tol)
    assert fingerprint(model) == before


#: One method per code path on the class-token ViT (tracing a transformer's gradient costs seconds: LayerCAM differs from
#: Grad-CAM++ and HiResCAM in ``weigh`` only, SmoothGrad and integrated gradients from saliency in their samples only,
#: and all of them are checked on every other kind of model); on the Swin-style model the paths it adds (Score-CAM's
#: channel masks from a token grid, the rollouts' refusal of window attention): its Grad-CAM is compared above.
TOKEN_PATHS = ("gradcam++", "hirescam", "scorecam", "saliency", "occlusion", *ATTENTION_METHODS)
EVERY_METHOD_CASES = [("vit_cls", m) for m in TOKEN_PATHS] + [("swin", m) for m in ("scorecam", *ATTENTION_METHODS)]
#: Cheap options (few samples, steps, channels; occlusion: four 16 px patches).
OPTIONS = {**FAST, "occlusion": {"patch_size": 16, "stride": 16}}


@pytest.mark.parametrize(("name", "method"), EVERY_METHOD_CASES)
def test_every_method_on_token_models(models, name, method):
    model = models[name]
    x = token_images(2, seed=2)
    if method in ATTENTION_METHODS and name == "swin":
        with pytest.raises(ExplainError, match=r"attends within windows .*global self-attention.*Grad-CAM family"):
            Explainer(model, method)
        return
    before = fingerprint(model)
    explainer = Explainer(model, method, batch_size=16, **OPTIONS.get(method, {}))
    exp = explainer.explain(x)
    check_maps(exp, x, explainer)
    np.testing.assert_allclose(exp.probabilities, np.asarray(model(x, training=False)), atol=1e-5)
    assert fingerprint(model) == before


# ---- attention rollout -------------------------------------------------------------------------------------------
def _attentions(models, name, x, targets=None):
    """Attention ``[B, heads, T, T]`` of each block, and (with ``targets``) the gradient of the target logits w.r.t. it.

    The ViT written out by hand with its own layers, every ``MultiHeadAttention`` called with
    ``return_attention_scores=True``; TensorFlow differentiates with respect to the returned attention
    itself (the tensor the layer multiplies the values with).
    """
    encoder, head = _encoder_of(models, name)
    pooling = CASES[name][5]
    t = tf.constant(x)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(t)
        h = encoder.get_layer("to_tokens")(encoder.get_layer("patch_embed")(t))
        if pooling == "cls":
            h = encoder.get_layer("cls_token")(h)
        h = encoder.get_layer("pos_embed")(h)
        attentions = []
        for i in range(2):
            y = encoder.get_layer(f"block{i}_norm1")(h)
            y, scores = encoder.get_layer(f"block{i}_attn")(y, y, return_attention_scores=True)
            attentions.append(scores)
            h = h + y
            z = encoder.get_layer(f"block{i}_mlp2")(encoder.get_layer(f"block{i}_mlp1")(encoder.get_layer(f"block{i}_norm2")(h)))
            h = h + z
        h = encoder.get_layer("encoder_norm")(h)
        pooled = h[:, 0] if pooling == "cls" else tf.reduce_mean(h, axis=1)
        logits = tf.matmul(pooled, head.kernel) + head.bias
        picked = None if targets is None else tf.reduce_sum(tf.gather(logits, targets, axis=1, batch_dims=1))
    grads = None if targets is None else [g.numpy() for g in tape.gradient(picked, attentions)]
    return [a.numpy() for a in attentions], grads


def _rollout_map(attentions, grads, extra):
    """The rollouts written out in numpy, then the zoo's map normalisation (ReLU, bilinear resize, divided by the peak)."""
    n, _, t, _ = attentions[0].shape
    rollout = np.broadcast_to(np.eye(t), (n, t, t))
    for i, a in enumerate(attentions):
        if grads is None:
            mixed = 0.5 * a.mean(axis=1) + 0.5 * np.eye(t)
            rollout = (mixed / mixed.sum(axis=-1, keepdims=True)) @ rollout
        else:
            rollout = rollout + np.maximum(grads[i] * a, 0.0).mean(axis=1) @ rollout
    relevance = rollout[:, 0, extra:] if extra else rollout.mean(axis=1)
    raw = np.maximum(relevance.reshape(n, 4, 4), 0.0).astype(np.float32)
    up = tf.image.resize(raw[..., None], (SIZE, SIZE), method="bilinear")[..., 0].numpy()
    return up / up.max(axis=(1, 2), keepdims=True)


@pytest.mark.parametrize("method", ATTENTION_METHODS)
@pytest.mark.parametrize("name", ["vit_cls", "vit_gap", "nested_vit_reloaded"])
def test_rollouts_match_numpy_references(models, name, method):
    model = models[name]
    x = token_images(3, seed=3)
    exp = Explainer(model, method).explain(x, targets=[0, 1, 2])
    np.testing.assert_array_equal(exp.targets, [0, 1, 2])
    attentions, grads = _attentions(models, name, x, targets=[0, 1, 2] if method == "grad_rollout" else None)
    reference = _rollout_map(attentions, grads, CASES[name][2])
    np.testing.assert_allclose(exp.maps, reference, atol=ROLLOUT_TOL)
    np.testing.assert_allclose(exp.probabilities, np.asarray(model(x, training=False)), atol=1e-5)


def test_attention_rollout_options_and_class_agnosticism(models):
    model = models["vit_cls"]
    x = token_images(2, seed=4)
    plain = Explainer(model, "attention_rollout")
    np.testing.assert_allclose(plain.explain(x, targets=0).maps, plain.explain(x, targets=2).maps, atol=1e-7)
    sharp = Explainer(model, "attention_rollout", head_fusion="max", discard_ratio=0.9).explain(x)
    check_maps(sharp, x)
    with pytest.raises(ExplainError, match="head_fusion.*mean, max, min"):
        Explainer(model, "attention_rollout", head_fusion="median")
    with pytest.raises(ExplainError, match=r"discard_ratio.*\[0, 1\)"):
        Explainer(model, "attention_rollout", discard_ratio=1.0)


def test_rollout_on_a_model_without_attention_says_what_applies(tiny_models):
    with pytest.raises(ExplainError, match=r"reads MultiHeadAttention layers.*has none.*Grad-CAM family.*pixel method"):
        Explainer(tiny_models["functional_rgb"], "attention_rollout")


# ---- token grids: given, inferred, refused -------------------------------------------------------------------------
def _flat_tokens_model():
    """Tokens made by reshaping pixels (48 tokens of 64 values): no spatial layer before them, no grid of the input."""
    keras.utils.set_random_seed(21)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Reshape((48, 64), name="pixel_tokens")(inputs)
    x = keras.layers.Dense(8, activation="relu", name="embed")(x)
    pooled = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(NUM_CLASSES, activation="softmax", name="head")(pooled), name="flat_tokens")


def test_a_token_grid_that_cannot_be_inferred_says_what_to_pass():
    model = _flat_tokens_model()
    with pytest.raises(
        ExplainError, match=r"Cannot infer the token grid of layer 'embed'.*48 tokens.*Pass token_grid=\(rows, cols\)"
    ):
        Explainer(model, "gradcam")
    x = token_images(2, seed=5)
    explainer = Explainer(model, "gradcam", token_grid=(6, 8))
    assert explainer.layout.grid == (6, 8) and explainer.layout.extra_tokens == 0 and explainer.layout.source == "given"
    assert explainer.explain(x).maps.shape == (2, SIZE, SIZE)
    with pytest.raises(ExplainError, match=r"token_grid \(5, 5\) with 20 extra token\(s\) does not fit"):
        Explainer(model, "gradcam", token_grid=TokenGrid((5, 5), extra_tokens=20))
    with pytest.raises(ExplainError, match=r"token_grid must be \(rows, cols\)"):
        Explainer(model, "gradcam", token_grid=(6,))


def test_a_given_grid_with_extra_tokens_last(models):
    model = models["vit_cls"]
    x = token_images(2, seed=6)
    inferred = Explainer(model, "gradcam").explain(x).maps
    given = Explainer(model, "gradcam", token_grid=TokenGrid((4, 4), extra_tokens=1)).explain(x).maps
    np.testing.assert_array_equal(given, inferred)
    last = Explainer(model, "gradcam", token_grid=TokenGrid((4, 4), extra_position="last"))  # wrong on purpose: shifted
    assert last.layout.extra_position == "last" and not np.allclose(last.explain(x).maps, inferred)


def test_a_named_token_layer_and_the_last_layer_of_a_class_token_model(models, caplog):
    model = models["vit_cls"]
    x = token_images(2, seed=7)
    with caplog.at_level(logging.INFO, logger="neuroxai"):
        auto = Explainer(model, "gradcam")
    assert "class-token head" in caplog.text and auto.layer == "block1_norm1"
    last = Explainer(model, "gradcam", target_layer="encoder_norm").explain(x)
    assert last.layer == "encoder_norm"
    np.testing.assert_array_equal(last.maps, 0.0)  # the head reads the class token only: no patch token has a gradient
    early = Explainer(model, "layercam", target_layer="block0_norm1").explain(x)
    check_maps(early, x)


def test_a_model_with_neither_a_spatial_nor_a_token_layer_names_what_it_found():
    keras.utils.set_random_seed(22)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Flatten(name="flatten")(inputs)
    x = keras.layers.Dense(8, activation="relu", name="hidden")(x)
    model = keras.Model(inputs, keras.layers.Dense(NUM_CLASSES, activation="softmax", name="head")(x), name="mlp")
    message = (
        r"^Model 'mlp' has no layer a Grad-CAM-family method can read: expected a feature map \(batch, height, width, "
        r"channels\) or a token sequence \(batch, tokens, channels\) output .*found head \(None, 3\), hidden \(None, 8\), "
        r"flatten \(None, 3072\) .*Use a pixel method instead: saliency, smoothgrad, integrated_gradients or occlusion\.$"
    )
    with pytest.raises(ExplainError, match=message):
        Explainer(model, "gradcam")
    assert "\n" not in message
    check_maps(Explainer(model, "saliency").explain(token_images(2)), token_images(2))


def test_a_window_partitioned_layer_is_explained_with_a_warning(models, caplog):
    with caplog.at_level(logging.WARNING, logger="neuroxai"):
        explainer = Explainer(models["swin"], "gradcam", target_layer="stage1_block0_windows")
    assert "not laid out like the 32 x 32 input" in caplog.text
    assert explainer.layout.kind == "spatial" and explainer.layout.grid == (4, 16)
