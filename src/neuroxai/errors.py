"""Exceptions raised by neuroxai.

Every error message says what was expected, what was found, and how to fix
it, and names the file involved where there is one. All of them derive from
:class:`NeuroxaiError`, so ``except neuroxai.errors.NeuroxaiError`` catches
anything the library raises on purpose; each also derives from the closest
built-in exception (``ValueError``, ``KeyError`` ...) so existing handlers
keep working.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "DataError",
    "ExplainError",
    "ModelError",
    "NeuroxaiError",
    "NotFittedError",
    "OutputError",
    "PluginError",
    "RunBusyError",
    "RunError",
    "RunSettingsError",
    "UnknownModelError",
]


class NeuroxaiError(Exception):
    """Base class of every error neuroxai raises on purpose."""


class DataError(NeuroxaiError, ValueError):
    """A data path, file, manifest or array is missing or malformed."""


class ModelError(NeuroxaiError, ValueError):
    """A model cannot be built, loaded or fed the given input."""


class UnknownNameError(NeuroxaiError, KeyError):
    """A name is not in a registry (models, explanation methods, explanation metrics).

    The message suggests close names and lists the available ones.
    """

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class UnknownModelError(UnknownNameError, ModelError):
    """A model name is not in the model registry."""


class PluginError(NeuroxaiError, RuntimeError):
    """A plugin failed to load or broke the plugin contract."""


class NotFittedError(NeuroxaiError, AttributeError):
    """A method that needs a fitted estimator was called before ``fit``."""


class BackendError(NeuroxaiError, RuntimeError):
    """A feature is not available on the Keras backend this process runs (``KERAS_BACKEND``).

    The message names the feature, the backends it runs on, and what does run on the current one.
    """


class ExplainError(NeuroxaiError, ValueError):
    """An explanation cannot be computed for the given model, layer or targets."""


class UnknownMethodError(UnknownNameError, ExplainError):
    """An explanation method name is not in the method registry."""


class UnknownMetricError(UnknownNameError, ExplainError):
    """An explanation metric name is not in the metric registry."""


class OutputError(NeuroxaiError, OSError):
    """An output path is unsafe or unwritable.

    Raised before any work starts where possible: the path is (or is inside)
    an input, would replace a file neuroxai did not write, would replace an
    earlier output without ``--overwrite``, or cannot be written (read-only,
    full, a folder where a file is expected).
    """

    def __str__(self) -> str:  # OSError would prefix an errno
        return str(self.args[0]) if self.args else ""


class RunError(NeuroxaiError, RuntimeError):
    """A run directory cannot be used as asked (finished already, other settings, damaged resume state)."""


class RunBusyError(RunError):
    """Another live process is writing the run directory (its lock file names the process)."""


class RunSettingsError(RunError, ModelError):
    """A run directory holds an interrupted run started with other settings (its fingerprint differs)."""
