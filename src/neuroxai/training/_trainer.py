"""Trainer: fit a registry model on a Dataset, two-phase fine-tuning, resume, evaluation, run directory.

The trainer is in parts: :mod:`~neuroxai.training._plan` works out the phases
before anything is built; :class:`~neuroxai.runs.RunDirectory` owns the files
(resume state, atomic commit); :mod:`~neuroxai.training._callbacks` records
history and checkpoints; :mod:`~neuroxai.training._keras_fixes` holds the
workarounds for Keras bugs. :meth:`Trainer.fit` only strings them together.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import logging
import math
import platform
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from neuroxai._records import Record
from neuroxai.errors import DataError, ModelError, NeuroxaiError, NotFittedError
from neuroxai.runs import EvaluationReport, PhaseRecord, Predictor, ResumeState, RunDirectory, RunSpec, data_inputs
from neuroxai.training._guidance import MaskGuidance

if TYPE_CHECKING:  # pragma: no cover
    import keras
    import tensorflow as tf

    from neuroxai.data import Dataset, DatasetSummary
    from neuroxai.models import ModelRegistry, ModelSpec
    from neuroxai.training._callbacks import CallbackState
    from neuroxai.training._plan import PlannedPhase, TrainingPlan

__all__ = ["LR_SCHEDULES", "NOT_FITTED_MESSAGE", "Trainer"]

log = logging.getLogger(__name__)

NOT_FITTED_MESSAGE = "This Trainer is not fitted yet; call fit(dataset) first"
#: Accepted values of ``Trainer(lr_schedule=...)``.
LR_SCHEDULES = ("plateau", "cosine", "constant")


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    import keras
    import tensorflow as tf

    try:  # from the package metadata, not the package root (which sits above this layer)
        ours = version("neuroxai")
    except PackageNotFoundError:  # pragma: no cover - a source tree without install
        ours = "0.0.0+unknown"
    found = {
        "neuroxai": ours,
        "keras": keras.__version__,
        "keras_backend": str(keras.backend.backend()),  # the backend the run was trained on
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
    backend = found["keras_backend"]
    if backend != "tensorflow":
        with contextlib.suppress(PackageNotFoundError):  # a backend imported from a source tree has no version
            found[backend] = version(backend)  # "jax", "torch": the distributions are named like the backends
    return found


@dataclass(frozen=True)
class _Data:
    """The pipelines and settings one fit uses."""

    train: Any
    val: Any
    monitor: str
    class_weight: dict[int, float] | None
    train_state: Any = None  # the pipelines' PipelineState: epoch of the randomness, samples read
    val_state: Any = None
    reads: Any = None  # the ReadCheck callback: files that failed to decode while training


class Trainer:
    """Train, fine-tune, evaluate and save a brain MRI classifier (scikit-learn contract).

    ``__init__`` only stores the settings; :meth:`fit` builds the model (always
    through :meth:`ModelRegistry.create <neuroxai.models.ModelRegistry.create>`,
    so its checks run), learns, and returns the trainer. ``get_params``,
    ``set_params`` and ``sklearn.base.clone`` work as for any scikit-learn
    estimator. Learned state ends in ``_``: ``model_``, ``history_``,
    ``classes_``, ``spec_``, ``input_shape_``, ``input_range_``,
    ``target_layer_``, ``phases_``, ``run_dir_``, ``data_summary_``,
    ``unreadable_`` (the files that failed to decode while the run read them,
    as :class:`~neuroxai.data.SkippedFile` records, also in ``neuroxai.json``),
    ``calibration_`` (temperature scaling and conformal scores fitted on the
    validation split at the end of :meth:`fit`, stored in the run spec and
    applied by :func:`neuroxai.load` predictors; ``None`` without a
    validation split), ``ood_`` (the out-of-distribution score: a
    :class:`~neuroxai.runs.OODDetector` fitted on the training split with its
    threshold chosen on the validation split, stored in the run spec; ``None``
    without a validation split or a ``logits`` layer) and (after
    :meth:`evaluate`) ``metrics_``.

    **Two-phase transfer learning.** When the model's spec carries a
    :class:`~neuroxai.models.TransferSpec` (the built-in ``efficientnetb0``
    does) training runs in two phases: phase 1 ("head") freezes every layer
    the spec calls backbone and trains the rest; phase 2 ("fine_tune")
    unfreezes the backbone layers the spec names, keeps every
    BatchNormalization layer frozen, recompiles with the learning rate times
    ``fine_tune_lr_factor`` and continues; epoch numbers continue across the
    phases. ``epochs`` is the total of both phases; ``fine_tune_epochs`` of
    them are phase 2 (default: half, or what the spec's
    ``head_epochs_fraction`` says).

    **Callbacks** (on by default): early stopping that restores the best
    weights (``val_loss``), learning-rate reduction on plateau (or the
    ``lr_schedule`` chosen), and with an
    output folder: best-model checkpoint (``checkpoints/best.keras``),
    ``history.csv`` written after every epoch, a TensorBoard log in
    ``logs/`` and **resume**: a run killed at any moment (even ``kill -9``)
    and started again with the same output folder continues after the last
    finished epoch, in the right phase, with its optimizer state, the
    callbacks' memory (best value and weights, early-stopping and plateau
    counters) and the epoch's shuffling and augmentation, so it ends as the
    uninterrupted run would have.

    Args:
        model: A registry name (``"cnn"``, ``"efficientnetb0"``, a plugin
            model), a :class:`~neuroxai.models.ModelSpec`, or your own
            compiled-or-not ``keras.Model`` (trained in place; give
            ``input_range``).
        registry: Where to look names up (default: a new
            :class:`~neuroxai.models.ModelRegistry`).
        epochs: Total training epochs (both phases together).
        batch_size: Batch size (global batch size under a strategy).
        learning_rate: Learning rate of phase 1 (phase 2 uses it times
            ``fine_tune_lr_factor``).
        optimizer: ``None`` (Adam), a Keras optimizer name or instance; a
            fresh copy is made for each phase (an instance's own learning
            rate is used).
        loss: Loss; default sparse categorical cross-entropy.
        metrics: Metrics; default ``["accuracy"]``.
        image_size: ``(height, width)`` or one int; default the spec's.
        two_phase: ``None`` follows the spec (two phases if it has a
            ``transfer``, except with ``model_options={"weights": None}``:
            a backbone trained from scratch must not be frozen), ``False``
            trains everything in one phase, ``True`` requires a transfer spec.
        fine_tune_epochs: Epochs of phase 2 (out of ``epochs``).
        fine_tune_lr_factor: Phase-2 learning-rate factor; default the spec's.
        early_stopping_patience: Epochs without improvement before stopping
            (per phase); ``None`` disables early stopping.
        reduce_lr_patience: Epochs without improvement before halving the
            learning rate (with ``lr_schedule="plateau"``); ``None`` disables it.
        lr_schedule: How the learning rate moves within each phase:
            ``"plateau"`` (default) halves it after ``reduce_lr_patience``
            epochs without a better validation loss; ``"cosine"`` decays it
            from the phase's rate towards zero along half a cosine over the
            phase's epochs (set once per epoch), which suits a fixed epoch
            budget; ``"constant"`` keeps it.
        seed: Seed of weights, shuffling and augmentation
            (``keras.utils.set_random_seed``).
        out_dir: Run directory written by :meth:`fit` (may also be given to
            ``fit``); ``None`` writes nothing (use :meth:`save`).
        strategy: How to spread training over several devices. On
            TensorFlow a ``tf.distribute.Strategy`` (the model is built and
            compiled inside its scope); on JAX a
            ``keras.distribution`` distribution such as
            ``keras.distribution.DataParallel()`` (data parallelism over the
            local devices: the variables are replicated on every device and
            each batch is split between them; the model is built, compiled
            and trained inside its scope). ``batch_size`` must then be a
            multiple of the number of devices; a last batch of a split that
            does not divide leaves its few extra images out (logged).
        class_weight: ``True`` uses the dataset's balanced class weights,
            ``False`` none, or a ``{class index: weight}`` dict.
        augment: Augment training batches.
        progress: Print one line per epoch (Keras ``verbose=2``).
        model_options: Keyword options for the model factory (e.g.
            ``{"weights": None}`` for ``efficientnetb0``).
        input_range: Pixel range of a user ``keras.Model`` (default
            ``(0, 1)``); ignored for registry models.
        callbacks: Extra Keras callbacks, run after the built-in ones.
        resume: Continue an interrupted run found in the output folder.
        tensorboard: Write a TensorBoard log to ``run_dir/logs``; ``None``
            (default) does when the ``tensorboard`` package is installed.
        guidance: Mask-guided training ("right for the right reasons"):
            ``None`` (default, cross-entropy only), ``"cam"``, ``"gradients"``
            or a :class:`~neuroxai.training.MaskGuidance` with a weight and a
            layer. Training images with a tumour mask add a loss on the
            model's evidence outside the mask; images without one train on
            cross-entropy alone. Needs a dataset with masks (see
            :mod:`neuroxai.training._guided` for the losses and the trade-off).

    Raises:
        ModelError: From :meth:`fit` for unknown models or inconsistent
            settings (see there).

    Example:
        >>> from neuroxai import Trainer
        >>> from neuroxai.data import phantoms
        >>> ds = phantoms(n_per_class=20, image_size=64)
        >>> trainer = Trainer("cnn", epochs=2, image_size=64, progress=False).fit(ds)  # doctest: +SKIP
        >>> trainer.evaluate(ds).metrics.accuracy  # doctest: +SKIP
    """

    def __init__(
        self,
        model: str | ModelSpec | keras.Model = "cnn",
        *,
        registry: ModelRegistry | None = None,
        epochs: int = 20,
        batch_size: int = 32,
        learning_rate: float = 1e-3,
        optimizer: Any = None,
        loss: Any = None,
        metrics: Sequence[Any] | None = None,
        image_size: int | tuple[int, int] | None = None,
        two_phase: bool | None = None,
        fine_tune_epochs: int | None = None,
        fine_tune_lr_factor: float | None = None,
        early_stopping_patience: int | None = 8,
        reduce_lr_patience: int | None = 4,
        lr_schedule: str = "plateau",
        seed: int = 1337,
        out_dir: str | Path | None = None,
        strategy: tf.distribute.Strategy | keras.distribution.DataParallel | keras.distribution.ModelParallel | None = None,
        class_weight: bool | dict[int, float] = True,
        augment: bool = True,
        progress: bool = True,
        model_options: dict[str, Any] | None = None,
        input_range: tuple[float, float] | None = None,
        callbacks: Sequence[Any] | None = None,
        resume: bool = True,
        tensorboard: bool | None = None,
        guidance: MaskGuidance | str | None = None,
    ) -> None:
        self.model = model
        self.registry = registry
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.loss = loss
        self.metrics = metrics
        self.image_size = image_size
        self.two_phase = two_phase
        self.fine_tune_epochs = fine_tune_epochs
        self.fine_tune_lr_factor = fine_tune_lr_factor
        self.early_stopping_patience = early_stopping_patience
        self.reduce_lr_patience = reduce_lr_patience
        self.lr_schedule = lr_schedule
        self.seed = seed
        self.out_dir = out_dir
        self.strategy = strategy
        self.class_weight = class_weight
        self.augment = augment
        self.progress = progress
        self.model_options = model_options
        self.input_range = input_range
        self.callbacks = callbacks
        self.resume = resume
        self.tensorboard = tensorboard
        self.guidance = guidance

    # ------------------------------------------------------------------ scikit-learn contract
    @classmethod
    def _param_names(cls) -> list[str]:
        import inspect

        params = inspect.signature(cls.__init__).parameters.values()
        return sorted(p.name for p in params if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL))

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor settings, as scikit-learn's ``get_params`` returns them.

        Args:
            deep: Also return the settings of parameters that have
                ``get_params`` themselves, as ``name__setting``.

        Returns:
            ``{setting: value}`` for every argument of ``__init__``.
        """
        out: dict[str, Any] = {}
        for name in self._param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{name}__{k}", v) for k, v in value.get_params().items())
            out[name] = value
        return out

    def set_params(self, **params: Any) -> Trainer:
        """Change settings (scikit-learn's ``set_params``); returns the trainer.

        Raises:
            ModelError: A name is not a setting of the trainer.
        """
        valid = set(self._param_names())
        for name, value in params.items():
            key, _, sub = name.partition("__")
            if key not in valid:
                raise ModelError(f"Trainer has no setting {key!r}; settings are: {', '.join(sorted(valid))}.")
            if sub:
                getattr(self, key).set_params(**{sub: value})
            else:
                setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        model = self.model if isinstance(self.model, str) else getattr(self.model, "name", type(self.model).__name__)
        return f"Trainer(model={model!r}, epochs={self.epochs}, batch_size={self.batch_size}, learning_rate={self.learning_rate})"

    # ------------------------------------------------------------------ settings
    def settings(self) -> dict[str, Any]:
        """The settings as JSON values (objects by their name or class), as ``neuroxai.json`` records them."""

        def plain(v: Any) -> Any:
            if v is None or isinstance(v, (bool, int, float, str)):
                return v
            if isinstance(v, (list, tuple)):
                return [plain(x) for x in v]
            if isinstance(v, dict):
                return {str(k): plain(x) for k, x in v.items()}
            if isinstance(v, Path):
                return str(v)
            if isinstance(v, Record):
                return v.to_dict()
            name = getattr(v, "name", None)
            return name if isinstance(name, str) else type(v).__name__

        return {k: plain(v) for k, v in self.get_params(deep=False).items() if k not in ("registry", "callbacks")}

    def _check_settings(self) -> None:
        """Refuse nonsense before anything is built."""

        def positive_int(name: str, value: Any, *, allow_none: bool = False) -> None:
            if value is None and allow_none:
                return
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < (0 if allow_none else 1):
                need = "an integer >= 0 or None" if allow_none else "an integer >= 1"
                raise ModelError(f"Expected {name} to be {need}, got {value!r}.")

        positive_int("epochs", self.epochs)
        positive_int("batch_size", self.batch_size)
        positive_int("early_stopping_patience", self.early_stopping_patience, allow_none=True)
        positive_int("reduce_lr_patience", self.reduce_lr_patience, allow_none=True)
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
            raise ModelError(f"Expected learning_rate to be a finite number > 0, got {lr!r}. Try 1e-3.")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ModelError(f"Expected lr_schedule to be one of {', '.join(map(repr, LR_SCHEDULES))}, got {self.lr_schedule!r}.")
        MaskGuidance.coerce(self.guidance)

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(NOT_FITTED_MESSAGE)

    # ------------------------------------------------------------------ model resolution
    def _resolve(self) -> tuple[ModelSpec, keras.Model | None, ModelRegistry | None]:
        """The spec to train, the user's own model (if given one) and the registry that builds it."""
        import keras

        from neuroxai.models import ModelRegistry, ModelSpec

        if isinstance(self.model, keras.Model):
            user = self.model
            shape = tuple(int(d) for d in user.input_shape[1:]) if user.input_shape else None
            if shape is None or len(shape) != 3 or any(d is None for d in shape):
                raise ModelError(
                    f"Expected a keras.Model with a fixed image input (height, width, channels), got input shape "
                    f"{user.input_shape}. Build it with keras.Input(shape=(128, 128, 1))."
                )
            name = re.sub(r"[^A-Za-z0-9_.+-]", "_", user.name) or "model"
            if not name[0].isalnum():
                name = "m" + name
            spec = ModelSpec(
                name=name,
                factory=lambda **_: user,
                input_shape=shape,
                input_range=tuple(self.input_range or (0.0, 1.0)),  # type: ignore[arg-type]  # ModelSpec checks it
                target_layer=None,
                description="user keras.Model",
                source="user",
            )
            return spec, user, None
        if isinstance(self.model, ModelSpec):
            registry = ModelRegistry(populate=False)
            registry.register(self.model)
            return self.model, None, registry
        if isinstance(self.model, str):
            registry = self.registry if self.registry is not None else ModelRegistry()
            return registry.get(self.model), None, registry
        raise ModelError(
            f"Expected model to be a registry name, a neuroxai.ModelSpec or a keras.Model, got {type(self.model).__name__}."
        )

    def _image_shape(self, spec: ModelSpec, user: keras.Model | None) -> tuple[int, int, int]:
        from neuroxai.data import check_image_size

        if user is not None or self.image_size is None:
            if (
                user is not None
                and self.image_size is not None
                and check_image_size(self.image_size, error=ModelError) != spec.input_shape[:2]
            ):
                raise ModelError(
                    f"image_size={self.image_size!r} differs from your model's input {spec.input_shape[:2]}; "
                    "leave image_size unset for a keras.Model."
                )
            return spec.input_shape
        h, w = check_image_size(self.image_size, error=ModelError)
        return (h, w, spec.input_shape[2])

    def _plan(self, spec: ModelSpec) -> TrainingPlan:
        from neuroxai.training._plan import make_plan

        return make_plan(
            spec,
            epochs=int(self.epochs),
            learning_rate=self._base_lr(),
            two_phase=self.two_phase,
            fine_tune_epochs=self.fine_tune_epochs,
            fine_tune_lr_factor=self.fine_tune_lr_factor,
            model_options=self.model_options,
        )

    def _base_lr(self) -> float:
        import keras

        if self.optimizer is not None and isinstance(self.optimizer, keras.optimizers.Optimizer):
            lr = self.optimizer.get_config().get("learning_rate")
            if isinstance(lr, (int, float)):
                if not math.isfinite(lr) or lr <= 0:
                    raise ModelError(
                        f"The optimizer's learning rate must be a finite number > 0, got {lr!r}. Build it with e.g. "
                        "learning_rate=1e-3."
                    )
                return float(lr)
        return float(self.learning_rate)

    def _make_optimizer(self, lr: float) -> keras.optimizers.Optimizer:
        import keras

        if self.optimizer is None:
            return keras.optimizers.Adam(learning_rate=lr)
        base = keras.optimizers.get(self.optimizer) if isinstance(self.optimizer, (str, dict)) else self.optimizer
        if not isinstance(base, keras.optimizers.Optimizer):
            raise ModelError(f"Expected optimizer to be None, a Keras optimizer name or instance, got {self.optimizer!r}.")
        config = base.get_config()
        config["learning_rate"] = lr
        return type(base).from_config(config)

    def _compile(self, model: keras.Model, lr: float) -> None:
        import keras

        from neuroxai.training._guided import GuidedModel

        if isinstance(model, GuidedModel):  # it computes its own losses
            model.compile(
                optimizer=self._make_optimizer(lr), metrics=list(self.metrics) if self.metrics is not None else ["accuracy"]
            )
            return
        model.compile(
            optimizer=self._make_optimizer(lr),
            loss=self.loss if self.loss is not None else keras.losses.SparseCategoricalCrossentropy(),
            metrics=list(self.metrics) if self.metrics is not None else ["accuracy"],
        )

    @contextlib.contextmanager
    def _scope(self) -> Iterator[None]:
        """The strategy's scope (a new one each time: a scope object can be entered once)."""
        if self.strategy is None:
            yield
        else:
            with self.strategy.scope():
                yield

    def _build(
        self,
        spec: ModelSpec,
        user: keras.Model | None,
        registry: ModelRegistry | None,
        num_classes: int,
        shape: tuple[int, int, int],
    ) -> keras.Model:
        import keras

        from neuroxai.training._keras_fixes import patch_symbolic_build

        with self._scope():
            if user is not None:
                model = user
                if self.strategy is not None:  # variables must live in the strategy's scope
                    model = keras.models.clone_model(user)
                    model.set_weights(user.get_weights())
            else:
                assert registry is not None  # _resolve returns one with every spec
                model = registry.create(spec.name, num_classes=num_classes, input_shape=shape, **dict(self.model_options or {}))
        patch_symbolic_build(model, self.strategy)
        return model

    def _data(self, dataset: Dataset, spec: ModelSpec, shape: tuple[int, int, int], guided: bool) -> _Data:
        pipe_args: dict[str, Any] = {
            "image_size": shape[:2],
            "channels": shape[2],
            "input_range": spec.input_range,
            "batch_size": int(self.batch_size),
        }
        from neuroxai.data._pipeline import PipelineState
        from neuroxai.training._callbacks import ReadCheck

        train_state = PipelineState(len(dataset.labels("train")))
        train = dataset.pipeline(
            "train", augment=bool(self.augment), seed=int(self.seed), with_masks=guided, state=train_state, **pipe_args
        )
        if guided:  # ((images, masks), labels): masks travel as inputs, so Keras still turns class weights into sample weights
            train = train.map(lambda x, y, m: ((x, m), y))
        has_val = len(dataset.labels("val")) > 0
        val_state = PipelineState(len(dataset.labels("val"))) if has_val else None
        val = dataset.pipeline("val", state=val_state, **pipe_args) if has_val else None
        shards = _batch_shards(self.strategy)
        if shards > 1:  # a keras.distribution splits every batch: the last one of a split must divide too
            train = _trim_to_shards(train, shards, "train", len(dataset.labels("train")), int(self.batch_size))
            if val is not None:
                val = _trim_to_shards(val, shards, "val", len(dataset.labels("val")), int(self.batch_size))
        checked = [
            (split, st, dataset.paths(split)) for split, st in (("train", train_state), ("val", val_state)) if st is not None
        ]
        reads = ReadCheck(
            [(split, st, [str(p) for p in paths], dataset.slices(split)) for split, st, paths in checked if None not in paths]
        )
        if self.class_weight is True:
            class_weight: dict[int, float] | None = dataset.class_weights("train")
        elif isinstance(self.class_weight, dict):
            class_weight = {int(k): float(v) for k, v in self.class_weight.items()}
        else:
            class_weight = None
        return _Data(
            train=train,
            val=val,
            monitor="val_loss" if has_val else "loss",
            class_weight=class_weight,
            train_state=train_state,
            val_state=val_state,
            reads=reads,
        )

    # ------------------------------------------------------------------ fit
    def fit(self, dataset: Dataset, *, out_dir: str | Path | None = None, overwrite: bool = False) -> Trainer:
        """Build the model, train it (in two phases when the spec says so) and, with an output folder, write the run directory.

        With an output folder (``out_dir`` here or in the constructor) the
        folder gets ``model.keras``, ``neuroxai.json``, ``history.csv``,
        ``training_curves.png`` and, when the dataset has a test split,
        ``metrics.json`` and ``confusion_matrix.png`` (see :meth:`save`). If
        the folder holds an interrupted run of the same model and settings,
        training continues after its last finished epoch.

        Args:
            dataset: A :class:`~neuroxai.data.Dataset` with a non-empty
                training split.
            out_dir: Run directory (overrides the constructor's). One process
                writes it at a time (see :class:`~neuroxai.runs.RunDirectory`).
            overwrite: Replace a finished run in ``out_dir`` (refused
                otherwise) and start an interrupted one over.

        Returns:
            The fitted trainer (``self``).

        Raises:
            UnknownModelError: The model name is not registered.
            ModelError: Bad settings (epochs, phases, optimizer, image size,
                learning rate), or the folder holds an interrupted run of a
                different model or settings.
            DataError: The training split is empty or holds fewer than two
                classes, or none of its files can be decoded any more.
            RunError: ``out_dir`` holds a finished run (and ``overwrite`` is
                false), or another process is writing it.
            OutputError: ``out_dir`` is (inside) the data, or not writable.
            BackendError: The Keras backend is none of TensorFlow, JAX and PyTorch; the ``strategy`` is of
                the other backend's kind (a ``tf.distribute`` strategy off TensorFlow, a ``keras.distribution``
                off JAX); or mask ``guidance`` is set on PyTorch (TensorFlow and JAX only).

        Example:
            >>> trainer = Trainer("cnn", epochs=3, image_size=64).fit(ds, out_dir="runs/cnn")  # doctest: +SKIP
        """
        from neuroxai._keras_backend import EXPLAIN_BACKENDS, require

        backend = require("Training (Trainer.fit)", EXPLAIN_BACKENDS)
        _check_strategy(self.strategy, backend, self.batch_size)
        if MaskGuidance.coerce(self.guidance) is not None:
            require(
                "Mask-guided training (guidance=...)",
                ("tensorflow", "jax"),
                hint=f"On {backend}, train without it.",
            )
        target = out_dir if out_dir is not None else self.out_dir
        if not target:
            return self._fit(dataset, None)
        run = RunDirectory(target)
        with run.writing(inputs=data_inputs(dataset), overwrite=overwrite):
            return self._fit(dataset, run)

    def _fit(self, dataset: Dataset, run: RunDirectory | None) -> Trainer:
        """:meth:`fit` with the run directory (if any) held."""
        import keras

        self._check_settings()
        spec, user, registry = self._resolve()
        shape = self._image_shape(spec, user)
        plan = self._plan(spec)
        if len(dataset.labels("train")) == 0:
            raise DataError(f"The training split of {dataset.source} is empty; add training images.")
        present = sorted({dataset.class_names[int(i)] for i in np.unique(dataset.labels("train"))})
        if dataset.num_classes < 2 or len(present) < 2:
            raise DataError(
                f"{dataset.source} gives the training split {len(present)} class ({', '.join(present)}); a classifier needs "
                "at least two (with one, every prediction is right and the accuracy of 1.0 means nothing). Add images of "
                "the other classes."
            )
        keras.utils.set_random_seed(int(self.seed))
        guidance = MaskGuidance.coerce(self.guidance)
        state = self._start_state(run, spec, dataset, shape, plan, guidance)
        resumed = state.epoch > 0 and run is not None and run.has_weights(state)
        model = self._build(spec, user, registry, dataset.num_classes, shape)
        fit_model = self._guided(model, spec, guidance, dataset) if guidance is not None else model
        data = self._data(dataset, spec, shape, guided=guidance is not None)

        from neuroxai.training._callbacks import BestModelCheckpoint, RunRecorder, read_callback_state

        recorder = RunRecorder(run, state)
        memory = read_callback_state(run, state.epoch) if resumed and run is not None else None
        best_so_far = memory.checkpoint_best if memory is not None else state.best
        best = (
            BestModelCheckpoint(run.best_file, monitor=data.monitor, best=best_so_far, saves=model) if run is not None else None
        )
        for phase in plan.phases:
            if recorder.state.completed_phase(phase.name) is not None:
                continue  # finished before an interruption
            self._run_phase(model, fit_model, spec, plan, phase, data, recorder, best, run, load_backup=resumed, memory=memory)
            resumed, memory = False, None  # the backup's weights are in; later phases continue from memory
        if resumed and run is not None:  # every phase had finished before the interruption: take the final weights
            with self._scope():
                run.load_weights(recorder.state, fit_model, with_optimizer=False)

        self.spec_ = spec
        self.model_ = model
        self.history_ = {k: list(v) for k, v in recorder.state.history.items()}
        self.classes_ = tuple(dataset.class_names)
        self.input_shape_ = shape
        self.input_range_ = spec.input_range
        self.target_layer_ = spec.target_layer
        self.phases_ = recorder.state.completed
        self.unreadable_ = tuple(data.reads.unreadable)
        self.data_summary_ = self._summary(dataset, data)
        self.run_dir_ = run.path if run is not None else None
        # Calibration: temperature and conformal scores fitted on the validation split (neuroxai.runs._uncertainty)
        from neuroxai.runs import fit_calibration, fit_ood

        self.calibration_ = fit_calibration(
            model, dataset, input_shape=shape, input_range=spec.input_range, batch_size=int(self.batch_size)
        )
        # What the model does not know: a Mahalanobis score fitted on the training split, threshold on validation
        self.ood_ = fit_ood(model, dataset, input_shape=shape, input_range=spec.input_range, batch_size=int(self.batch_size))
        if run is not None:
            if len(dataset.labels("test")) > 0:
                report = self.evaluate(dataset)
                self.unreadable_ += tuple(report.unreadable)
                self.data_summary_ = self._summary(dataset, data, report)
            self.save(run.path)
            run.clear_state()
        return self

    def _guided(self, model: keras.Model, spec: ModelSpec, guidance: MaskGuidance, dataset: Dataset) -> keras.Model:
        """The wrapper that trains ``model`` with mask guidance."""
        from neuroxai.models import resolve_target_layer
        from neuroxai.training._guided import GuidedModel

        if not dataset.has_masks:
            raise DataError(
                f"guidance={guidance.kind!r} needs tumour masks, but {dataset.source} has none. Add a 'mask' column to the "
                "manifest or <image>_mask.png files beside the images, or train without guidance."
            )
        path = None
        if guidance.kind == "cam":
            layer = guidance.layer if guidance.layer is not None else spec.target_layer
            try:
                path = resolve_target_layer(model, layer)
            except NeuroxaiError as exc:
                raise ModelError(f"Mask guidance cannot use layer {layer!r}: {exc}") from exc
        with self._scope():
            return GuidedModel(model, guidance, path, loss=self.loss)

    def _start_state(
        self,
        run: RunDirectory | None,
        spec: ModelSpec,
        dataset: Dataset,
        shape: tuple[int, int, int],
        plan: TrainingPlan,
        guidance: MaskGuidance | None,
    ) -> ResumeState:
        """A fresh state, or the interrupted run's in ``run`` (which must have been started with the same settings)."""
        fingerprint = {
            "model": spec.name,
            "num_classes": dataset.num_classes,
            "class_names": list(dataset.class_names),
            "input_shape": list(shape),
            "plan": [[p.name, p.epochs, p.learning_rate] for p in plan.phases],
            "seed": int(self.seed),
            "lr_schedule": self.lr_schedule,
            "guidance": guidance.to_dict() if guidance is not None else None,
        }
        fresh = ResumeState(fingerprint=fingerprint, phase=plan.phases[0].name)
        if run is None:
            return fresh
        state = run.resume_state(fresh.fingerprint, resume=self.resume)  # checks the fingerprint
        if state is None:
            return fresh
        log.info("Resuming %s after epoch %d (phase %s)", run.path, state.epoch, state.phase)
        return state

    def _callbacks(
        self, phase: PlannedPhase, first_epoch: int, data: _Data, run: RunDirectory | None, memory: CallbackState | None
    ) -> list[Any]:
        """The phase's built-in callbacks; ``memory`` (resuming mid-phase) restores what they remembered."""
        import keras

        from neuroxai.training._callbacks import ResumableEarlyStopping, ResumablePlateau, read_best_weights

        callbacks: list[Any] = []
        if self.early_stopping_patience is not None:
            es = memory.early_stopping if memory is not None else None
            weights = read_best_weights(run, es.best_weights) if es is not None and run is not None else None
            callbacks.append(ResumableEarlyStopping(data.monitor, int(self.early_stopping_patience), es, weights))
        if self.lr_schedule == "plateau" and self.reduce_lr_patience is not None:
            callbacks.append(
                ResumablePlateau(
                    data.monitor,
                    factor=0.5,
                    patience=int(self.reduce_lr_patience),
                    min_lr=phase.learning_rate * 1e-3,
                    memory=memory.plateau if memory is not None else None,
                )
            )
        elif self.lr_schedule == "cosine":
            from neuroxai.training._callbacks import cosine_schedule

            callbacks.append(
                keras.callbacks.LearningRateScheduler(cosine_schedule(phase.learning_rate, first_epoch, phase.epochs))
            )
        if run is not None and _tensorboard_enabled(self.tensorboard):
            callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run.logs_dir), write_graph=False, profile_batch=0))
        return callbacks

    def _run_phase(
        self,
        model: keras.Model,
        fit_model: keras.Model,
        spec: ModelSpec,
        plan: TrainingPlan,
        phase: PlannedPhase,
        data: _Data,
        recorder: Any,
        best: Any,
        run: RunDirectory | None,
        *,
        load_backup: bool,
        memory: CallbackState | None = None,
    ) -> None:
        from neuroxai.training._callbacks import PipelineEpoch, ResumableEarlyStopping, ResumablePlateau, restore_rng
        from neuroxai.training._keras_fixes import multi_worker_reduce_fix

        state = recorder.state
        mid_phase = load_backup and state.phase == phase.name and state.epoch > state.phase_start
        first = state.phase_start if mid_phase else state.epoch
        rng = memory.rng if memory is not None and memory.epoch == state.epoch else ()
        if memory is not None and (not mid_phase or memory.phase != phase.name or memory.epoch != state.epoch):
            memory = None  # the callbacks of this phase start afresh (random generators carry on: `rng`)
        recorder.start_phase(phase.name, first)
        recorder.set_model(fit_model)  # also when no epoch is left to run in this phase (killed right at its end)
        with self._scope():
            trainable, frozen = plan.set_trainable(spec, model, phase)
            self._compile(fit_model, phase.learning_rate)
            if load_backup and run is not None:
                if mid_phase:
                    fit_model.optimizer.build(fit_model.trainable_variables)
                run.load_weights(state, fit_model, with_optimizer=mid_phase)
                if rng:
                    restore_rng(fit_model, rng)
        callbacks = self._callbacks(phase, first, data, run, memory)
        early = next((c for c in callbacks if isinstance(c, ResumableEarlyStopping)), None)
        plateau = next((c for c in callbacks if isinstance(c, ResumablePlateau)), None)
        recorder.track(
            early,
            plateau,
            best,
            memory.early_stopping.best_weights if memory is not None and memory.early_stopping is not None else None,
        )
        callbacks = [PipelineEpoch(data.train_state), *callbacks, *(c for c in (best, recorder) if c is not None)]
        callbacks += [*list(self.callbacks or []), data.reads]
        end = first + phase.epochs
        log.info(
            "Phase %s: epochs %d-%d at learning rate %g (%d layers trainable, %d frozen)",
            phase.name,
            first + 1,
            end,
            phase.learning_rate,
            trainable,
            frozen,
        )
        if state.epoch < end and not (memory is not None and memory.stopped):
            # a keras.distribution must be active while Keras' fit creates its state and splits the batches
            fit_scope = self._scope() if _batch_shards(self.strategy) else contextlib.nullcontext()
            with warnings.catch_warnings(), multi_worker_reduce_fix(self.strategy), fit_scope:
                # tf.data pipelines that skip bad files have an unknown length; Keras learns it in epoch 1
                warnings.filterwarnings("ignore", message="Your input ran out of data")
                try:
                    fit_model.fit(
                        data.train,
                        validation_data=data.val,
                        epochs=end,
                        initial_epoch=state.epoch,
                        class_weight=data.class_weight,
                        shuffle=False,
                        callbacks=callbacks,
                        verbose=2 if self.progress else 0,
                    )
                except Exception as exc:
                    self._raise_if_nothing_read(data, exc)
                    raise
        elif early is not None and early._memory_weights is not None:
            # the interruption came after the phase's last epoch: finish it as early stopping would have
            with self._scope():
                fit_model.set_weights(early._memory_weights)
        record = PhaseRecord(
            name=phase.name,
            first_epoch=first + 1,
            last_epoch=recorder.state.epoch,
            learning_rate=phase.learning_rate,
            trainable_layers=trainable,
            frozen_layers=frozen,
        )
        recorder.finish_phase(record, best.best_value if best is not None else None)

    @staticmethod
    def _raise_if_nothing_read(data: _Data, exc: BaseException) -> None:
        """Turn TensorFlow's error for a training split whose every file failed to decode into a clear one."""
        st = data.train_state
        if st is None or st.n == 0 or st.read().any():
            return
        data.reads.check(0)
        bad = [f for f in data.reads.unreadable if f.path]
        example = f" e.g. {bad[0].path!r}: {bad[0].reason}" if bad else ""
        raise DataError(
            f"None of the {st.n} training images could be decoded while training;{example}. The files changed since the "
            "Dataset was indexed: rebuild it (and check the image size asked for)."
        ) from exc

    def _summary(self, dataset: Dataset, data: _Data, evaluation: EvaluationReport | None = None) -> DatasetSummary:
        """The dataset's summary with the numbers of images actually used and the files that failed while used."""
        summary = dataset.summary()
        dropped = data.reads.dropped if data.reads is not None else {}
        used = {s: sum(summary.counts[s].values()) - int(dropped.get(s, 0)) for s in ("train", "val")}
        unreadable = tuple(data.reads.unreadable) if data.reads is not None else ()
        if evaluation is not None:
            used[evaluation.split] = int(evaluation.metrics.n)
            unreadable += tuple(evaluation.unreadable)
        return dataclasses.replace(summary, used=used, unreadable=unreadable)

    # ------------------------------------------------------------------ evaluate
    def evaluate(self, dataset: Dataset, split: str = "test") -> EvaluationReport:
        """Classification metrics of the fitted model on a split, and on its de-duplicated version.

        Args:
            dataset: A dataset with the same class names as the training data.
            split: ``"test"`` (default), ``"val"`` or ``"train"``.

        Returns:
            An :class:`~neuroxai.runs.EvaluationReport`: ``metrics`` on every
            image of the split and, for the test split when it holds images
            byte-identical to training images, ``dedup`` without them.

        Raises:
            NotFittedError: Called before :meth:`fit`.
            DataError: The split is empty or the class names differ.

        Example:
            >>> trainer.evaluate(ds).metrics.accuracy  # doctest: +SKIP
            0.97
        """
        self._check_fitted()
        from neuroxai.runs import evaluate_model

        self.metrics_ = evaluate_model(
            self.model_,
            dataset,
            split=split,
            class_names=self.classes_,
            input_shape=self.input_shape_,
            input_range=self.input_range_,
            batch_size=int(self.batch_size),
            calibration=getattr(self, "calibration_", None),
        )
        return self.metrics_

    # ------------------------------------------------------------------ predict
    def to_predictor(self) -> Predictor:
        """The fitted model as a :class:`~neuroxai.runs.Predictor` (same preprocessing as after loading).

        Raises:
            NotFittedError: Called before :meth:`fit`.
        """
        self._check_fitted()
        return Predictor(
            self.model_,
            self.classes_,
            self.input_shape_,
            self.input_range_,
            self.target_layer_,
            spec=self.run_spec(),
            path=self.run_dir_,
        )

    def predict_proba(self, inputs: Any, batch_size: int | None = None) -> np.ndarray:
        """Class probabilities ``[N, num_classes]`` for files, PIL images or arrays.

        Raises:
            NotFittedError: Called before :meth:`fit`.
            DataError: An input cannot be read.
        """
        return self.to_predictor().predict(inputs, batch_size=int(batch_size or self.batch_size))

    def predict(self, inputs: Any, batch_size: int | None = None) -> np.ndarray:
        """Index of the most probable class per input (into ``classes_``).

        Raises:
            NotFittedError: Called before :meth:`fit`.
            DataError: An input cannot be read.
        """
        return np.asarray(self.predict_proba(inputs, batch_size=batch_size).argmax(axis=1), dtype=np.int64)

    @property
    def epochs_trained_(self) -> int:
        """Epochs run in all phases (after :meth:`fit`)."""
        self._check_fitted()
        epochs = self.history_.get("epoch") or [0]
        return int(epochs[-1])

    # ------------------------------------------------------------------ save
    def run_spec(self) -> RunSpec:
        """The ``neuroxai.json`` content of this fitted trainer, as a :class:`~neuroxai.runs.RunSpec`.

        Raises:
            NotFittedError: Called before :meth:`fit`.
        """
        self._check_fitted()
        return RunSpec(
            model=self.spec_.name,
            model_source=self.spec_.source,
            class_names=tuple(self.classes_),
            input_shape=self.input_shape_,
            input_range=self.input_range_,
            target_layer=self.target_layer_,
            phases=tuple(self.phases_),
            epochs_trained=self.epochs_trained_,
            seed=int(self.seed),
            settings=self.settings(),
            data=self.data_summary_,
            versions=_versions(),
            created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            calibration=getattr(self, "calibration_", None),
            ood=getattr(self, "ood_", None),
        )

    def save(self, run_dir: str | Path) -> Path:
        """Write the run directory atomically (each file appears whole or not at all).

        Files: ``model.keras`` (Keras format, loadable in safe mode),
        ``neuroxai.json`` (the :class:`~neuroxai.runs.RunSpec`),
        ``history.csv``, ``training_curves.png`` and, after :meth:`evaluate`,
        ``metrics.json`` and ``confusion_matrix.png``.

        Args:
            run_dir: Destination folder (created).

        Returns:
            The folder.

        Raises:
            NotFittedError: Called before :meth:`fit`.

        Example:
            >>> trainer.save("runs/cnn")  # doctest: +SKIP
            >>> neuroxai.load("runs/cnn").predict(["scan.png"])  # doctest: +SKIP
        """
        self._check_fitted()
        run = RunDirectory(run_dir)
        run.commit(self.model_, self.run_spec(), self.history_, getattr(self, "metrics_", None))
        return run.path


