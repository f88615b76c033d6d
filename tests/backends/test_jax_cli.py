"""The ``neuroxai`` command on JAX keeps compiled programs on disk, for its next run to read instead of compiling.

Run with ``make test-jax``; skipped in a TensorFlow process.
"""

from __future__ import annotations

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

if keras.backend.backend() != "jax":
    pytest.skip("JAX backend tests: run `make test-jax` (KERAS_BACKEND=jax)", allow_module_level=True)

from backend_models import builtin_cnn, images_for
from PIL import Image


def _explain(model_file, image, out, cache_home, **extra_env):
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    env.update(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", XDG_CACHE_HOME=str(cache_home), NEUROXAI_NO_PROGRESS="1", **extra_env)
    args = [sys.executable, "-m", "neuroxai", "explain", str(model_file), str(image), "--out", str(out)]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_the_command_caches_compiled_programs_under_the_user_cache(tmp_path):
    keras.utils.set_random_seed(0)
    model = builtin_cnn()
    model.save(tmp_path / "cnn.keras")
    image = tmp_path / "scan.png"
    Image.fromarray((images_for(model, 1)[0, ..., 0] * 255).astype(np.uint8)).save(image)
    cache = tmp_path / "cache"

    first = _explain(tmp_path / "cnn.keras", image, tmp_path / "one", cache)
    assert first.returncode == 0, first.stderr[-3000:]
    assert any((cache / "neuroxai" / "jax").iterdir()), "nothing was written to the compilation cache"

    # JAX's own setting wins: the folder the user named, nothing under the default one
    own = tmp_path / "own"
    second = _explain(tmp_path / "cnn.keras", image, tmp_path / "two", tmp_path / "other", JAX_COMPILATION_CACHE_DIR=str(own))
    assert second.returncode == 0, second.stderr[-3000:]
    assert any(own.iterdir()) and not (tmp_path / "other" / "neuroxai").exists()
