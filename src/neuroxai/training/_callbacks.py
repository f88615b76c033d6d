"""Callbacks of the Trainer: the run recorder (history and resume state), an atomic best-model checkpoint, cosine decay.

Resume is our own rather than ``keras.callbacks.BackupAndRestore`` because a
two-phase run is two ``fit`` calls with different trainable layers and
optimizers: the backup must know which phase it belongs to, a finished head
phase must not be re-run, and the history must never count an epoch twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras

from neuroxai.runs import PhaseRecord, ResumeState, RunDirectory

__all__ = ["BestModelCheckpoint", "RunRecorder", "cosine_schedule"]


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

    def start_phase(self, name: str, first_epoch: int) -> None:
        """A phase starts (or resumes) after ``first_epoch`` finished epochs."""
        self.state = dataclasses.replace(self.state, phase=name, phase_start=int(first_epoch))

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
        self._save(with_optimizer=True)

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
