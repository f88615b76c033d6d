"""The model zoo: "any Keras model" as a tested promise.

What runs, and why this split (the full cross product, 15 backbones x 3 forms x 9 methods, would trace
about 400 compiled functions of large graphs, several minutes on 2 cores):

- **Every keras.applications family** (one representative each: members of a family share one builder
  and layer layout; :func:`test_every_application_family_is_in_the_zoo` fails when Keras adds a family we
  do not cover), each in three forms sharing one set of weights: *flat* (the backbone's layers at the
  top level under a GAP + Dense(softmax) head), *nested* (the backbone as one layer under the same head)
  and the nested form *saved to .keras and loaded back* (where a nested backbone's output can come back
  as a one-element list). For each: the automatic target layer, Grad-CAM equal to a plain
  ``GradientTape`` reference computed on the flat model (to the rounding of a deep float32 pass, scaled by
  the terms the channel sum cancels: ``numerics.cam_tol``), probabilities equal to the model's, maps
  finite in [0, 1] at the input's height and width and not constant, weights and configs unchanged.
  Inputs are the smallest each backbone accepts with a last feature map of at least 2x2 (a 1x1 map
  upsamples to a constant picture). The costliest seven to build, trace and save are marked ``slow``
  (they still run in ``make test``) and explain their reloaded form only: the flat and nested forms
  are the same code paths the other ten cover, and each form costs a trace of a large graph.

Random weights: batch-norm statistics are set from one batch of 16 images (``zoo_models.calibrate_batchnorm``);
with the fresh ones several backbones (MobileNet, NASNet) let activations die out, so their output does
not depend on the input and every map would rightly be constant.

Every method on two reloaded backbones and the special cases: ``test_zoo_cases.py`` (a file of its own, so
that ``make test``'s two processes share the zoo's cost).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from zoo_models import (
    APPLICATIONS,
    SLOW_APPLICATIONS,
    build_application,
    check_maps,
    fingerprint,
    reference_gradcam,
    save_and_load,
    zoo_images,
)

from neuroxai.explain import Explainer
from numerics import DEEP_FORWARD_RTOL, forward_tol


# ---- keras.applications --------------------------------------------------------------------------------------------
def _app_params():
    for _family, constructor, size, options in APPLICATIONS:
        marks = [pytest.mark.slow] if constructor in SLOW_APPLICATIONS else []
        yield pytest.param(constructor, size, options, id=constructor, marks=marks)


def test_every_application_family_is_in_the_zoo():
    covered = {family for family, *_ in APPLICATIONS}
    families = set()
    for name in dir(keras.applications):
        obj = getattr(keras.applications, name)
        if name[:1].isupper() and callable(obj):
            families.add(obj.__module__.rsplit(".", 1)[-1])
    assert families <= covered, f"keras.applications families without a zoo entry: {sorted(families - covered)}"


@pytest.mark.parametrize("constructor, size, options", list(_app_params()))
def test_application_flat_nested_and_reloaded(constructor, size, options, tmp_path):
    forms = build_application(constructor, size, options)
    loaded = save_and_load(forms.nested, tmp_path / "nested.keras")
    x = zoo_images(size, n=2)
    kernel, bias = forms.dense.kernel, forms.dense.bias

    def forward(t):
        feats, pooled = forms.pool_model(t, training=False)
        return feats, tf.matmul(pooled, kernel) + bias

    probabilities = np.asarray(forms.flat(x, training=False))
    targets = probabilities.argmax(axis=1)
    reference, map_tol = reference_gradcam(forward, x, targets, DEEP_FORWARD_RTOL)
    # probabilities move by at most half the logits' error (softmax's slope): logits of size <= max(1, |z|)
    prob_tol = forward_tol(max(1.0, float(np.abs(forward(x)[1]).max())), DEEP_FORWARD_RTOL)
    inner = (forms.backbone.name, forms.feature_layer)
    expected = {"flat": forms.feature_layer, "nested": inner, "loaded": inner}
    all_forms = (("flat", forms.flat), ("nested", forms.nested), ("loaded", loaded))
    before = {"flat": fingerprint(forms.flat), "loaded": fingerprint(loaded)}  # nested shares the flat form's weights
    for form, model in all_forms if constructor not in SLOW_APPLICATIONS else all_forms[2:]:
        explainer = Explainer(model, "gradcam")
        exp = explainer.explain(x)
        assert exp.layer == expected[form], form
        assert exp.head == "softmax" and exp.score_source == "logits", form
        check_maps(exp, x, explainer)
        np.testing.assert_allclose(exp.probabilities, probabilities, atol=prob_tol, err_msg=form)
        np.testing.assert_array_equal(exp.targets, targets)
        np.testing.assert_allclose(exp.maps, reference, atol=map_tol, err_msg=f"{constructor} {form}")
    assert fingerprint(forms.flat) == before["flat"], "explaining changed the flat/nested model"
    assert fingerprint(loaded) == before["loaded"], "explaining changed the reloaded model"
