"""Keeping TensorFlow's start-up noise out of the command line's output.

When TensorFlow is first imported its C++ runtime writes lines such as
"All log messages before absl::InitializeLog() is called are written to
STDERR", "oneDNN custom operations are on", "Could not find cuda drivers on
your machine" and CPU-feature notices straight to the process's stderr. To a
user of the command line they read like failures. Since TensorFlow 2.20 they
come from absl before ``TF_CPP_MIN_LOG_LEVEL`` is read, so the variable alone
no longer hides them.

:func:`quiet_tensorflow` (called by the command line before anything else)
sets the usual variables and installs a one-shot import hook: the first
``import tensorflow`` runs with file descriptor 2 captured, and everything it
wrote except those informational lines is written back to stderr, so real
errors still show. Set ``TF_CPP_MIN_LOG_LEVEL=0`` (or ``1``) to see everything.
The library itself installs nothing: an application that imports neuroxai
keeps TensorFlow's logging as it configured it.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
import re
import sys
import tempfile
import types
from collections.abc import Iterator, Sequence

__all__ = ["is_startup_noise", "quiet_tensorflow"]

_NOISE = (
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"),
    re.compile(r"^[IW]\d{4} [\d:.]+ +\d+ [\w.]+\.cc:\d+\] "),  # absl INFO / WARNING lines from the C++ runtime
    re.compile(r"^To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.$"),
)


def is_startup_noise(line: str) -> bool:
    """True for the informational lines TensorFlow's C++ runtime prints when it is imported."""
    return any(p.search(line.rstrip("\n")) for p in _NOISE)


@contextlib.contextmanager
def _filtered_stderr() -> Iterator[None]:
    """Capture file descriptor 2; on exit write back what is not start-up noise."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (e.g. captured in a test): nothing to filter
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), fd)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            kept = [
                line for line in tmp.read().decode("utf-8", "replace").splitlines(keepends=True) if not is_startup_noise(line)
            ]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, inner: importlib.abc.Loader) -> None:
        self._inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self._inner.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        with _filtered_stderr():
            self._inner.exec_module(module)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """A one-shot finder: wraps the loader of the first ``import tensorflow``."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "tensorflow":
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def quiet_tensorflow() -> None:
    """Silence TensorFlow's start-up logging unless the user asked for it (``TF_CPP_MIN_LOG_LEVEL`` 0 or 1)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # C++ messages after start-up: errors only
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    wants_noise = os.environ.get("TF_CPP_MIN_LOG_LEVEL") in ("0", "1")
    if wants_noise or "tensorflow" in sys.modules or any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _QuietTensorFlowImport())
