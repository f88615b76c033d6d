"""Trainer: fit a registry model on a Dataset, two-phase fine-tuning, resume, evaluation, run directory."""

from __future__ import annotations

import contextlib
import datetime as _dt
import platform
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from neuroxai.errors import DataError, ModelError, NotFittedError

if TYPE_CHECKING:  # pragma: no cover
    import keras
    import tensorflow as tf

    from neuroxai.data import Dataset
    from neuroxai.models import ModelRegistry, ModelSpec

__all__ = ["NOT_FITTED_MESSAGE", "RUN_FORMAT", "Trainer"]

RUN_FORMAT = "neuroxai-run"
RUN_FORMAT_VERSION = 1
NOT_FITTED_MESSAGE = "This Trainer is not fitted yet; call fit(dataset) first"
_DEFAULT_HEAD_FRACTION = 0.5
#: Accepted values of ``Trainer(lr_schedule=...)``.
LR_SCHEDULES = ("plateau", "cosine", "constant")


def cosine_schedule(lr: float, first_epoch: int, n_epochs: int) -> Any:
    """Per-epoch cosine decay for ``keras.callbacks.LearningRateScheduler``.

    Epoch ``first_epoch + i`` (0-based, as Keras counts across phases) gets
    ``lr * (1 + cos(pi * i / n_epochs)) / 2``: the full rate in the phase's
    first epoch, falling towards zero in its last.

    Args:
        lr: The phase's starting learning rate.
        first_epoch: 0-based index of the phase's first epoch.
        n_epochs: Epochs in the phase (at least 1).

    Returns:
        ``schedule(epoch, current_lr) -> float``.

    Example:
        >>> f = cosine_schedule(1e-3, 0, 4)
        >>> [round(f(e, None), 6) for e in range(4)]
        [0.001, 0.000854, 0.0005, 0.000146]
    """
    import math

    def schedule(epoch: int, current_lr: Any = None) -> float:
        i = min(max(int(epoch) - int(first_epoch), 0), int(n_epochs))
        return float(lr) * 0.5 * (1.0 + math.cos(math.pi * i / int(n_epochs)))

    return schedule


