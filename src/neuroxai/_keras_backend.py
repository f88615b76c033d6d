"""Which Keras backend this process runs, the one refusal for what is not ported to it, and compilation.

Keras 3 reads ``KERAS_BACKEND`` once, when ``keras`` is first imported; a
process runs one backend. neuroxai's explanation core (every built-in
method) and the explanation metrics that run the model run on TensorFlow,
JAX and PyTorch (:data:`EXPLAIN_BACKENDS`), and so do evaluation on a dataset,
test-time augmentation, MC-dropout and training (two-phase fine-tuning and
exact resume included). Mask-guided training runs on TensorFlow and JAX;
distribution through ``tf.distribute`` on TensorFlow and ``keras.distribution``
on JAX. What runs on some backends only refuses the others through
:func:`require`, with a message that names what does run.

:func:`compile_model_function` compiles a function of a model's forward pass
for the running backend (``tf.function``, :class:`StatelessJit`, or on PyTorch
:class:`TorchEager`: eager, under ``torch.no_grad``). :func:`to_numpy` takes
any backend's tensor to numpy.

:class:`StatelessJit` is the JAX side of "batched and compiled": a function
of a model's forward pass under ``jax.jit``, the model's variables passed in
as arguments on every call (a :class:`keras.StatelessScope` maps each
variable to its value inside the trace), so changing the weights in place is
seen by the next call and the weights are never baked into the compiled code.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neuroxai.errors import BackendError

__all__ = [
    "EXPLAIN_BACKENDS",
    "StatelessJit",
    "TorchEager",
    "compile_model_function",
    "current",
    "enable_jax_compilation_cache",
    "require",
    "to_numpy",
]

#: The backends the explanation core (every built-in method) and the model-running explanation metrics run on.
EXPLAIN_BACKENDS = ("tensorflow", "jax", "torch")


def current() -> str:
    """The Keras backend of this process (``"tensorflow"``, ``"jax"``, ``"torch"`` ...)."""
    import keras

    return str(keras.backend.backend())


def require(feature: str, supported: Sequence[str] = ("tensorflow",), *, hint: str = "") -> str:
    """Refuse ``feature`` unless the running backend is one of ``supported``.

    Args:
        feature: What the caller is about to do, as the user would name it (``"Trainer.fit"``).
        supported: The backends it runs on.
        hint: What does run on the other backends (one sentence), added to the message.

    Returns:
        The running backend's name.

    Raises:
        BackendError: The running backend is not in ``supported``.

    Example:
        >>> require("training", ("tensorflow", "jax", "torch"))  # doctest: +SKIP
        'tensorflow'
    """
    name = current()
    if name not in supported:
        wanted = " or ".join(supported)
        extra = f" {hint.strip()}" if hint.strip() else ""
        raise BackendError(
            f"{feature} runs on the {wanted} Keras backend only; this process runs KERAS_BACKEND={name!r}.{extra} "
            f"To use it, set KERAS_BACKEND={supported[0]} in the environment before keras is first imported."
        )
    return name


def enable_jax_compilation_cache() -> Path | None:
    """On JAX, keep compiled programs on disk between processes (the ``neuroxai`` command turns this on).

    JAX compiles every program afresh in each process: loading a model compiles each random initializer once
    per weight shape before the saved weights replace them (Keras' loader; MobileNetV2 9.3 s on 2 quiet cores,
    against 1.3 s on TensorFlow), and each explanation method compiles its step. With JAX's persistent
    compilation cache the second process reads them from disk instead (MobileNetV2's load: 2.3 s;
    ``benchmarks/jax_load_cache.py``).

    The folder is ``$JAX_COMPILATION_CACHE_DIR`` when set (JAX's own setting, left as it is), else
    ``$XDG_CACHE_HOME/neuroxai/jax`` (``~/.cache/neuroxai/jax``). Programs that compiled in under 0.1 s are
    not kept unless ``$JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS`` says otherwise. A library import never
    calls this: the cache is a setting of the whole process, the application's to choose.

    Returns:
        The cache folder, or ``None`` on other backends.
    """
    if current() != "jax":
        return None
    import jax

    configured = os.environ.get("JAX_COMPILATION_CACHE_DIR")  # JAX reads it itself
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    folder = Path(configured) if configured else Path(base) / "neuroxai" / "jax"
    if not configured:
        jax.config.update("jax_compilation_cache_dir", str(folder))  # type: ignore[no-untyped-call]
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:  # JAX's default keeps only those over 1 s
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)  # type: ignore[no-untyped-call]
    return folder


class StatelessJit:
    """``fn(*args)`` compiled with ``jax.jit``, reading ``model``'s variables at call time.

    Args:
        model: The Keras model whose variables ``fn`` reads (held weakly).
        fn: A function of JAX arrays that runs the model (with Keras layers, ``keras.ops``, ``jax``).

    Each call passes the current values of ``model.variables`` into the compiled
    function; inside the trace a :class:`keras.StatelessScope` maps every variable
    to its traced value. The states of the model's seed generators (a Dropout
    layer's, a random augmentation layer's) come back out and are assigned after
    the call, so random draws advance from call to call as under ``tf.function``;
    every other variable is read only. Like ``jax.jit``, a new input shape traces
    again (:meth:`tracing_count` counts traces).

    Raises:
        BackendError: The backend is not JAX.
    """

    def __init__(self, model: Any, fn: Callable[..., Any]) -> None:
        require("StatelessJit", ("jax",))
        import jax
        import keras

        self._model = weakref.ref(model)
        self._traces = 0
        count = self._count

        self._carried: list[int] | None = None

        def pure(values: list[Any], *args: Any) -> Any:
            count()
            live = self._model()
            if live is None:  # pragma: no cover - callers drop the function with the model
                raise BackendError("The model of this compiled function no longer exists.")
            variables = live.variables
            with keras.StatelessScope(state_mapping=list(zip(variables, values))) as scope:
                out = fn(*args)
                advanced = [scope.get_current_value(variables[i]) for i in self._carried or ()]
            return out, advanced

        self._jitted = jax.jit(pure)

    def _count(self) -> None:
        self._traces += 1

    def __call__(self, *args: Any) -> Any:
        model = self._model()
        if model is None:  # pragma: no cover - callers drop the function with the model
            raise BackendError("The model of this compiled function no longer exists.")
        variables = model.variables
        if self._carried is None:
            self._carried = [i for i, v in enumerate(variables) if _is_seed_state(v)]
        out, advanced = self._jitted([v.value for v in variables], *args)
        for i, value in zip(self._carried, advanced, strict=True):
            variables[i].assign(value)  # the next call draws new random numbers (dropout masks ...)
        return out

    def tracing_count(self) -> int:
        """How many times the function was traced (once per new input shape)."""
        return self._traces


def _is_seed_state(variable: Any) -> bool:
    """Whether ``variable`` is the state of a :class:`keras.random.SeedGenerator` (a Dropout layer's, ...)."""
    return str(getattr(variable, "path", getattr(variable, "name", ""))).split("/")[-1] == "seed_generator_state"


class TorchEager:
    """``fn(*args)`` run eagerly under ``torch.no_grad`` (the PyTorch side of :func:`compile_model_function`).

    Args:
        fn: A function of torch tensors that runs a model (with Keras layers and ``keras.ops``).

    numpy arguments become tensors on Keras' device first; tensors in the result come back detached. It
    runs outside a caller's ``torch.inference_mode`` (whose tensors are copied in). No autograd graph is recorded (code inside ``fn`` that needs one, such as
    :func:`neuroxai.explain._backend.feature_gradients`, switches it on for the part it differentiates).
    Nothing is traced or compiled, so the model's current weights are read on every call;
    :meth:`tracing_count` is 1 (the function is built once). ``torch.compile`` is not used: on CPU it
    took over a minute to compile the built-in ``cnn``'s forward pass, and the explanation steps failed to
    compile as written (``docs/guide/explain.rst``).

    Raises:
        BackendError: The backend is not PyTorch.
    """

    def __init__(self, fn: Callable[..., Any]) -> None:
        require("TorchEager", ("torch",))
        self._fn = fn

    def __call__(self, *args: Any) -> Any:
        import keras
        import torch

        def plain(a: Any) -> Any:
            if isinstance(a, np.ndarray):
                return keras.ops.convert_to_tensor(a)
            return a.clone() if isinstance(a, torch.Tensor) and a.is_inference() else a  # usable by autograd

        # Out of a caller's torch.inference_mode, where autograd could not run (the gradients would be zeros).
        with torch.inference_mode(False), torch.no_grad():
            out = self._fn(*[plain(a) for a in args])
        return keras.tree.map_structure(lambda t: t.detach() if isinstance(t, torch.Tensor) else t, out)

    def tracing_count(self) -> int:
        """1: the function is built once and runs eagerly (no trace per input shape)."""
        return 1


def to_numpy(tensor: Any) -> np.ndarray:
    """Any backend's tensor (or a numpy array) as a numpy array, without a copy where the backend allows.

    A PyTorch tensor is detached and moved to the CPU first (``numpy.asarray`` refuses one that requires
    gradients or lives on a GPU).
    """
    if type(tensor).__module__.startswith("torch"):
        return tensor.detach().cpu().numpy()  # type: ignore[no-any-return]
    return np.asarray(tensor)


def compile_model_function(model: Any, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn(*arrays)``, a function written on ``keras.ops`` that runs ``model``, compiled for the running backend.

    ``tf.function`` (retracing reduced to dynamic shapes) on TensorFlow, :class:`StatelessJit` on JAX (a trace per
    new input shape), :class:`TorchEager` on PyTorch (eager, no autograd graph). All read the model's weights at
    call time. The result is a backend tensor; take it to numpy with :func:`to_numpy`.

    Raises:
        BackendError: The backend is none of :data:`EXPLAIN_BACKENDS`.
    """
    name = require("Compiling a model function", EXPLAIN_BACKENDS)
    if name == "jax":
        return StatelessJit(model, fn)
    if name == "torch":
        return TorchEager(fn)
    import tensorflow as tf

    return tf.function(fn, reduce_retracing=True)  # type: ignore[no-any-return]
