"""Same maps on TensorFlow and JAX, and a model saved on one backend explained on the other (issue 18).

Runs in the TensorFlow suite: the models are built and saved here, then one JAX process
(``backend_worker.py``) loads and explains them and builds, saves and explains its own, which this
process then loads and explains. Needs ``jax`` installed (``pip install -e .[jax]``); the behaviours on
JAX itself are in ``test_keras_backends.py`` (``make test-jax``), which also runs the TensorFlow <-> PyTorch
round trip under ``make test-torch`` (so that this suite costs nothing more where torch is installed).
"""

from __future__ import annotations

import keras
import pytest
from backend_models import METHODS, compare, round_trip

if keras.backend.backend() != "tensorflow":
    pytest.skip("the cross-backend test drives JAX from a TensorFlow process", allow_module_level=True)
pytest.importorskip("jax", reason="jax is not installed (pip install -e .[jax])")


@pytest.fixture(scope="module")
def both_ways(tmp_path_factory):
    """``(maps on TF of TF-saved models, maps on TF of JAX-saved models, everything the JAX worker computed)``."""
    return round_trip(tmp_path_factory.mktemp("backends"), "tensorflow", "jax")


@pytest.mark.slow
def test_models_saved_on_tensorflow_explain_the_same_on_jax(both_ways):
    on_tf, _, on_jax = both_ways
    compare(on_tf, on_jax, "saved")
    for method in METHODS:  # a real map, not an all-zero one compared to itself (occlusion on the nested model
        # gives none: covering a patch never lowers its probability there)
        peaks = [on_tf[f"{model}/{method}/maps"].max() for model in ("cnn", "nested")]
        assert max(peaks) == pytest.approx(1.0), (method, peaks)


@pytest.mark.slow
def test_models_saved_on_jax_explain_the_same_on_tensorflow(both_ways):
    _, on_tf, on_jax = both_ways
    compare(on_tf, on_jax, "built")