def _versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    from neuroxai import __version__

    return {
        "neuroxai": __version__,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


class Trainer:
    """Train, fine-tune, evaluate and save a brain MRI classifier (scikit-learn style).

    ``__init__`` only stores the settings; :meth:`fit` builds the model and
    learns, and returns the trainer. Learned state ends in ``_``:
    ``model_``, ``history_``, ``classes_``, ``spec_``, ``input_shape_``,
    ``input_range_``, ``target_layer_``, ``phases_``, ``run_dir_`` and
    (after :meth:`evaluate`) ``metrics_``.

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
    finished epoch, in the right phase, with its optimizer state.

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
        strategy: A ``tf.distribute.Strategy``; the model is built and
            compiled inside its scope.
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

    Raises:
        ModelError: From :meth:`fit` for unknown models or inconsistent
            settings (see there).

    Example:
        >>> from neuroxai import Trainer
        >>> from neuroxai.data import phantoms
        >>> ds = phantoms(n_per_class=20, image_size=64)
        >>> trainer = Trainer("cnn", epochs=2, image_size=64, progress=False).fit(ds)  # doctest: +SKIP
        >>> trainer.evaluate(ds)["test"]["accuracy"]  # doctest: +SKIP
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
        strategy: tf.distribute.Strategy | None = None,
        class_weight: bool | dict[int, float] = True,
        augment: bool = True,
        progress: bool = True,
        model_options: dict[str, Any] | None = None,
        input_range: tuple[float, float] | None = None,
        callbacks: Sequence[Any] | None = None,
        resume: bool = True,
        tensorboard: bool | None = None,
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

    # ------------------------------------------------------------------ settings
    _PARAMS = (
        "model",
        "epochs",
        "batch_size",
        "learning_rate",
        "optimizer",
        "loss",
        "metrics",
        "image_size",
        "two_phase",
        "fine_tune_epochs",
        "fine_tune_lr_factor",
        "early_stopping_patience",
        "reduce_lr_patience",
        "lr_schedule",
        "seed",
        "out_dir",
        "strategy",
        "class_weight",
        "augment",
        "progress",
        "model_options",
        "input_range",
        "resume",
        "tensorboard",
    )

    def get_params(self) -> dict[str, Any]:
        """The constructor settings as a JSON-able dict (objects by their name or class).

        Returns:
            ``{setting: value}`` for the settings recorded in ``neuroxai.json``.
        """

        def plain(v: Any) -> Any:
            if v is None or isinstance(v, (bool, int, float, str)):
                return v
            if isinstance(v, (list, tuple)):
                return [plain(x) for x in v]
            if isinstance(v, dict):
                return {str(k): plain(x) for k, x in v.items()}
            if isinstance(v, Path):
                return str(v)
            name = getattr(v, "name", None)
            return name if isinstance(name, str) else type(v).__name__

        return {k: plain(getattr(self, k)) for k in self._PARAMS}

    def __repr__(self) -> str:
        model = self.model if isinstance(self.model, str) else getattr(self.model, "name", type(self.model).__name__)
        return f"Trainer(model={model!r}, epochs={self.epochs}, batch_size={self.batch_size}, learning_rate={self.learning_rate})"

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(NOT_FITTED_MESSAGE)

    # ------------------------------------------------------------------ model resolution
    def _resolve_spec(self) -> tuple[ModelSpec, keras.Model | None]:
        import keras

        from neuroxai.models import ModelSpec

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
            layer_names = {layer.name for layer in user.layers}
            return (
                ModelSpec(
                    name=name,
                    factory=lambda **_: user,
                    input_shape=shape,
                    input_range=tuple(self.input_range or (0.0, 1.0)),
                    target_layer=None,
                    description="user keras.Model",
                    source="user",
                    transfer=None,
                ),
                user if layer_names else user,
            )
        if isinstance(self.model, ModelSpec):
            return self.model, None
        if isinstance(self.model, str):
            from neuroxai.models import ModelRegistry

            registry = self.registry if self.registry is not None else ModelRegistry()
            return registry.get(self.model), None
        raise ModelError(
            f"Expected model to be a registry name, a neuroxai.ModelSpec or a keras.Model, got {type(self.model).__name__}."
        )

    def _image_shape(self, spec: ModelSpec, user: keras.Model | None) -> tuple[int, int, int]:
        if user is not None or self.image_size is None:
            if user is not None and self.image_size is not None and _pair(self.image_size) != tuple(spec.input_shape[:2]):
                raise ModelError(
                    f"image_size={self.image_size!r} differs from your model's input {spec.input_shape[:2]}; "
                    "leave image_size unset for a keras.Model."
                )
            return tuple(spec.input_shape)  # type: ignore[return-value]
        h, w = _pair(self.image_size)
        return (h, w, int(spec.input_shape[2]))

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

    def _base_lr(self) -> float:
        import keras

        if self.optimizer is not None and isinstance(self.optimizer, keras.optimizers.Optimizer):
            lr = self.optimizer.get_config().get("learning_rate")
            if isinstance(lr, (int, float)):
                return float(lr)
        return float(self.learning_rate)

    def _compile(self, model: keras.Model, lr: float) -> None:
        import keras

        model.compile(
            optimizer=self._make_optimizer(lr),
            loss=self.loss if self.loss is not None else keras.losses.SparseCategoricalCrossentropy(),
            metrics=list(self.metrics) if self.metrics is not None else ["accuracy"],
        )

    def _plan(self, spec: ModelSpec) -> list[tuple[str, int, float]]:
        epochs = int(self.epochs)
        if epochs < 1:
            raise ModelError(f"Expected epochs >= 1, got {self.epochs!r}.")
        transfer = spec.transfer
        if self.two_phase is None:
            # Freezing a backbone only makes sense when it holds pretrained weights: with
            # weights=None (training from scratch) the frozen layers would never learn.
            options = self.model_options or {}
            from_scratch = "weights" in options and options["weights"] is None
            two = transfer is not None and not from_scratch
        else:
            two = bool(self.two_phase)
        if self.lr_schedule not in LR_SCHEDULES:
            raise ModelError(f"Expected lr_schedule to be one of {', '.join(map(repr, LR_SCHEDULES))}, got {self.lr_schedule!r}.")
        lr = self._base_lr()
        if not two:
            return [("single", epochs, lr)]
        if transfer is None:
            raise ModelError(
                f"two_phase=True needs a model whose ModelSpec has a transfer=TransferSpec(...); "
                f"model '{spec.name}' has none. Use two_phase=False or add a TransferSpec."
            )
        if self.fine_tune_epochs is not None:
            ft = int(self.fine_tune_epochs)
        else:
            frac = transfer.head_epochs_fraction or _DEFAULT_HEAD_FRACTION
            ft = epochs - max(1, round(epochs * frac))
        head = epochs - ft
        if head < 1 or ft < 1:
            raise ModelError(
                f"Two-phase training needs at least one epoch in each phase; epochs={epochs} with "
                f"fine_tune_epochs={ft}. Raise epochs, set fine_tune_epochs between 1 and epochs-1, or use two_phase=False."
            )
        factor = float(self.fine_tune_lr_factor if self.fine_tune_lr_factor is not None else transfer.fine_tune_lr_factor)
        if not 0.0 < factor <= 1.0:
            raise ModelError(f"Expected fine_tune_lr_factor in (0, 1], got {factor!r}.")
        return [("head", head, lr), ("fine_tune", ft, lr * factor)]

    # ------------------------------------------------------------------ fit
    def fit(self, dataset: Dataset, *, out_dir: str | Path | None = None) -> Trainer:
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
            out_dir: Run directory (overrides the constructor's).

        Returns:
            The fitted trainer (``self``).

        Raises:
            UnknownModelError: The model name is not registered.
            ModelError: Bad settings (epochs, phases, optimizer, image size),
                or the folder holds an interrupted run of a different model
                or settings.
            DataError: The training split is empty.

        Example:
            >>> trainer = Trainer("cnn", epochs=3, image_size=64).fit(ds, out_dir="runs/cnn")  # doctest: +SKIP
        """
        import keras

        from neuroxai.training._callbacks import BestCheckpoint, RunCheckpoint, load_weights_file, read_state, remove_backup

        spec, user = self._resolve_spec()
        shape = self._image_shape(spec, user)
        plan = self._plan(spec)
        n_train = len(dataset.labels("train"))
        if n_train == 0:
            raise DataError(f"The training split of {getattr(dataset, 'source', 'the dataset')} is empty; add training images.")
        num_classes = dataset.num_classes
        run_dir = Path(out_dir if out_dir is not None else self.out_dir) if (out_dir or self.out_dir) else None
        keras.utils.set_random_seed(int(self.seed))

        fingerprint = {
            "model": spec.name,
            "num_classes": num_classes,
            "class_names": list(dataset.class_names),
            "input_shape": list(shape),
            "plan": [[name, n, float(lr)] for name, n, lr in plan],
            "seed": int(self.seed),
            "lr_schedule": self.lr_schedule,
        }
        state: dict[str, Any] = {
            "fingerprint": fingerprint,
            "phase": plan[0][0],
            "epoch": 0,
            "history": {},
            "completed": {},
            "phase_start": 0,
            "best": None,
        }
        resumed: dict[str, Any] | None = None
        if run_dir is not None and self.resume:
            resumed = read_state(run_dir / "backup")
            if resumed is not None:
                if resumed.get("fingerprint") != _jsonable(fingerprint):
                    raise ModelError(
                        f"{run_dir / 'backup' / 'state.json'} holds an interrupted run with other settings "
                        f"({resumed.get('fingerprint')}); expected {fingerprint}. Use another out_dir, or delete "
                        f"{run_dir / 'backup'} to start this folder over."
                    )
                state.update(
                    {
                        k: resumed[k]
                        for k in (
                            "phase",
                            "epoch",
                            "history",
                            "completed",
                            "phase_start",
                            "best",
                            "weights",
                            "weights_has_optimizer",
                        )
                        if k in resumed
                    }
                )

        def scope() -> Any:  # a strategy scope can be entered once per object: make a new one each time
            return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

        with scope():
            if user is not None:
                model = user
                if self.strategy is not None:
                    model = keras.models.clone_model(user)
                    model.set_weights(user.get_weights())
            else:
                model = spec.factory(num_classes=num_classes, input_shape=shape, **dict(self.model_options or {}))

        if self.strategy is not None:
            _patch_symbolic_build(model)
        channels = shape[2]
        pipe_args = {
            "image_size": shape[:2],
            "channels": channels,
            "input_range": spec.input_range,
            "batch_size": int(self.batch_size),
        }
        train = dataset.pipeline("train", augment=bool(self.augment), seed=int(self.seed), **pipe_args)
        has_val = len(dataset.labels("val")) > 0
        val = dataset.pipeline("val", **pipe_args) if has_val else None
        monitor = "val_loss" if has_val else "loss"
        if self.class_weight is True:
            class_weight = dataset.class_weights("train")
        elif isinstance(self.class_weight, dict):
            class_weight = {int(k): float(v) for k, v in self.class_weight.items()}
        else:
            class_weight = None

        phases: list[dict[str, Any]] = []
        checkpoint = RunCheckpoint(run_dir, state)
        best_ckpt = (
            BestCheckpoint(run_dir / "checkpoints" / "best.keras", monitor=monitor, best=state.get("best")) if run_dir else None
        )
        cursor = 0
        for name, n_epochs, lr in plan:
            done = state["completed"].get(name)
            if done is not None:  # finished before an interruption
                phases.append(done)
                cursor = int(done["last_epoch"])
                continue
            mid_phase = resumed is not None and state["phase"] == name and int(state["epoch"]) > int(state.get("phase_start", 0))
            begin = int(state["phase_start"]) if mid_phase else cursor
            initial = int(state["epoch"]) if mid_phase else cursor
            state["phase"], state["phase_start"] = name, begin
            with scope():
                counts = (
                    spec.transfer.set_phase(model, name)
                    if name != "single"
                    else {"trainable": sum(1 for layer in model.layers if layer.trainable), "frozen": 0}
                )
                self._compile(model, lr)
                if resumed is not None and state.get("weights") and (run_dir / "backup" / state["weights"]).is_file():
                    with_opt = mid_phase and bool(state.get("weights_has_optimizer"))
                    if with_opt:
                        model.optimizer.build(model.trainable_variables)
                    load_weights_file(run_dir / "backup" / state["weights"], model, with_optimizer=with_opt)
                    resumed = None  # weights are in; later phases continue from memory
            callbacks: list[Any] = []
            if self.early_stopping_patience is not None:
                callbacks.append(
                    keras.callbacks.EarlyStopping(
                        monitor=monitor, patience=int(self.early_stopping_patience), restore_best_weights=True
                    )
                )
            if self.lr_schedule == "plateau" and self.reduce_lr_patience is not None:
                callbacks.append(
                    keras.callbacks.ReduceLROnPlateau(
                        monitor=monitor, factor=0.5, patience=int(self.reduce_lr_patience), min_lr=lr * 1e-3
                    )
                )
            elif self.lr_schedule == "cosine":
                callbacks.append(keras.callbacks.LearningRateScheduler(cosine_schedule(lr, begin, n_epochs)))
            if run_dir is not None and _tensorboard_enabled(self.tensorboard):
                callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run_dir / "logs"), write_graph=False, profile_batch=0))
            if best_ckpt is not None:
                callbacks.append(best_ckpt)
            callbacks.append(checkpoint)
            callbacks += list(self.callbacks or [])
            end = begin + n_epochs
            if initial < end:
                with warnings.catch_warnings(), _multi_worker_reduce_fix(self.strategy):
                    # tf.data pipelines that skip bad files have an unknown length; Keras learns it in epoch 1
                    warnings.filterwarnings("ignore", message="Your input ran out of data")
                    model.fit(
                        train,
                        validation_data=val,
                        epochs=end,
                        initial_epoch=initial,
                        class_weight=class_weight,
                        shuffle=False,
                        callbacks=callbacks,
                        verbose=2 if self.progress else 0,
                    )
            last = int(state["epoch"])
            info = {
                "name": name,
                "first_epoch": begin + 1,
                "last_epoch": last,
                "learning_rate": float(lr),
                "trainable_layers": counts["trainable"],
                "frozen_layers": counts["frozen"],
            }
            phases.append(info)
            state["completed"][name] = info
            state["best"] = best_ckpt.best if best_ckpt is not None else None
            cursor = last
            # record the (best-restored) weights at the phase boundary
            state["phase_start"] = cursor
            checkpoint.set_model(model)
            checkpoint.save(with_optimizer=False)
        if resumed is not None and state.get("weights") and (run_dir / "backup" / state["weights"]).is_file():
            # every phase had finished before the interruption: take the final weights
            with scope():
                load_weights_file(run_dir / "backup" / state["weights"], model, with_optimizer=False)

        self.spec_ = spec
        self.model_ = model
        self.history_ = {k: list(v) for k, v in state["history"].items()}
        self.classes_ = tuple(dataset.class_names)
        self.input_shape_ = tuple(shape)
        self.input_range_ = tuple(spec.input_range)
        self.target_layer_ = spec.target_layer
        self.phases_ = phases
        self.data_summary_ = _data_summary(dataset)
        self.run_dir_ = run_dir
        if run_dir is not None:
            if len(dataset.labels("test")) > 0:
                self.evaluate(dataset)
            self.save(run_dir)
            remove_backup(run_dir / "backup")
        return self

    # ------------------------------------------------------------------ evaluate
    def evaluate(self, dataset: Dataset, split: str = "test") -> dict[str, Any]:
        """Classification metrics of the fitted model on a split, and on its de-duplicated version.

        Args:
            dataset: A dataset with the same class names as the training data.
            split: ``"test"`` (default), ``"val"`` or ``"train"``.

        Returns:
            ``{split: metrics}`` and, when the dataset knows test images that
            are byte-identical to training images, ``{split + "_dedup": metrics}``
            without them; plus ``"class_names"``. Each ``metrics`` is
            :func:`~neuroxai.training.classification_metrics` output:
            ``accuracy``, ``per_class`` precision/recall/F1, ``confusion_matrix``,
            ``roc_auc`` (macro one-vs-rest), ``ece`` (15 bins) ...

        Raises:
            NotFittedError: Called before :meth:`fit`.
            DataError: The split is empty or the class names differ.

        Example:
            >>> trainer.evaluate(ds)["test"]["accuracy"]  # doctest: +SKIP
            0.97
        """
        self._check_fitted()
        from neuroxai.runs._predictor import evaluate_model

        self.metrics_ = evaluate_model(
            self.model_,
            dataset,
            split=split,
            class_names=self.classes_,
            input_shape=self.input_shape_,
            input_range=self.input_range_,
            batch_size=int(self.batch_size),
        )
        return self.metrics_

    # ------------------------------------------------------------------ predict
    def to_predictor(self) -> Any:
        """The fitted model as a :class:`~neuroxai.training.Predictor` (same preprocessing as after loading).

        Raises:
            NotFittedError: Called before :meth:`fit`.
        """
        self._check_fitted()
        from neuroxai.runs._predictor import Predictor

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
        return self.predict_proba(inputs, batch_size=batch_size).argmax(axis=1)

    # ------------------------------------------------------------------ save
    def run_spec(self) -> dict[str, Any]:
        """The ``neuroxai.json`` content of this fitted trainer.

        Raises:
            NotFittedError: Called before :meth:`fit`.
        """
        self._check_fitted()
        return {
            "format": RUN_FORMAT,
            "format_version": RUN_FORMAT_VERSION,
            "model": self.spec_.name,
            "model_source": self.spec_.source,
            "class_names": list(self.classes_),
            "input_shape": list(self.input_shape_),
            "input_range": list(self.input_range_),
            "target_layer": self.target_layer_,
            "phases": self.phases_,
            "epochs_trained": int(self.history_["epoch"][-1]) if self.history_.get("epoch") else 0,
            "seed": int(self.seed),
            "settings": self.get_params(),
            "data": self.data_summary_,
            "versions": _versions(),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }

    def save(self, run_dir: str | Path) -> Path:
        """Write the run directory atomically (each file appears whole or not at all).

        Files: ``model.keras`` (Keras format, loadable in safe mode),
        ``neuroxai.json`` (class names, input shape and range, explanation
        target layer, model name, versions, settings, data summary, seed),
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
        from neuroxai._io import atomic_path, save_figure, write_json, write_text
        from neuroxai.report.figures import plot_confusion_matrix, plot_training_curves
        from neuroxai.training._callbacks import history_to_csv

        run = Path(run_dir)
        run.mkdir(parents=True, exist_ok=True)
        with atomic_path(run / "model.keras") as tmp:
            self.model_.save(tmp)
        write_json(run / "neuroxai.json", self.run_spec())
        write_text(run / "history.csv", history_to_csv(self.history_))
        save_figure(plot_training_curves(self.history_, title=f"Training: {self.spec_.name}"), run / "training_curves.png")
        metrics = getattr(self, "metrics_", None)
        if metrics:
            write_json(run / "metrics.json", metrics)
            key = next(k for k in metrics if isinstance(metrics[k], dict) and "confusion_matrix" in metrics[k])
            m = metrics[key]
            title = f"Confusion matrix ({key}, n={m['n']}, accuracy={m['accuracy']:.3f})" if m["n"] else "Confusion matrix"
            save_figure(plot_confusion_matrix(m["confusion_matrix"], self.classes_, title=title), run / "confusion_matrix.png")
        return run


def _pair(size: Any) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        return (int(size), int(size))
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ModelError(f"Expected image_size as an int or (height, width), got {size!r}.") from None
    if h < 1 or w < 1:
        raise ModelError(f"Expected a positive image_size, got {size!r}.")
    return (h, w)


def _jsonable(obj: Any) -> Any:
    import json

    from neuroxai._io import _jsonable as to_json

    return json.loads(json.dumps(to_json(obj)))


def _patch_symbolic_build(model: Any) -> None:
    """Work around Keras 3 failing in ``fit`` under MultiWorkerMirroredStrategy.

    Before the first step Keras builds the model symbolically from one batch,
    which it first all-reduces (``strategy.reduce("MEAN", batch)``); the
    collective all-reduce cannot take the ``(x, y)`` tuple and raises
    "Attempt to convert a value (PerReplica ...) to a Tensor". Only the
    batch's shapes and dtypes matter there, so this instance-level override
    takes the local replica's batch instead (no communication at all).
    """
    import types

    import keras
    import tensorflow as tf

    if not hasattr(model, "_maybe_symbolic_build") or not hasattr(model, "_symbolic_build"):
        return

    def _maybe_symbolic_build(self: Any, iterator: Any = None, data_batch: Any = None) -> None:
        strategy = getattr(self, "_distribute_strategy", None)
        if strategy is None:
            return
        if iterator is not None:
            for _, _, it in iterator:
                batch = next(it)
                data_batch = keras.tree.map_structure(
                    lambda v: strategy.experimental_local_results(v)[0] if isinstance(v, tf.distribute.DistributedValues) else v,
                    batch,
                )
                break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    object.__setattr__(model, "_maybe_symbolic_build", types.MethodType(_maybe_symbolic_build, model))


@contextlib.contextmanager
def _multi_worker_reduce_fix(strategy: Any) -> Any:
    """Work around Keras 3 failing on scalar logs under MultiWorkerMirroredStrategy (tensorflow#72388).

    Keras reduces each step's logs across workers with
    ``strategy.reduce("MEAN", v, axis=0)``, which fails for the scalar loss
    and metrics ("Invalid reduction dimension 0 for input with 0
    dimensions"). Within this block, scalars are averaged over replicas with
    ``axis=None`` instead; everything else is left to Keras. Only active for
    multi-worker collective strategies.
    """
    try:
        from keras.src.backend.tensorflow import trainer as tf_trainer
    except ImportError:  # pragma: no cover - other Keras layouts
        yield
        return
    is_multi = getattr(tf_trainer, "_collective_all_reduce_multi_worker", None)
    original = getattr(tf_trainer, "reduce_per_replica", None)
    if strategy is None or is_multi is None or original is None or not is_multi(strategy):
        yield
        return
    import keras
    import tensorflow as tf

    def fixed(values: Any, strategy: Any, reduction: str = "auto") -> Any:
        if reduction not in ("auto", "mean"):
            return original(values, strategy, reduction=reduction)

        def _reduce(v: Any) -> Any:
            first = strategy.experimental_local_results(v)[0] if isinstance(v, tf.distribute.DistributedValues) else v
            rank = getattr(getattr(first, "shape", None), "rank", None)
            return strategy.reduce("MEAN", v, axis=None if rank == 0 else 0)

        return keras.tree.map_structure(_reduce, values)

    tf_trainer.reduce_per_replica = fixed
    try:
        yield
    finally:
        tf_trainer.reduce_per_replica = original


def _tensorboard_enabled(setting: bool | None) -> bool:
    import importlib.util

    installed = importlib.util.find_spec("tensorboard") is not None
    if setting and not installed:
        raise ModelError("tensorboard=True but the tensorboard package is not installed; pip install tensorboard.")
    return installed if setting is None else bool(setting)


def _data_summary(dataset: Any) -> dict[str, Any]:
    try:
        return _jsonable(dataset.summary())
    except Exception as exc:  # a summary must never break a finished training run
        return {"error": f"{type(exc).__name__}: {exc}"}
