"""Workarounds for Keras 3 bugs under ``tf.distribute.MultiWorkerMirroredStrategy``, in one place.

Keras 3's ``fit`` fails twice under a multi-worker collective strategy
(upstream: https://github.com/tensorflow/tensorflow/issues/72388, "tf.distribute
and keras 3 incompatibility", reproduced with Keras 3.10-3.15 / TensorFlow 2.19-2.21):

1. Before the first step Keras builds the model symbolically from one batch,
   which it first all-reduces; the collective all-reduce cannot take the
   ``(x, y)`` tuple and raises "Attempt to convert a value (PerReplica ...) to a
   Tensor". :func:`patch_symbolic_build` makes the build use the local
   replica's batch (only shapes and dtypes matter there).
2. Each step's logs are reduced across workers with
   ``strategy.reduce("MEAN", v, axis=0)``, which fails for the scalar loss and
   metrics ("Invalid reduction dimension 0 for input with 0 dimensions").
   :func:`multi_worker_reduce_fix` reduces scalars with ``axis=None``.

Both touch private Keras names. :func:`missing_targets` lists the ones that
are gone; the trainer refuses to train multi-worker rather than run without
the fix, and ``tests/training/test_keras_fixes.py`` fails when a target
disappears or when Keras no longer needs the fix (it trains two local workers
with the fixes switched off and expects the upstream error), so the code here
is removed as soon as it is dead.
"""

from __future__ import annotations

import contextlib
import os
import types
from collections.abc import Iterator
from typing import Any

from neuroxai.errors import ModelError

__all__ = ["DISABLE_ENV", "UPSTREAM_ISSUE", "missing_targets", "multi_worker_reduce_fix", "patch_symbolic_build"]

UPSTREAM_ISSUE = "https://github.com/tensorflow/tensorflow/issues/72388"
#: Switch workarounds off: ``symbolic_build``, ``reduce`` (comma-separated) or ``all``. The test that checks
#: they are still needed does; nobody else should.
DISABLE_ENV = "NEUROXAI_DISABLE_KERAS_FIXES"


def _disabled(fix: str) -> bool:
    off = {v.strip() for v in os.environ.get(DISABLE_ENV, "").split(",")}
    return fix in off or "all" in off


def _trainer_module() -> Any:
    try:
        from keras.src.backend.tensorflow import trainer
    except ImportError:
        return None
    return trainer


def missing_targets() -> list[str]:
    """The private Keras names the workarounds patch that this Keras lacks (empty: the fixes apply)."""
    import keras

    missing = []
    trainer = _trainer_module()
    if trainer is None:
        missing.append("keras.src.backend.tensorflow.trainer")
    else:
        missing += [
            f"trainer.{n}" for n in ("_collective_all_reduce_multi_worker", "reduce_per_replica") if not hasattr(trainer, n)
        ]
    missing += [f"Model.{n}" for n in ("_maybe_symbolic_build", "_symbolic_build") if not hasattr(keras.Model, n)]
    return missing


def _is_multi_worker(strategy: Any) -> bool:
    trainer = _trainer_module()
    check = getattr(trainer, "_collective_all_reduce_multi_worker", None)
    return bool(strategy is not None and check is not None and check(strategy))


def _require(strategy: Any, fix: str) -> bool:
    """True when fix ``fix`` must be applied; raises when it is needed but cannot be."""
    if strategy is None or _disabled(fix):
        return False
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    missing = missing_targets()
    if missing:
        import keras

        raise ModelError(
            f"Multi-worker training needs neuroxai's workaround for {UPSTREAM_ISSUE}, but Keras {keras.__version__} "
            f"lacks {', '.join(missing)}. Train with one worker, or use Keras 3.10-3.15, and report this to neuroxai."
        )
    return _is_multi_worker(strategy)


def patch_symbolic_build(model: Any, strategy: Any) -> None:
    """Make ``model`` build symbolically from the local replica's batch under a multi-worker strategy (bug 1 above)."""
    if not _require(strategy, "symbolic_build"):
        return
    import keras
    import tensorflow as tf

    def _maybe_symbolic_build(self: Any, iterator: Any = None, data_batch: Any = None) -> None:
        dist = getattr(self, "_distribute_strategy", None)
        if dist is None:
            return
        if iterator is not None:
            for _, _, it in iterator:
                batch = next(it)
                data_batch = keras.tree.map_structure(
                    lambda v: dist.experimental_local_results(v)[0] if isinstance(v, tf.distribute.DistributedValues) else v,
                    batch,
                )
                break
        with dist.scope():
            self._symbolic_build(data_batch=data_batch)

    object.__setattr__(model, "_maybe_symbolic_build", types.MethodType(_maybe_symbolic_build, model))


@contextlib.contextmanager
def multi_worker_reduce_fix(strategy: Any) -> Iterator[None]:
    """Within this block, scalar logs are averaged over workers with ``axis=None`` (bug 2 above)."""
    if not _require(strategy, "reduce"):
        yield
        return
    import keras
    import tensorflow as tf

    trainer = _trainer_module()
    original = trainer.reduce_per_replica

    def fixed(values: Any, strategy: Any, reduction: str = "auto") -> Any:
        if reduction not in ("auto", "mean"):
            return original(values, strategy, reduction=reduction)

        def _reduce(v: Any) -> Any:
            first = strategy.experimental_local_results(v)[0] if isinstance(v, tf.distribute.DistributedValues) else v
            rank = getattr(getattr(first, "shape", None), "rank", None)
            return strategy.reduce("MEAN", v, axis=None if rank == 0 else 0)

        return keras.tree.map_structure(_reduce, values)

    trainer.reduce_per_replica = fixed
    try:
        yield
    finally:
        trainer.reduce_per_replica = original
