"""Callbacks of the Trainer: the run recorder (history and resume state), an atomic best-model checkpoint, cosine decay.

Resume is our own rather than ``keras.callbacks.BackupAndRestore`` because a
two-phase run is two ``fit`` calls with different trainable layers and
optimizers: the backup must know which phase it belongs to, a finished head
phase must not be re-run, and the history must never count an epoch twice.
``BackupAndRestore`` also keeps only weights, optimizer and epoch; a resumed
run must end exactly as the uninterrupted one, so after every epoch the
recorder also saves what the callbacks remember (:class:`CallbackState`: the
best value so far, early stopping's and the LR plateau's counters and best
weights, Keras' random-generator states), and the pipeline draws each epoch's
shuffling and augmentation from the epoch number alone
(:class:`~neuroxai.data.PipelineState`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from neuroxai._io import atomic_path, write_json
from neuroxai._records import Record
from neuroxai.data import SkippedFile
from neuroxai.runs import PhaseRecord, ResumeState, RunDirectory

__all__ = [
    "BestModelCheckpoint",
    "CallbackState",
    "MonitorState",
    "PipelineEpoch",
    "ReadCheck",
    "ResumableEarlyStopping",
    "ResumablePlateau",
    "RunRecorder",
    "cosine_schedule",
]

log = logging.getLogger(__name__)

_CALLBACK_STATE = "callbacks-{epoch:04d}.json"
_BEST_WEIGHTS = "best-weights-{epoch:04d}.npz"


def cosine_schedule(lr: float, first_epoch: int, n_epochs: int) -> Callable[[int, Any], float]:
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

    def schedule(epoch: int, current_lr: Any = None) -> float:
        i = min(max(int(epoch) - int(first_epoch), 0), int(n_epochs))
        return float(lr) * 0.5 * (1.0 + math.cos(math.pi * i / int(n_epochs)))

    return schedule


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


@dataclass(frozen=True)
class MonitorState(Record):
    """What early stopping or the learning-rate plateau remembers after an epoch.

    Attributes:
        wait: Epochs since the last improvement.
        best: Best monitored value in the phase (``None`` before the first).
        best_epoch: 0-based epoch of ``best`` (early stopping).
        stopped_epoch: 0-based epoch early stopping stopped at (0: it did not).
        cooldown: Cooldown epochs left (plateau).
        best_weights: File in ``backup/`` holding the weights of ``best_epoch`` (early stopping).
    """

    wait: int = 0
    best: float | None = None
    best_epoch: int = 0
    stopped_epoch: int = 0
    cooldown: int = 0
    best_weights: str | None = None


@dataclass(frozen=True)
class CallbackState(Record):
    """What decides the rest of an interrupted run beyond weights and optimizer (``backup/callbacks-NNNN.json``).

    Attributes:
        epoch: Epochs finished (the run's :class:`~neuroxai.runs.ResumeState` names the same).
        phase: The phase of that epoch.
        checkpoint_best: Best monitored value of the whole run so far (the best checkpoint's).
        early_stopping: Early stopping's memory (``None`` when it is off).
        plateau: The learning-rate plateau's memory (``None`` when it is off).
        stopped: Early stopping ended the phase after this epoch.
        rng: States of the model's Keras random generators (dropout ...), in variable order.
    """

    epoch: int
    phase: str
    checkpoint_best: float | None = None
    early_stopping: MonitorState | None = None
    plateau: MonitorState | None = None
    stopped: bool = False
    rng: tuple[tuple[int, ...], ...] = ()


def _rng_variables(model: keras.Model) -> list[Any]:
    """The model's variables that are not weights: Keras' random-generator states."""
    weights = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def restore_rng(model: keras.Model, states: Sequence[Sequence[int]]) -> None:
    """Set the model's random-generator states to ``states`` (as :class:`CallbackState` saved them)."""
    variables = _rng_variables(model)
    if len(variables) != len(states):
        log.warning("Not restoring %d random-generator states into a model with %d", len(states), len(variables))
        return
    for var, value in zip(variables, states):
        var.assign(np.asarray(value).astype(keras.ops.convert_to_numpy(var).dtype).reshape(tuple(var.shape)))


def read_callback_state(run: RunDirectory, epoch: int) -> CallbackState | None:
    """The callbacks' memory saved after ``epoch`` finished epochs, or ``None`` (missing or damaged: a warning)."""
    path = run.backup_dir / _CALLBACK_STATE.format(epoch=int(epoch))
    if not path.is_file():
        return None
    try:
        return CallbackState.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as exc:
        log.warning("Ignoring %s (%s): early stopping and the LR plateau start afresh", path, exc)
        return None


def read_best_weights(run: RunDirectory, name: str | None) -> list[np.ndarray] | None:
    """The early-stopping best weights a :class:`MonitorState` names (``None`` when it names none)."""
    if not name:
        return None
    path = run.backup_dir / name
    if not path.is_file():
        return None
    with np.load(path) as data:
        return [data[k] for k in sorted(data.files)]


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):  # type: ignore[misc]  # Keras ships no type information
    """Early stopping that restores the best weights, and whose memory survives an interruption.

    Args:
        monitor: Log key, e.g. ``"val_loss"``.
        patience: Epochs without improvement before stopping.
        memory: What an interrupted run's early stopping remembered (``None``: start afresh).
        best_weights: The weights ``memory`` names.
    """

    def __init__(
        self, monitor: str, patience: int, memory: MonitorState | None = None, best_weights: list[np.ndarray] | None = None
    ) -> None:
        super().__init__(monitor=monitor, patience=int(patience), restore_best_weights=True)
        self._memory = memory
        self._memory_weights = best_weights

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        super().on_train_begin(logs)
        m = self._memory
        if m is not None:
            self.wait, self.best, self.best_epoch, self.stopped_epoch = m.wait, m.best, m.best_epoch, m.stopped_epoch
            self.best_weights = self._memory_weights
            self._memory = None

    def memory(self, best_weights: str | None) -> MonitorState:
        """The memory to save after an epoch (``best_weights``: the file holding :attr:`best_weights`)."""
        return MonitorState(
            wait=int(self.wait),
            best=_finite(self.best),
            best_epoch=int(self.best_epoch),
            stopped_epoch=int(self.stopped_epoch),
            best_weights=best_weights,
        )


class ResumablePlateau(keras.callbacks.ReduceLROnPlateau):  # type: ignore[misc]  # Keras ships no type information
    """``ReduceLROnPlateau`` whose counters survive an interruption (the rate itself is in the optimizer's state).

    Args:
        monitor: Log key.
        factor: Factor of each cut.
        patience: Epochs without improvement before a cut.
        min_lr: Lowest rate.
        memory: What an interrupted run's plateau remembered (``None``: start afresh).
    """

    def __init__(self, monitor: str, factor: float, patience: int, min_lr: float, memory: MonitorState | None = None) -> None:
        super().__init__(monitor=monitor, factor=factor, patience=int(patience), min_lr=min_lr)
        self._memory = memory

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        super().on_train_begin(logs)
        m = self._memory
        if m is not None:
            self.wait, self.best, self.cooldown_counter = m.wait, m.best, m.cooldown
            self._memory = None

    def memory(self) -> MonitorState:
        """The memory to save after an epoch."""
        return MonitorState(wait=int(self.wait), best=_finite(self.best), cooldown=int(self.cooldown_counter))


class PipelineEpoch(keras.callbacks.Callback):  # type: ignore[misc]  # Keras ships no type information
    """Tell the training pipeline which epoch starts, so it draws that epoch's shuffling and augmentation.

    Args:
        state: The training pipeline's :class:`~neuroxai.data.PipelineState`.
    """

    def __init__(self, state: Any) -> None:
        super().__init__()
        self.state = state

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.state.set_epoch(epoch)


class ReadCheck(keras.callbacks.Callback):  # type: ignore[misc]  # Keras ships no type information
    """After each epoch, list the files the pipelines could not decode (they went bad after indexing).

    Each is reported once, as a :class:`~neuroxai.data.SkippedFile` in
    :attr:`unreadable` and a logged warning, whatever TensorFlow's own log level.

    Args:
        splits: ``(split, PipelineState, paths of the split, slices of the split)`` per pipeline read with
            files; the slices are :meth:`neuroxai.Dataset.slices` (``None`` per image file), so a dropped volume
            slice is named ``scan.nii.gz[slice 12]`` with the volume reader's reason.
    """

    def __init__(self, splits: Sequence[tuple[str, Any, Sequence[str], Sequence[Any]]]) -> None:
        super().__init__()
        self.splits = list(splits)
        self.unreadable: list[SkippedFile] = []
        self._seen: set[tuple[str, int]] = set()
        self.dropped: dict[str, int] = {split: 0 for split, *_ in self.splits}

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.check(epoch + 1)

    def check(self, epoch: int) -> None:
        """Record the files not read so far (call after a full pass)."""
        from neuroxai.data._images import probe_file
        from neuroxai.data._slices import slice_problem

        for split, state, paths, slices in self.splits:
            use = "training" if split == "train" else "validation"
            for i in state.unread():
                if (split, int(i)) in self._seen:
                    continue
                self._seen.add((split, int(i)))
                self.dropped[split] += 1
                ref = slices[int(i)]
                if ref is not None:  # a volume slice: the volume reader says why
                    path, reason = ref.name, slice_problem(ref)
                else:
                    path = str(paths[int(i)])
                    why = probe_file(path)
                    reason = why if isinstance(why, str) else "could not be decoded by the tf.data pipeline"
                text = f"{reason}; it became unreadable after indexing and was left out of {use} from epoch {epoch}"
                self.unreadable.append(SkippedFile(path, text))
                log.warning("%r: %s", path, text)


class RunRecorder(keras.callbacks.Callback):  # type: ignore[misc]  # Keras ships no type information
    """Record every epoch's values and, with a run directory, save what a restart needs after each epoch.

    The recorder owns the run's :class:`~neuroxai.runs.ResumeState`; the
    trainer reads it through :attr:`state` and changes it only through
    :meth:`start_phase` and :meth:`finish_phase`.

    Args:
        run: The run directory (``None``: record in memory only).
        state: The state to continue from.
    """

    def __init__(self, run: RunDirectory | None, state: ResumeState) -> None:
        super().__init__()
        self.run = run
        self.state = state
        self._lr: float | None = None
        self._early: ResumableEarlyStopping | None = None
        self._plateau: ResumablePlateau | None = None
        self._checkpoint: BestModelCheckpoint | None = None
        self._weights_saved: tuple[Any, str] | None = None  # (early stopping's best_weights list, its file)

    def start_phase(self, name: str, first_epoch: int) -> None:
        """A phase starts (or resumes) after ``first_epoch`` finished epochs."""
        self.state = dataclasses.replace(self.state, phase=name, phase_start=int(first_epoch))

    def track(
        self,
        early_stopping: ResumableEarlyStopping | None,
        plateau: ResumablePlateau | None,
        checkpoint: BestModelCheckpoint | None,
        best_weights_file: str | None = None,
    ) -> None:
        """The phase's callbacks whose memory is saved after every epoch (they run before the recorder)."""
        self._early, self._plateau, self._checkpoint = early_stopping, plateau, checkpoint
        restored = early_stopping._memory_weights if early_stopping is not None else None
        self._weights_saved = (restored, best_weights_file) if restored is not None and best_weights_file else None

    def finish_phase(self, record: PhaseRecord, best: float | None) -> None:
        """A phase ended: record it and save its (best-restored) weights, without optimizer state."""
        completed = (*tuple(p for p in self.state.completed if p.name != record.name), record)
        self.state = dataclasses.replace(self.state, completed=completed, best=best, phase_start=record.last_epoch)
        self._save(with_optimizer=False)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._lr = None
        with contextlib.suppress(AttributeError, TypeError, ValueError):  # the rate of this epoch (plateau cuts come at its end)
            self._lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        row: dict[str, Any] = {"epoch": epoch + 1, "phase": self.state.phase}
        if self._lr is not None:
            row["learning_rate"] = self._lr
        for k, v in (logs or {}).items():
            if k != "learning_rate":
                row[k] = float(v)
        history = {k: list(v) for k, v in self.state.history.items()}
        n = len(history.get("epoch", []))
        for k in sorted(set(history) | set(row)):
            history.setdefault(k, [None] * n).append(row.get(k))
        self.state = dataclasses.replace(self.state, epoch=epoch + 1, history=history)
        keep = self._save_callbacks(epoch + 1)
        self._save(with_optimizer=True)
        self._remove_stale(keep)

    def callback_state(self, epoch: int, best_weights: str | None) -> CallbackState:
        """The callbacks' memory after ``epoch`` finished epochs."""
        early, plateau, ckpt = self._early, self._plateau, self._checkpoint
        return CallbackState(
            epoch=int(epoch),
            phase=self.state.phase,
            checkpoint_best=ckpt.best_value if ckpt is not None else None,
            early_stopping=early.memory(best_weights) if early is not None else None,
            plateau=plateau.memory() if plateau is not None else None,
            stopped=bool(getattr(self.model, "stop_training", False)),
            rng=tuple(
                tuple(int(x) for x in np.asarray(keras.ops.convert_to_numpy(v)).reshape(-1)) for v in _rng_variables(self.model)
            ),
        )

    def _save_callbacks(self, epoch: int) -> set[str]:
        """Save the callbacks' memory for ``epoch`` (before the state naming the epoch); return the files it uses."""
        if self.run is None:
            return set()
        backup = self.run.backup_dir
        backup.mkdir(parents=True, exist_ok=True)
        weights_file = None
        early = self._early
        if early is not None and early.best_weights is not None:
            if self._weights_saved is not None and self._weights_saved[0] is early.best_weights:
                weights_file = self._weights_saved[1]
            else:  # a new best: early stopping took a new copy of the weights
                weights_file = _BEST_WEIGHTS.format(epoch=epoch)
                with atomic_path(backup / weights_file) as tmp, open(tmp, "wb") as f:
                    np.savez(f, **{f"w{i:05d}": np.asarray(w) for i, w in enumerate(early.best_weights)})  # type: ignore[arg-type]
                self._weights_saved = (early.best_weights, weights_file)
        name = _CALLBACK_STATE.format(epoch=epoch)
        write_json(backup / name, self.callback_state(epoch, weights_file).to_dict())
        return {name} | ({weights_file} if weights_file else set())

    def _remove_stale(self, keep: set[str]) -> None:
        """Delete older callback files once the state naming the new ones is saved."""
        if self.run is None or not keep:
            return
        for pattern in ("callbacks-*.json", "best-weights-*.npz"):
            for old in self.run.backup_dir.glob(pattern):
                if old.name not in keep:
                    with contextlib.suppress(OSError):
                        old.unlink()

    def _save(self, *, with_optimizer: bool) -> None:
        if self.run is not None:
            self.state = self.run.save_state(self.state, self.model, with_optimizer=with_optimizer)


class BestModelCheckpoint(keras.callbacks.ModelCheckpoint):  # type: ignore[misc]  # Keras ships no type information
    """``keras.callbacks.ModelCheckpoint(save_best_only=True)`` whose file is replaced atomically.

    Keras writes the model in place, so a crash during the save would leave a
    broken ``best.keras``; here Keras writes a temporary file beside it, which
    is renamed over the checkpoint once whole.

    Args:
        path: Destination ``.keras`` file.
        monitor: Log key, e.g. ``"val_loss"``.
        best: Best value seen so far (carried over between phases and restarts).
        saves: The model to save, when ``fit`` runs on a wrapper of it (mask-guided training); default the fitted model.
    """

    def __init__(
        self, path: Path, monitor: str = "val_loss", best: float | None = None, saves: keras.Model | None = None
    ) -> None:
        self.path = Path(path)
        self._tmp = self.path.with_name(f".{self.path.stem}.tmp.keras")
        self._saves = saves
        super().__init__(str(self._tmp), monitor=monitor, mode="min", save_best_only=True, initial_value_threshold=best)

    def set_model(self, model: keras.Model) -> None:
        super().set_model(self._saves if self._saves is not None else model)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        super().on_train_begin(logs)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        super().on_epoch_end(epoch, logs)
        if self._tmp.exists():
            os.replace(self._tmp, self.path)

    @property
    def best_value(self) -> float | None:
        """The best monitored value so far (``None`` before the first)."""
        if self.best is None:
            return None
        best = float(self.best)
        return best if math.isfinite(best) else None
