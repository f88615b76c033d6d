"""Run on the other backend by tests/backends/test_cross_backend.py: ``python backend_worker.py BACKEND SAVED BUILT OUT``.

Also run by tests/backends/test_keras_backends.py with ``BACKEND=tensorflow`` (the PyTorch round trip).
Sets ``KERAS_BACKEND`` before keras is imported, explains the models saved in ``SAVED`` (by the test, on
its own backend), builds and saves its own models into ``BUILT`` and explains those too, and writes every map
and probability to ``OUT`` (``.npz``; keys ``saved/...`` and ``built/...``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    backend, saved, built, out = argv
    os.environ["KERAS_BACKEND"] = backend
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import keras
    import numpy as np
    from backend_models import build_and_save, explain_folder

    if keras.backend.backend() != backend:
        raise SystemExit(f"expected the {backend} backend, got {keras.backend.backend()}")
    results = {f"saved/{k}": v for k, v in explain_folder(Path(saved)).items()}
    build_and_save(Path(built))
    results.update({f"built/{k}": v for k, v in explain_folder(Path(built)).items()})
    np.savez(out, **results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
