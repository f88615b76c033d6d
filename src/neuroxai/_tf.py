"""Keeping TensorFlow's start-up noise out of the command line's output.

TensorFlow writes C++ log lines (CPU features, "failed call to cuInit" on a
machine without a GPU, oneDNN notices) and absl warnings to stderr when it is
first imported. To a user they read like failures. :func:`quiet_tensorflow`
must run before TensorFlow is imported; it leaves settings the user made
alone (set ``TF_CPP_MIN_LOG_LEVEL=0`` to see everything again).
"""

from __future__ import annotations

import logging
import os

__all__ = ["quiet_tensorflow"]


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ and Python start-up logging unless the user configured it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # C++: errors only
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
