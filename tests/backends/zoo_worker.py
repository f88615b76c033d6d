"""Run on TensorFlow by tests/backends/test_zoo_backends.py: ``python zoo_worker.py FOLDER NAME...``.

Builds the named keras.applications backbones of the model zoo (tests/explain/zoo_models.py) in their nested form
(the backbone as one layer under a GAP + Dense head, batch-norm statistics set from one batch), saves each to
``FOLDER/<constructor>.keras`` and writes the images and their TensorFlow Grad-CAM maps and probabilities to
``FOLDER/tensorflow.npz`` (keys ``<constructor>/images``, ``/maps``, ``/probabilities``), with the tolerances another
correct computation meets (``/map_tol``, ``/probability_tol``: tests/numerics.py, from a GradientTape reference).
Names of the token and 3-D cases (``token_models.BACKEND_CASES``) are built, saved and explained with each of their
methods the same way (keys ``<name>/images``, ``/probabilities``, ``<name>/<method>/maps``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    folder, *wanted = argv
    os.environ["KERAS_BACKEND"] = "tensorflow"
    sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "explain"), str(Path(__file__).resolve().parents[1])]
    import keras
    import numpy as np
    import tensorflow as tf
    from token_models import BACKEND_CASES, explain_case
    from zoo_models import APPLICATIONS, build_application, reference_gradcam, zoo_images

    from neuroxai.explain import Explainer
    from numerics import DEEP_FORWARD_RTOL, forward_tol

    if keras.backend.backend() != "tensorflow":
        raise SystemExit(f"expected the tensorflow backend, got {keras.backend.backend()}")
    unknown = set(wanted) - {constructor for _family, constructor, _size, _options in APPLICATIONS} - set(BACKEND_CASES)
    if unknown:
        raise SystemExit(f"not in the zoo: {sorted(unknown)}")
    out = Path(folder)
    results: dict[str, np.ndarray] = {}
    for name, (build, images, methods) in BACKEND_CASES.items():
        if name not in wanted:
            continue
        model = build()
        model.save(out / f"{name}.keras")
        x = images()
        results[f"{name}/images"] = x
        for label, case in methods.items():
            explanation = explain_case(model, x, case)
            results[f"{name}/{label}/maps"] = explanation.maps
            results[f"{name}/probabilities"] = explanation.probabilities
    for _family, constructor, size, options in APPLICATIONS:
        if constructor not in wanted:
            continue
        forms = build_application(constructor, size, options)
        model = forms.nested
        model.save(out / f"{constructor}.keras")
        x = zoo_images(size, n=2)
        explanation = Explainer(model, "gradcam").explain(x)

        def forward(t, forms=forms):
            feats, pooled = forms.pool_model(t, training=False)
            return feats, tf.matmul(pooled, forms.dense.kernel) + forms.dense.bias

        _, map_tol = reference_gradcam(forward, x, explanation.targets, DEEP_FORWARD_RTOL)
        logits = forward(x)[1]
        results[f"{constructor}/images"] = x
        results[f"{constructor}/maps"] = explanation.maps
        results[f"{constructor}/probabilities"] = explanation.probabilities
        results[f"{constructor}/map_tol"] = np.float64(map_tol)
        # probabilities move by at most half the logits' error (softmax's slope)
        results[f"{constructor}/probability_tol"] = np.float64(
            forward_tol(max(1.0, float(np.abs(logits).max())), DEEP_FORWARD_RTOL)
        )
    np.savez(out / "tensorflow.npz", **results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
