"""A run directory on disk: what a finished run holds, and the state an interrupted one resumes from.

Layout (every file written atomically: it appears whole or not at all)::

    run_dir/
      model.keras            the trained model (Keras format, loads in safe mode)
      neuroxai.json          the RunSpec: classes, input shape/range, target layer, phases, settings, data, versions
      history.csv            one row per epoch (epoch, phase, loss, accuracy, val_*, learning_rate)
      metrics.json           an EvaluationReport on the test split (plain and de-duplicated)
      confusion_matrix.png   training_curves.png
      checkpoints/best.keras the best model by validation loss so far
      logs/                  TensorBoard log
      backup/                resume state while training runs (removed when the run finishes)
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from neuroxai._io import atomic_path, save_figure, write_json, write_text
from neuroxai._records import Record
from neuroxai.data import DatasetSummary
from neuroxai.errors import ModelError

if TYPE_CHECKING:  # pragma: no cover
    import keras

    from neuroxai.runs._metrics import EvaluationReport

__all__ = [
    "MODEL_FILE",
    "RUN_FORMAT",
    "RUN_FORMAT_VERSION",
    "SPEC_FILE",
    "PhaseRecord",
    "ResumeState",
    "RunDirectory",
    "RunSpec",
    "history_to_csv",
]

MODEL_FILE = "model.keras"
SPEC_FILE = "neuroxai.json"
RUN_FORMAT = "neuroxai-run"
RUN_FORMAT_VERSION = 1
_STATE_VERSION = 2

#: One epoch's values per column: ``{"epoch": [1, 2], "phase": ["single", "single"], "loss": [...], ...}``.
History = dict[str, list[Any]]


@dataclass(frozen=True)
class PhaseRecord(Record):
    """One finished training phase.

    Attributes:
        name: ``"single"``, or ``"head"`` / ``"fine_tune"`` for two-phase transfer learning.
        first_epoch: Its first epoch (1-based; epochs count on across phases).
        last_epoch: Its last epoch run (early stopping may end a phase early).
        learning_rate: The phase's starting learning rate.
        trainable_layers: Layers trained in the phase.
        frozen_layers: Layers frozen in the phase.
    """

    name: str
    first_epoch: int
    last_epoch: int
    learning_rate: float
    trainable_layers: int
    frozen_layers: int


@dataclass(frozen=True)
class RunSpec(Record):
    """What ``neuroxai.json`` says about a trained model: enough to use it without the code that trained it.

    Attributes:
        model: Registry name of the model.
        model_source: Plugin distribution it came from (``"neuroxai"`` for built-ins).
        class_names: Classes in output order.
        input_shape: ``(height, width, channels)``.
        input_range: Pixel range the model expects.
        target_layer: Default explanation layer (``None``: found automatically).
        phases: The training phases run.
        epochs_trained: Epochs run in all phases.
        seed: The training seed.
        settings: The trainer's settings, as JSON values.
        data: The training data's :class:`~neuroxai.data.DatasetSummary` (``None`` when unknown).
        versions: Versions of neuroxai, Keras, TensorFlow, NumPy and Python.
        created: UTC time the run finished (ISO 8601).
        format: Always ``"neuroxai-run"``.
        format_version: Version of this layout.
    """

    model: str
    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]
    input_range: tuple[float, float]
    model_source: str = "user"
    target_layer: str | None = None
    phases: tuple[PhaseRecord, ...] = ()
    epochs_trained: int = 0
    seed: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    data: DatasetSummary | None = None
    versions: dict[str, str] = field(default_factory=dict)
    created: str | None = None
    format: str = RUN_FORMAT
    format_version: int = RUN_FORMAT_VERSION


@dataclass(frozen=True)
class ResumeState(Record):
    """Where an interrupted run stands (``backup/state.json``).

    Attributes:
        fingerprint: The settings that must match for a restart to continue this run.
        phase: The phase running (or last finished).
        phase_start: Epochs finished before that phase began.
        epoch: Epochs finished in all.
        history: Every finished epoch's values.
        completed: Phases that finished.
        best: Best monitored value so far (the best checkpoint's).
        weights: File in ``backup/`` holding the last epoch's weights.
        weights_has_optimizer: That file also holds the optimizer's variables.
        version: Version of this layout.
    """

    fingerprint: dict[str, Any]
    phase: str
    phase_start: int = 0
    epoch: int = 0
    history: dict[str, list[Any]] = field(default_factory=dict)
    completed: tuple[PhaseRecord, ...] = ()
    best: float | None = None
    weights: str | None = None
    weights_has_optimizer: bool = False
    version: int = _STATE_VERSION

    def completed_phase(self, name: str) -> PhaseRecord | None:
        """The record of phase ``name`` if it finished."""
        return next((p for p in self.completed if p.name == name), None)


def history_to_csv(history: Mapping[str, Sequence[Any]]) -> str:
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


class RunDirectory:
    """The files of one training run, read and written atomically.

    Args:
        path: The run directory (need not exist yet).

    Example:
        >>> run = RunDirectory("runs/cnn")
        >>> run.model_file.name, run.spec_file.name
        ('model.keras', 'neuroxai.json')
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r})"

    # ------------------------------------------------------------------ paths
    @property
    def model_file(self) -> Path:
        """``model.keras``."""
        return self.path / MODEL_FILE

    @property
    def spec_file(self) -> Path:
        """``neuroxai.json``."""
        return self.path / SPEC_FILE

    @property
    def history_file(self) -> Path:
        """``history.csv``."""
        return self.path / "history.csv"

    @property
    def metrics_file(self) -> Path:
        """``metrics.json``."""
        return self.path / "metrics.json"

    @property
    def best_file(self) -> Path:
        """``checkpoints/best.keras``."""
        return self.path / "checkpoints" / "best.keras"

    @property
    def logs_dir(self) -> Path:
        """``logs/`` (TensorBoard)."""
        return self.path / "logs"

    @property
    def backup_dir(self) -> Path:
        """``backup/``: resume state while training runs."""
        return self.path / "backup"

    # ------------------------------------------------------------------ finished run
    def read_spec(self) -> RunSpec | None:
        """The run's :class:`RunSpec`, or ``None`` when there is no ``neuroxai.json``.

        Raises:
            ModelError: The file exists but cannot be read.
        """
        if not self.spec_file.is_file():
            return None
        try:
            data = json.loads(self.spec_file.read_text(encoding="utf-8"))
            return RunSpec.from_dict(data)
        except (OSError, ValueError, TypeError) as exc:
            raise ModelError(f"Could not read {self.spec_file}: {exc}. Restore it or delete it to load the bare model.") from exc

    def read_evaluation(self) -> EvaluationReport | None:
        """The run's ``metrics.json`` as an :class:`~neuroxai.runs.EvaluationReport` (``None`` when absent)."""
        from neuroxai.runs._metrics import EvaluationReport

        if not self.metrics_file.is_file():
            return None
        return EvaluationReport.from_dict(json.loads(self.metrics_file.read_text(encoding="utf-8")))

    def write_history(self, history: Mapping[str, Sequence[Any]]) -> None:
        """Write ``history.csv``."""
        write_text(self.history_file, history_to_csv(history))

    def commit(
        self, model: keras.Model, spec: RunSpec, history: Mapping[str, Sequence[Any]], evaluation: EvaluationReport | None
    ) -> None:
        """Write the finished run: model, spec, history, figures and (when given) metrics.

        Args:
            model: The trained model.
            spec: Its :class:`RunSpec`.
            history: Per-epoch columns.
            evaluation: Test metrics, or ``None``.
        """
        from neuroxai.runs._figures import plot_confusion_matrix, plot_training_curves

        self.path.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.model_file) as tmp:
            model.save(tmp)
        write_json(self.spec_file, spec.to_dict())
        self.write_history(history)
        save_figure(plot_training_curves(history, title=f"Training: {spec.model}"), self.path / "training_curves.png")
        if evaluation is not None:
            write_json(self.metrics_file, evaluation.to_dict())
            m = evaluation.headline()
            which = "test, de-duplicated" if evaluation.dedup is not None else evaluation.split
            title = (
                f"Confusion matrix ({which}, n={m.n}, accuracy={m.accuracy:.3f})"
                if m.n and m.accuracy is not None
                else "Confusion matrix"
            )
            save_figure(
                plot_confusion_matrix(m.confusion_matrix, spec.class_names, title=title), self.path / "confusion_matrix.png"
            )

    # ------------------------------------------------------------------ resume state
    @property
    def state_file(self) -> Path:
        """``backup/state.json``."""
        return self.backup_dir / "state.json"

    def read_state(self) -> ResumeState | None:
        """The resume state of an interrupted run, or ``None`` (none, or written by another layout version)."""
        if not self.state_file.is_file():
            return None
        data = json.loads(self.state_file.read_text(encoding="utf-8"))
        if data.get("version") != _STATE_VERSION:
            return None
        return ResumeState.from_dict(data)

    def save_state(self, state: ResumeState, model: keras.Model, *, with_optimizer: bool) -> ResumeState:
        """Atomically save the model's weights (and optimizer state), then ``state``; return the state as saved.

        Weights go to ``backup/epoch-NNNN-<phase>.npz`` first, the state file
        naming them second, and older weight files are removed last, so a
        process killed at any moment leaves a consistent state behind.
        """
        import dataclasses

        self.backup_dir.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{state.epoch:04d}-{state.phase}.npz"
        _save_weights(self.backup_dir / name, model, with_optimizer)
        state = dataclasses.replace(state, weights=name, weights_has_optimizer=bool(with_optimizer))
        write_json(self.state_file, state.to_dict())
        self.write_history(state.history)
        for old in self.backup_dir.glob("epoch-*.npz"):
            if old.name != name:
                with contextlib.suppress(OSError):
                    old.unlink()
        return state

    def has_weights(self, state: ResumeState) -> bool:
        """Whether the weights file ``state`` names is there."""
        return bool(state.weights) and (self.backup_dir / str(state.weights)).is_file()

    def load_weights(self, state: ResumeState, model: keras.Model, *, with_optimizer: bool) -> None:
        """Load the weights ``state`` names into ``model`` (and the optimizer's variables if asked and saved)."""
        _load_weights(self.backup_dir / str(state.weights), model, with_optimizer=with_optimizer and state.weights_has_optimizer)

    def clear_state(self) -> None:
        """Delete the resume files (after a run finished)."""
        if not self.backup_dir.is_dir():
            return
        for f in self.backup_dir.iterdir():
            with contextlib.suppress(OSError):
                f.unlink()
        with contextlib.suppress(OSError):
            os.rmdir(self.backup_dir)


def _save_weights(path: Path, model: keras.Model, with_optimizer: bool) -> None:
    import keras

    arrays: dict[str, np.ndarray] = {f"w{i:05d}": np.asarray(w) for i, w in enumerate(model.get_weights())}
    if with_optimizer and getattr(model, "optimizer", None) is not None:
        for i, v in enumerate(model.optimizer.variables):
            arrays[f"o{i:05d}"] = np.asarray(keras.ops.convert_to_numpy(v))
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]  # numpy's stub wants positional arrays too


def _load_weights(path: Path, model: keras.Model, *, with_optimizer: bool) -> None:
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