def _tensorboard_enabled(setting: bool | None) -> bool:
    import importlib.util

    installed = importlib.util.find_spec("tensorboard") is not None
    if setting and not installed:
        raise ModelError("tensorboard=True but the tensorboard package is not installed; pip install tensorboard.")
    return installed if setting is None else bool(setting)


def _batch_shards(strategy: Any) -> int:
    """How many parts a ``keras.distribution`` splits each batch into (0 for none, or a ``tf.distribute`` strategy)."""
    if strategy is None:
        return 0
    import keras

    if not isinstance(strategy, (keras.distribution.DataParallel, keras.distribution.ModelParallel)):
        return 0
    mesh = strategy.device_mesh
    names = list(mesh.axis_names)
    name = getattr(strategy, "batch_dim_name", None)
    return int(mesh.shape[names.index(name)]) if name in names else 1


def _check_strategy(strategy: Any, backend: str, batch_size: Any) -> None:
    """Refuse a ``strategy`` that is of the other backend's kind, of neither kind, or that cannot split the batches."""
    from neuroxai.errors import BackendError

    if strategy is None:
        return
    shards = _batch_shards(strategy)
    if shards:
        if backend != "jax":
            raise BackendError(
                f"A keras.distribution ({type(strategy).__name__}) runs on the jax Keras backend only (Keras implements "
                f"its distribution API for JAX); this process runs KERAS_BACKEND={backend!r}. On TensorFlow pass a "
                "tf.distribute strategy (e.g. strategy=tf.distribute.MirroredStrategy()), or set KERAS_BACKEND=jax before "
                "keras is first imported."
            )
        if isinstance(batch_size, int) and batch_size % shards:
            fit = (batch_size // shards + 1) * shards
            raise ModelError(
                f"batch_size={batch_size} does not split over the {shards} devices of {type(strategy).__name__}; use a "
                f"multiple of {shards} (e.g. batch_size={fit})."
            )
        return
    import tensorflow as tf

    if isinstance(strategy, tf.distribute.Strategy):
        if backend != "tensorflow":
            instead = (
                "On JAX pass strategy=keras.distribution.DataParallel() (data parallelism over the local devices)"
                if backend == "jax"
                else f"On {backend}, train without a strategy"
            )
            raise BackendError(
                f"A tf.distribute strategy ({type(strategy).__name__}) runs on the tensorflow Keras backend only; this "
                f"process runs KERAS_BACKEND={backend!r}. {instead}, or set KERAS_BACKEND=tensorflow before keras is "
                "first imported."
            )
        return
    raise ModelError(
        f"Expected strategy to be None, a tf.distribute.Strategy (TensorFlow) or a keras.distribution.DataParallel or "
        f"ModelParallel (JAX), got {type(strategy).__name__}."
    )


def _trim_to_shards(pipeline: Any, shards: int, split: str, n: int, batch_size: int) -> Any:
    """``pipeline`` with each batch cut to a multiple of ``shards`` images (only a last, shorter batch loses any)."""
    extra = n % batch_size % shards
    if extra == 0:
        return pipeline
    log.warning(
        "The last %s batch of each epoch has %d images, which do not split over %d devices: %d of them are left out of "
        "each epoch. Choose a batch size that leaves a multiple of %d to avoid it.",
        split,
        n % batch_size,
        shards,
        extra,
        shards,
    )
    import tensorflow as tf

    def trim(*batch: Any) -> Any:
        first = tf.nest.flatten(batch)[0]
        keep = tf.shape(first)[0] // shards * shards
        out = tf.nest.map_structure(lambda t: t[:keep], batch)
        return out if len(batch) > 1 else out[0]

    return pipeline.map(trim)
