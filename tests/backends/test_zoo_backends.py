"""Same Grad-CAM maps on every backend for the model zoo's keras.applications backbones (issue 18, item 5).

Runs in a process of another backend (``make test-jax``, ``make test-torch``): one TensorFlow process (``zoo_worker.py``)
builds the backbones of :data:`CROSS_BACKEND` (tests/explain/zoo_models.py) in their nested form, saves and
explains them; this process loads each saved model and explains the same images. The maps must agree to
the tolerance the worker derives from a GradientTape reference (tests/numerics.py), the probabilities likewise, on the
same automatic target layer.

Which backbones: one per distinct kind of block, and the built-in model's own backbone. Loading a model on
JAX compiles every random initializer once per weight shape before the saved weights replace them (Keras'
loader; MobileNetV2 9 s against 1.3 s on TensorFlow, several times that on a busy machine), so all fifteen families would add minutes to
CI for blocks these already cover: plain convolutions (VGG16), pre-activation residuals (ResNet50V2),
separable convolutions (Xception), depthwise convolutions (MobileNet), squeeze-and-excite with hard-swish and
Rescaling inside (MobileNetV3Small), MBConv with Rescaling and Normalization inside (EfficientNetB0, the
``efficientnetb0`` plugin's backbone) and fused MBConv (EfficientNetV2B0). tests/explain/test_zoo.py runs all
fifteen on TensorFlow.

The zoo's token and 3-D cases (issue 29; ``tests/explain/token_models.py``, built from Keras layers, tiny) take the same
way: saved on TensorFlow, loaded here (their custom layers registered by importing the module, as a ViT's user would)
and explained with Grad-CAM at the token layer (a ViT with and without a class token, a Swin-style model, a nested
ViT), both attention rollouts, and Grad-CAM, saliency and occlusion on a Conv3D model. tests/explain/test_tokens.py and
test_volume_models.py check the TensorFlow maps against GradientTape and numpy references.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

if keras.backend.backend() == "tensorflow":
    pytest.skip(
        "compares another backend's maps with TensorFlow's: run `make test-jax` or `make test-torch`", allow_module_level=True
    )

from neuroxai.explain import Explainer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "explain"))
from token_models import BACKEND_CASES, explain_case  # also registers the ViT custom layers (safe-mode loading)

from numerics import GRADIENT_MAP_TOL, forward_tol

CROSS_BACKEND = ("VGG16", "ResNet50V2", "Xception", "MobileNet", "MobileNetV3Small", "EfficientNetB0", "EfficientNetV2B0")
WORKER = Path(__file__).resolve().parent / "zoo_worker.py"
#: The maps must agree to the tolerance tests/explain/test_zoo.py allows between neuroxai and a plain GradientTape
#: reference on TensorFlow (``numerics.cam_tol`` at DEEP_FORWARD_RTOL, computed by the worker): deep backbones sum
#: float32 in a different order on each backend. Measured on JAX with the old calibration (4 images): up to 1.6e-3
#: (EfficientNetV2B0, whose statistics from 4 images amplified rounding 100-fold), below 1e-3 for the others.
#: The tiny token and 3-D cases: maps of a small model normalised by their peak, computed twice
#: (``numerics.GRADIENT_MAP_TOL``; measured below 1e-6 on JAX and on PyTorch, occlusion 1.4e-5), probabilities of a
#: forward pass (``numerics.forward_tol`` of 1; measured below 1.2e-7).
TOKEN_MAP_ATOL = GRADIENT_MAP_TOL
TOKEN_PROB_ATOL = forward_tol(1.0)
TOKEN_CASES = [(name, label) for name, (_, _, cases) in BACKEND_CASES.items() for label in cases]


@pytest.fixture(scope="module")
def on_tensorflow(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zoo_on_tf")
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, str(WORKER), str(folder), *CROSS_BACKEND], env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    with np.load(folder / "tensorflow.npz") as results:
        return folder, dict(results)


@pytest.mark.slow
@pytest.mark.parametrize("constructor", CROSS_BACKEND)
def test_zoo_gradcam_maps_agree_with_tensorflow(on_tensorflow, constructor):
    folder, reference = on_tensorflow
    model = keras.saving.load_model(folder / f"{constructor}.keras", compile=False, safe_mode=True)
    x = reference[f"{constructor}/images"]
    explanation = Explainer(model, "gradcam").explain(x)
    assert explanation.layer[0] == model.layers[1].name  # the backbone, reached through the nested model
    probability_tol, map_tol = (float(reference[f"{constructor}/{k}"]) for k in ("probability_tol", "map_tol"))
    np.testing.assert_allclose(explanation.probabilities, reference[f"{constructor}/probabilities"], rtol=0, atol=probability_tol)
    expected = reference[f"{constructor}/maps"]
    assert expected.max() == pytest.approx(1.0)  # a real map, not an all-zero one compared to itself
    np.testing.assert_allclose(explanation.maps, expected, rtol=0, atol=map_tol, err_msg=constructor)


@pytest.fixture(scope="module")
def tokens_on_tensorflow(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tokens_on_tf")
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, str(WORKER), str(folder), *BACKEND_CASES], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    with np.load(folder / "tensorflow.npz") as results:
        return folder, dict(results), {}  # the models loaded here, by name (each loaded once)


@pytest.mark.parametrize(("name", "label"), TOKEN_CASES)
def test_token_and_3d_maps_agree_with_tensorflow(tokens_on_tensorflow, name, label):
    folder, reference, loaded = tokens_on_tensorflow
    if name not in loaded:
        loaded[name] = keras.saving.load_model(folder / f"{name}.keras", compile=False, safe_mode=True)
    model = loaded[name]
    x = reference[f"{name}/images"]
    explanation = explain_case(model, x, BACKEND_CASES[name][2][label])
    np.testing.assert_allclose(explanation.probabilities, reference[f"{name}/probabilities"], rtol=0, atol=TOKEN_PROB_ATOL)
    expected = reference[f"{name}/{label}/maps"]
    assert expected.shape == x.shape[:-1] and expected.max() == pytest.approx(1.0)  # a real map at the input's size
    np.testing.assert_allclose(explanation.maps, expected, rtol=0, atol=TOKEN_MAP_ATOL, err_msg=f"{name} {label}")
