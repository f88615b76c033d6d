"""Callbacks of the Trainer: per-epoch resume checkpoint and atomic best-model checkpoint.

Resume is our own rather than ``keras.callbacks.BackupAndRestore`` because a
two-phase run is two ``fit`` calls with different trainable layers and
optimizers: the backup must know which phase it belongs to, a finished head
phase must not be re-run, and the history must never count an epoch twice.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import keras
import numpy as np

from neuroxai._io import atomic_path, write_json, write_text

__all__ = ["STATE_FILE", "BestCheckpoint", "RunCheckpoint", "history_to_csv", "load_weights_file", "read_state"]

STATE_FILE = "state.json"
_STATE_VERSION = 1


def history_to_csv(history: dict[str, list[Any]]) -> str:
    """Render history columns as CSV text (``epoch`` and ``phase`` first)."""
    keys = [k for k in ("epoch", "phase") if k in history] + sorted(k for k in history if k not in ("epoch", "phase"))
    n = max((len(v) for v in history.values()), default=0)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(keys)
    for i in range(n):
        row = []
        for k in keys:
            col = history[k]
            v = col[i] if i < len(col) else ""
            row.append(repr(float(v)) if isinstance(v, (float, np.floating)) else v)
        writer.writerow(row)
    return buf.getvalue()


def read_state(backup_dir: Path) -> dict[str, Any] | None:
    """The resume state in ``backup_dir``, or ``None`` when there is none."""
    path = Path(backup_dir) / STATE_FILE
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as f:
        state = json.load(f)
    if state.get("version") != _STATE_VERSION:
        return None
    return state


def save_weights_file(path: Path, model: keras.Model, with_optimizer: bool) -> None:
    """Atomically save model weights (and optimizer variables) as ``.npz``."""
    arrays: dict[str, np.ndarray] = {f"w{i:05d}": np.asarray(w) for i, w in enumerate(model.get_weights())}
    if with_optimizer and getattr(model, "optimizer", None) is not None:
        for i, v in enumerate(model.optimizer.variables):
            arrays[f"o{i:05d}"] = np.asarray(keras.ops.convert_to_numpy(v))
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def load_weights_file(path: Path, model: keras.Model, with_optimizer: bool) -> None:
    """Load a file written by :func:`save_weights_file` (optimizer variables too if asked)."""
    with np.load(path) as data:
        weights = [data[k] for k in sorted(k for k in data.files if k.startswith("w"))]
        opt = [data[k] for k in sorted(k for k in data.files if k.startswith("o"))]
    model.set_weights(weights)
    if with_optimizer and opt:
        optimizer = model.optimizer
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        if len(optimizer.variables) == len(opt):
            for var, value in zip(optimizer.variables, opt):
                var.assign(value)


class RunCheckpoint(keras.callbacks.Callback):
    """Record the history of every epoch and, with a run folder, atomically save what a restart needs.

    Writes ``backup/epoch-NNNN.npz`` (model weights and optimizer state),
    then ``backup/state.json`` (phase, last finished epoch, history), then
    ``history.csv``; older weight files are removed afterwards. A process
    killed at any moment leaves a consistent last state behind.
    """

    def __init__(self, run_dir: Path | None, trainer_state: dict[str, Any]) -> None:
        super().__init__()
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.backup_dir = self.run_dir / "backup" if self.run_dir is not None else None
        self.state = trainer_state  # shared with the Trainer: phase, history, fingerprint ...

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._lr = None
        with contextlib.suppress(Exception):  # the rate used during this epoch (plateau reductions come at its end)
            self._lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = dict(logs or {})
        hist = self.state["history"]
        row = {"epoch": epoch + 1, "phase": self.state["phase"]}
        if getattr(self, "_lr", None) is not None:
            row["learning_rate"] = self._lr
        for k, v in logs.items():
            if k != "learning_rate":
                row[k] = float(v)
        n = len(hist.get("epoch", []))
        for k in sorted(set(hist) | set(row)):
            hist.setdefault(k, [None] * n).append(row.get(k))
        self.state["epoch"] = epoch + 1
        self.save(with_optimizer=True)

    def save(self, *, with_optimizer: bool) -> None:
        """Write weights, state and history.csv for the current epoch (nothing without a run folder)."""
        if self.run_dir is None or self.backup_dir is None:
            return
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{self.state['epoch']:04d}-{self.state['phase']}.npz"
        save_weights_file(self.backup_dir / name, self.model, with_optimizer)
        self.state["weights"] = name
        self.state["weights_has_optimizer"] = bool(with_optimizer)
        write_json(self.backup_dir / STATE_FILE, {"version": _STATE_VERSION, **self.state})
        write_text(self.run_dir / "history.csv", history_to_csv(self.state["history"]))
        for old in self.backup_dir.glob("epoch-*.npz"):
            if old.name != name:
                with contextlib.suppress(OSError):
                    old.unlink()


class BestCheckpoint(keras.callbacks.Callback):
    """Atomically save the whole model whenever the monitored value improves.

    Args:
        path: Destination ``.keras`` file.
        monitor: Log key, e.g. ``"val_loss"``.
        mode: ``"min"`` or ``"max"``.
        best: Best value seen so far (carried over between phases and restarts).
    """

    def __init__(self, path: Path, monitor: str = "val_loss", mode: str = "min", best: float | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.monitor = monitor
        self.mode = mode
        self.best = best

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        value = float(value)
        better = self.best is None or (value < self.best if self.mode == "min" else value > self.best)
        if better and np.isfinite(value):
            self.best = value
            with atomic_path(self.path) as tmp:
                self.model.save(tmp)


def remove_backup(backup_dir: Path) -> None:
    """Delete the resume files after a run finished."""
    backup_dir = Path(backup_dir)
    if not backup_dir.is_dir():
        return
    for f in backup_dir.iterdir():
        with contextlib.suppress(OSError):
            f.unlink()
    with contextlib.suppress(OSError):
        os.rmdir(backup_dir)
