"""Loading a saved model on JAX: a fresh process without, then with, the persistent compilation cache, beside TensorFlow.

Keras' loader fills every weight from its random initializer before the saved value replaces it; on JAX each
weight shape compiles its initializer, in every new process. The ``neuroxai`` command turns on JAX's persistent
compilation cache (:func:`neuroxai._keras_backend.enable_jax_compilation_cache`), so a second process reads
those programs from disk. Prints the load time of one ``keras.applications`` backbone (default MobileNetV2,
random weights, 224 px) in four fresh processes, side by side: TensorFlow, JAX without the cache, JAX filling
an empty cache, JAX reading it, and the ratios to TensorFlow.

Run: ``python benchmarks/jax_load_cache.py [--model MobileNetV2]`` (about two minutes on 2 CPU cores; needs jax).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

LOAD = """
import sys, time
from neuroxai._keras_backend import enable_jax_compilation_cache
enable_jax_compilation_cache() if sys.argv[2] == "cache" else None
import keras
start = time.perf_counter()
keras.saving.load_model(sys.argv[1], compile=False, safe_mode=True)
print(time.perf_counter() - start)
"""


def _load_seconds(path: Path, backend: str, cache: Path | None) -> float:
    env = dict(os.environ, KERAS_BACKEND=backend, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    if cache is not None:
        env["XDG_CACHE_HOME"] = str(cache)
    args = [sys.executable, "-c", LOAD, str(path), "cache" if cache is not None else "plain"]
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="MobileNetV2", help="a keras.applications constructor")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        build = f"import keras; keras.applications.{args.model}(weights=None).save({str(path)!r})"
        subprocess.run([sys.executable, "-c", build], env=dict(os.environ, KERAS_BACKEND="tensorflow"), check=True)
        cache = Path(tmp) / "cache"
        tf_s = _load_seconds(path, "tensorflow", None)
        plain = _load_seconds(path, "jax", None)
        first = _load_seconds(path, "jax", cache)
        second = _load_seconds(path, "jax", cache)
    print(f"\nLoading {args.model} (.keras, safe mode), each in a fresh process")
    print(f"{'':<34}{'seconds':>9}{'vs TF':>8}")
    for name, seconds in (
        ("TensorFlow", tf_s),
        ("JAX, no cache", plain),
        ("JAX, filling an empty cache", first),
        ("JAX, reading the cache", second),
    ):
        print(f"{name:<34}{seconds:>9.1f}{seconds / tf_s:>7.1f}x")


if __name__ == "__main__":
    main()
