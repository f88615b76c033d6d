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
      .neuroxai.lock         while a process writes the run: its pid, host and start time
      .staging/              while the final files are committed (see below)

A run directory is a small transaction. One process writes it at a time
(the lock; a lock left by a dead process is taken over). The final files
(model, spec, history, metrics, figures) are first written to ``.staging/``;
writing ``.staging/COMMIT`` is the commit point, after which they are moved
into place and ``.staging/`` removed. A process killed before the commit
point leaves the earlier state (no run, or the earlier run) and its staging
folder is deleted on the next start; one killed after it has its commit
completed by the next start or the next reader, so a reader never sees a
model of one run beside the spec of another.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import io
import json
import logging
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from neuroxai._io import (
    LOCK_FILE,
    _jsonable,
    atomic_path,
    check_not_input,
    check_writable_dir,
    display_path,
    remove_temp_files,
    save_figure,
    write_json,
    write_text,
)
from neuroxai._records import Record
from neuroxai.data import DatasetSummary
from neuroxai.errors import ModelError, NeuroxaiError, OutputError, RunBusyError, RunError, RunSettingsError
from neuroxai.runs._calibration import Calibration
from neuroxai.runs._ood import OODDetector

if TYPE_CHECKING:  # pragma: no cover
    import keras

    from neuroxai.runs._metrics import EvaluationReport

__all__ = [
    "LOCK_FILE",
    "MODEL_FILE",
    "RUN_FORMAT",
    "RUN_FORMAT_VERSION",
    "SPEC_FILE",
    "PhaseRecord",
    "ResumeState",
    "RunDirectory",
    "RunSpec",
    "data_inputs",
    "history_to_csv",
]

log = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
SPEC_FILE = "neuroxai.json"
RUN_FORMAT = "neuroxai-run"
RUN_FORMAT_VERSION = 1
_STATE_VERSION = 2
STAGING_DIR = ".staging"
COMMIT_FILE = "COMMIT"
#: The files and folders a run directory may hold (a folder holding others is not treated as a run).
RUN_ENTRIES = (
    MODEL_FILE,
    SPEC_FILE,
    "history.csv",
    "metrics.json",
    "confusion_matrix.png",
    "training_curves.png",
    "checkpoints",
    "logs",
    "backup",
)

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
        versions: Versions of neuroxai, Keras, TensorFlow, NumPy and Python, and the Keras backend the run
            was trained on (``keras_backend``; with that backend's own version when it is not TensorFlow).
        created: UTC time the run finished (ISO 8601).
        calibration: Temperature and conformal scores fitted on the validation split
            (:class:`~neuroxai.runs.Calibration`; ``None`` for a run without one, e.g.
            trained before neuroxai calibrated runs: ``neuroxai calibrate`` adds it).
        ood: The out-of-distribution score and its threshold (:class:`~neuroxai.runs.OODDetector`, fitted on the
            training split, threshold on the validation split; ``None`` for a run without one: ``neuroxai calibrate``
            adds it).
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
    calibration: Calibration | None = None
    ood: OODDetector | None = None
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
        self._overwrite = False

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r})"

    # ------------------------------------------------------------------ what the folder holds
    @property
    def lock_file(self) -> Path:
        """``.neuroxai.lock``: present while a process writes the run."""
        return self.path / LOCK_FILE

    @property
    def staging_dir(self) -> Path:
        """``.staging/``: the final files of a commit in progress."""
        return self.path / STAGING_DIR

    def is_run(self) -> bool:
        """Whether the folder holds (part of) a neuroxai run: a spec, model, resume state, checkpoint, lock or commit."""
        return any(
            p.exists()
            for p in (self.spec_file, self.model_file, self.backup_dir, self.best_file, self.lock_file, self.staging_dir)
        )

    def commit_pending(self) -> bool:
        """Whether a commit passed its commit point but its files were not all moved into place (the writer was killed)."""
        return (self.staging_dir / COMMIT_FILE).is_file()

    def is_finished(self) -> bool:
        """Whether the folder holds a committed run with no interrupted training on top of it."""
        committed = self.commit_pending() or (self.spec_file.is_file() and self.model_file.is_file())
        return committed and not self.state_file.is_file()

    # ------------------------------------------------------------------ one writer at a time
    def lock_owner(self) -> dict[str, Any] | None:
        """What the lock file says about the process writing the run (``pid``, ``host``, ``started``), or ``None``."""
        return _read_lock(self.lock_file)

    def _busy_message(self, owner: Mapping[str, Any]) -> str:
        return (
            f"{display_path(self.path)} is being written by another process (pid {owner.get('pid')} on "
            f"{owner.get('host')}, since {owner.get('started')}). Wait for it to finish or use another output folder; "
            f"if that process is gone, delete {display_path(self.lock_file)}."
        )

    def acquire(self) -> None:
        """Take the run's lock (re-entrant within this process).

        Raises:
            RunBusyError: Another live process holds it.
            OutputError: The folder cannot be written.
        """
        key = _key(self.path)
        with _HELD_GUARD:
            if key in _HELD:
                count, token = _HELD[key]
                _HELD[key] = (count + 1, token)
                return
        check_writable_dir(self.path, flag="run directory")
        token = uuid.uuid4().hex
        for _ in range(5):
            if _create_lock(self.lock_file, token):
                with _HELD_GUARD:
                    _HELD[key] = (1, token)
                return
            owner = self.lock_owner()
            if owner is not None and _owner_alive(owner) is not False:
                raise RunBusyError(self._busy_message(owner))
            _take_over_stale(self.lock_file, owner)
            log.warning(
                "Took over the lock of %s left by a process that is gone (%s)", display_path(self.path), owner or "unreadable"
            )
        raise RunBusyError(f"Could not take the lock {display_path(self.lock_file)}: other processes keep taking it.")

    def release(self) -> None:
        """Release the lock taken by :meth:`acquire` (the last release removes the lock file)."""
        key = _key(self.path)
        with _HELD_GUARD:
            if key not in _HELD:
                return
            count, token = _HELD[key]
            if count > 1:
                _HELD[key] = (count - 1, token)
                return
            del _HELD[key]
        owner = self.lock_owner()
        if owner is not None and owner.get("token") == token:
            with contextlib.suppress(OSError):
                self.lock_file.unlink()

    @contextlib.contextmanager
    def locked(self) -> Iterator[RunDirectory]:
        """Hold the lock for the ``with`` block."""
        self.acquire()
        try:
            yield self
        finally:
            self.release()

    # ------------------------------------------------------------------ starting a run
    def check(self, *, inputs: Iterable[str | os.PathLike[str]] = (), overwrite: bool = False, flag: str = "--out") -> None:
        """Refuse early (before any data is read) what :meth:`writing` would refuse.

        Args:
            inputs: Data files and folders the run directory must not be or lie in.
            overwrite: Whether a finished run there may be replaced.
            flag: How the user gave the folder (named in messages).

        Raises:
            OutputError: The path is a file, an input or inside one, holds files of something else, or is not writable.
            RunBusyError: Another live process writes the run.
            RunError: It holds a finished run and ``overwrite`` is false.
        """
        shown = display_path(self.path)
        if self.path.exists() and not self.path.is_dir():
            raise OutputError(f"{flag} {shown} is a file; expected a run directory (a new folder, or an earlier run).")
        check_not_input(self.path, inputs, flag=flag, names=RUN_ENTRIES)
        if self.path.is_dir() and not self.is_run():
            clashes = [n for n in RUN_ENTRIES if (self.path / n).exists()]
            if clashes:
                raise OutputError(
                    f"{flag} {shown} holds {clashes[0]!r}, which neuroxai did not write; refusing to replace it. "
                    "Choose a new or empty folder."
                )
        owner = self.lock_owner()
        if owner is not None and _key(self.path) not in _HELD and _owner_alive(owner):
            raise RunBusyError(self._busy_message(owner))
        if self.is_finished() and not overwrite:
            raise RunError(self._finished_message(flag))
        created = _missing_parents(self.path)
        check_writable_dir(self.path, flag=flag)
        _remove_empty(created)  # a check leaves no trace: a command refused later leaves no empty --out behind

    def _finished_message(self, flag: str) -> str:
        return (
            f"{display_path(self.path)} already holds a finished run; training again would replace it. "
            f"Use another {flag}, or add --overwrite (overwrite=True) to replace it."
        )

    @contextlib.contextmanager
    def writing(
        self, *, inputs: Iterable[str | os.PathLike[str]] = (), overwrite: bool = False, flag: str = "out_dir"
    ) -> Iterator[RunDirectory]:
        """Hold the run for a training process: check, lock, finish or discard what a killed writer left.

        Inside the block, :meth:`resume_state` gives the state to continue from
        (or ``None`` to start afresh: always with ``overwrite``).

        Args:
            inputs: Data files and folders the run directory must not be or lie in.
            overwrite: Replace a finished run (its files stay readable until the new run commits).
            flag: How the caller gave the folder (named in messages).

        Raises:
            OutputError, RunBusyError, RunError: See :meth:`check`.
        """
        inputs = list(inputs)
        self.check(inputs=inputs, overwrite=overwrite, flag=flag)
        created = _missing_parents(self.path)
        try:
            with self.locked():
                self.recover()
                for stale in remove_temp_files(self.path, recursive=True):
                    log.info("Removed %s, left by an interrupted write", display_path(stale))
                if self.is_finished() and not overwrite:  # again, under the lock
                    raise RunError(self._finished_message(flag))
                self._overwrite = bool(overwrite)
                try:
                    yield self
                finally:
                    self._overwrite = False
        except BaseException:
            _remove_empty(created)  # refused or failed before writing anything (a bad --image-size): no empty folder left
            raise

    def recover(self) -> None:
        """Finish a commit a killed writer passed the commit point of; delete an unfinished one (needs the lock)."""
        if not self.staging_dir.exists():
            return
        if self.commit_pending():
            log.info("Completing the interrupted commit of %s", display_path(self.path))
            self._roll_forward()
        else:
            shutil.rmtree(self.staging_dir, ignore_errors=True)

    def _roll_forward(self) -> None:
        marker = self.staging_dir / COMMIT_FILE
        plan = json.loads(marker.read_text(encoding="utf-8"))
        for name in plan.get("files", []):
            staged = self.staging_dir / name
            if staged.exists():
                os.replace(staged, self.path / name)
        for name in plan.get("delete", []):
            with contextlib.suppress(FileNotFoundError):
                (self.path / name).unlink()
        marker.unlink()
        shutil.rmtree(self.staging_dir, ignore_errors=True)

    def ready_for_reading(self, timeout: float = 30.0) -> None:
        """Make sure no commit is half-done before reading the run: wait for a live writer's, complete a dead one's.

        Raises:
            RunBusyError: A live writer's commit did not finish within ``timeout`` seconds.
            RunError: A dead writer's commit cannot be completed here (e.g. a read-only folder).
        """
        deadline = time.monotonic() + timeout
        while self.commit_pending():
            owner = self.lock_owner()
            if owner is not None and _key(self.path) not in _HELD and _owner_alive(owner) is not False:
                if time.monotonic() > deadline:
                    raise RunBusyError(self._busy_message(owner))
                time.sleep(0.05)
                continue
            try:
                with self.locked():
                    self.recover()
            except RunBusyError:
                continue
            except (OSError, ValueError) as exc:
                raise RunError(
                    f"{display_path(self.path)} was interrupted while saving its final files and cannot be completed "
                    f"here ({exc}). Run the training command again in a writable copy to finish it."
                ) from exc

    def snapshot(self) -> tuple[tuple[int, int, int] | None, ...]:
        """Identity (inode, mtime, size) of the model and spec files: equal before and after a read means no commit in between."""

        def ident(p: Path) -> tuple[int, int, int] | None:
            try:
                st = p.stat()
            except OSError:
                return None
            return (st.st_ino, st.st_mtime_ns, st.st_size)

        return (ident(self.model_file), ident(self.spec_file))

    def resume_state(self, fingerprint: Mapping[str, Any], *, resume: bool = True) -> ResumeState | None:
        """The interrupted run to continue, or ``None`` to start afresh (stale resume files, checkpoints and logs removed).

        Args:
            fingerprint: The settings that decide the outcome; an interrupted run resumes only with equal ones.
            resume: ``False`` always starts afresh (as :meth:`writing` with ``overwrite`` does).

        Raises:
            RunSettingsError: The folder holds an interrupted run started with other settings.
            RunError: Its resume state is damaged.
        """
        state = None if (self._overwrite or not resume) else self.read_state()
        if state is None:
            self.clear_state()
            with contextlib.suppress(OSError):
                self.best_file.unlink()
            shutil.rmtree(self.logs_dir, ignore_errors=True)
            return None
        wanted = json.loads(json.dumps(_jsonable(dict(fingerprint))))
        found = json.loads(json.dumps(_jsonable(dict(state.fingerprint))))
        if wanted != found:
            keys = sorted(k for k in set(wanted) | set(found) if wanted.get(k) != found.get(k))
            diff = "; ".join(f"{k}: {found.get(k)!r} there, {wanted.get(k)!r} now" for k in keys)
            raise RunSettingsError(
                f"{display_path(self.state_file)} holds an interrupted run with other settings ({diff}). Resume it with "
                f"the settings it was started with, use another output folder, or start it over with --overwrite "
                "(overwrite=True)."
            )
        return state

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
        shown = display_path(self.spec_file)
        try:
            data = json.loads(self.spec_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"Could not read {shown}: {exc}. Restore the file `neuroxai train` wrote (or train the run again)."
            ) from exc
        check_spec_data(data, shown)
        try:
            return RunSpec.from_dict(data)
        except (NeuroxaiError, ValueError, TypeError) as exc:
            raise ModelError(
                f"{shown} has a bad value: {exc}. Restore the file `neuroxai train` wrote (or train the run again)."
            ) from exc

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

        with self.locked():
            self.recover()
            stage = self.path / STAGING_DIR
            shutil.rmtree(stage, ignore_errors=True)
            stage.mkdir(parents=True)
            with atomic_path(stage / MODEL_FILE) as tmp:
                model.save(tmp)
            write_json(stage / SPEC_FILE, spec.to_dict())
            write_text(stage / "history.csv", history_to_csv(history))
            save_figure(plot_training_curves(history, title=f"Training: {spec.model}"), stage / "training_curves.png")
            files = [MODEL_FILE, SPEC_FILE, "history.csv", "training_curves.png"]
            if evaluation is not None:
                write_json(stage / "metrics.json", evaluation.to_dict())
                m = evaluation.headline()
                which = "test, de-duplicated" if evaluation.dedup is not None else evaluation.split
                title = (
                    f"Confusion matrix ({which}, n={m.n}, accuracy={m.accuracy:.3f})"
                    if m.n and m.accuracy is not None
                    else "Confusion matrix"
                )
                save_figure(
                    plot_confusion_matrix(m.confusion_matrix, spec.class_names, title=title), stage / "confusion_matrix.png"
                )
                files += ["metrics.json", "confusion_matrix.png"]
            stale = [n for n in ("metrics.json", "confusion_matrix.png") if n not in files]
            _fsync_files([stage / f for f in files])
            write_json(stage / COMMIT_FILE, {"files": files, "delete": stale})  # the commit point
            _fsync_files([stage / COMMIT_FILE])
            self._roll_forward()

    # ------------------------------------------------------------------ resume state
    @property
    def state_file(self) -> Path:
        """``backup/state.json``."""
        return self.backup_dir / "state.json"

    def read_state(self) -> ResumeState | None:
        """The resume state of an interrupted run, or ``None`` (none, or written by another layout version)."""
        if not self.state_file.is_file():
            return None
        fix = (
            f"Delete {display_path(self.backup_dir)} to start this run over (or train with --overwrite / "
            "fit(..., overwrite=True))."
        )
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RunError(f"The resume state {display_path(self.state_file)} is damaged ({exc}). {fix}") from exc
        if not isinstance(data, dict):
            raise RunError(f"The resume state {display_path(self.state_file)} is not a JSON object. {fix}")
        if data.get("version") != _STATE_VERSION:
            return None
        try:
            return ResumeState.from_dict(data)
        except (NeuroxaiError, ValueError, TypeError) as exc:
            raise RunError(f"The resume state {display_path(self.state_file)} is damaged ({exc}). {fix}") from exc

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


# ---------------------------------------------------------------------------------------------------- spec files
def check_spec_data(data: Any, where: str) -> None:
    """Check what ``neuroxai.json`` holds before it becomes a :class:`RunSpec`.

    Raises:
        ModelError: Not a JSON object, or a field with a bad value; the message names the file, the field and the fix.
    """
    from neuroxai.models import validate_input_range, validate_input_shape

    fix = "Restore the file `neuroxai train` wrote (or train the run again)."
    if not isinstance(data, dict):
        kind = {type(None): "null", list: "list", str: "string", bool: "boolean"}.get(type(data), "number")
        raise ModelError(f"{where} must hold a JSON object (a run's spec), but holds a {kind}. {fix}")

    def bad(field: str, expected: str) -> ModelError:
        return ModelError(f"{where}: {field} must be {expected}; got {data.get(field)!r}. {fix}")

    fmt = data.get("format", RUN_FORMAT)
    if fmt != RUN_FORMAT:
        raise bad("format", repr(RUN_FORMAT))
    version = data.get("format_version", RUN_FORMAT_VERSION)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise bad("format_version", "a positive integer")
    if version > RUN_FORMAT_VERSION:
        raise ModelError(
            f"{where} was written by a newer neuroxai (run format {version}; this one reads {RUN_FORMAT_VERSION}). "
            "Upgrade neuroxai to load it."
        )
    if not isinstance(data.get("model"), str) or not data.get("model"):
        raise bad("model", "the model's name")
    names = data.get("class_names")
    if (
        not isinstance(names, list)
        or not names
        or not all(isinstance(n, str) and n for n in names)
        or len(set(names)) != len(names)
    ):
        raise bad("class_names", "a list of distinct class names")
    for key in ("input_shape", "input_range"):
        if key not in data:
            raise ModelError(f"{where} lacks {key}. {fix}")
    try:
        validate_input_shape(data["input_shape"])
        validate_input_range(data["input_range"], where=f"input_range in {where}")
    except ModelError as exc:
        raise ModelError(f"{where}: {exc} {fix}") from None
    layer = data.get("target_layer")
    if layer is not None and not (isinstance(layer, str) or (isinstance(layer, list) and all(isinstance(v, str) for v in layer))):
        raise bad("target_layer", "a layer name or null")
    for key, wanted, expected in (
        ("epochs_trained", int, "a whole number"),
        ("seed", int, "a whole number or null"),
        ("settings", dict, "an object"),
        ("versions", dict, "an object"),
        ("phases", list, "a list"),
    ):
        value = data.get(key)
        if value is not None and (not isinstance(value, wanted) or isinstance(value, bool)):
            raise bad(key, expected)
    if isinstance(data.get("epochs_trained"), int) and data["epochs_trained"] < 0:
        raise bad("epochs_trained", "zero or more")


def check_spec_against_model(spec: RunSpec, model: Any, *, spec_file: Path, model_file: Path) -> None:
    """Refuse a spec that disagrees with its model: class count, input shape, or a registered model's input range.

    Raises:
        ModelError: Naming both files and the fix.
    """
    where = display_path(spec_file)
    fix = "Restore the neuroxai.json written with this model (or train the run again)."
    k = int(model.outputs[0].shape[-1])
    if len(spec.class_names) != k and not (k == 1 and len(spec.class_names) == 2):  # one unit: a binary head's two classes
        raise ModelError(f"{where} lists {len(spec.class_names)} classes but the model {model_file} has {k} outputs. {fix}")
    try:
        taken = tuple(model.input_shape[1:])
    except (AttributeError, ValueError):  # several inputs: nothing to compare
        taken = ()
    if len(taken) == 3 and any(d is not None and int(d) != s for d, s in zip(taken, spec.input_shape)):
        shown = tuple("any" if d is None else int(d) for d in taken)
        raise ModelError(
            f"{where} says input_shape {list(spec.input_shape)} but the model {model_file} takes {list(shown)}. {fix}"
        )
    if spec.model_source == "user":
        return
    try:
        from neuroxai.models import ModelRegistry

        registered = ModelRegistry().get(spec.model)
    except (NeuroxaiError, ImportError):  # a plugin model not installed here: nothing to compare with
        return
    if registered.source == spec.model_source and tuple(registered.input_range) != tuple(spec.input_range):
        raise ModelError(
            f"{where} says input_range {list(spec.input_range)} but model {spec.model!r} expects "
            f"{list(registered.input_range)}; its predictions would be wrong. {fix}"
        )


def data_inputs(dataset: Any) -> list[Path]:
    """The files and folders a dataset reads (its root or manifest, every image and mask): what a run must not write to."""
    found: list[Path] = []
    source = getattr(dataset, "source", None)
    if isinstance(source, (str, os.PathLike)) and os.path.exists(source):
        found.append(Path(source))
    for split in ("train", "val", "test"):
        with contextlib.suppress(Exception):  # arrays-only datasets have no files
            found += [Path(p) for p in dataset.paths(split) if p]
            found += [Path(p) for p in dataset.mask_paths(split) if p]
    return found


# ---------------------------------------------------------------------------------------------------- lock files
#: Runs this process holds: resolved path -> (re-entry count, lock token).
_HELD: dict[str, tuple[int, str]] = {}
_HELD_GUARD = threading.Lock()


def _missing_parents(path: Path) -> list[Path]:
    """``path`` and those of its parents that do not exist yet, deepest first (what creating it would create)."""
    missing: list[Path] = []
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    return missing


def _remove_empty(folders: Sequence[Path]) -> None:
    """Remove the folders (deepest first) that are empty: those a refused command created and left unused."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (it holds something now), or already gone
            return


def _key(path: Path) -> str:
    return os.path.realpath(os.path.abspath(path))


def _process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (Linux ``/proc``), which tells a reused pid from the original."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def _lock_text(token: str) -> str:
    pid = os.getpid()
    info = {
        "pid": pid,
        "host": socket.gethostname(),
        "process_start": _process_start(pid),
        "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "token": token,
    }
    return json.dumps(info) + "\n"


def _read_lock(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _owner_alive(owner: Mapping[str, Any]) -> bool | None:
    """Whether the lock's process still runs: ``False`` (gone), ``True`` (alive) or ``None`` (another host: cannot tell)."""
    if owner.get("host") != socket.gethostname():
        return None
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():
        return False  # our pid, but this process does not hold the run: a previous process with a reused pid
    if os.name == "nt":  # pragma: no cover - os.kill(pid, 0) would end the process on Windows
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    started = _process_start(pid)
    return started is None or owner.get("process_start") in (None, started)  # else the pid was reused by another process


def _create_lock(path: Path, token: str) -> bool:
    """Create the lock file with its content in one step; ``False`` when it exists."""
    tmp = path.with_name(f".{path.name}.{token}.tmp")
    tmp.write_text(_lock_text(token), encoding="utf-8")
    try:
        os.link(tmp, path)  # atomic, fails when the lock exists, and the lock is never seen half-written
        return True
    except FileExistsError:
        return False
    except OSError:  # pragma: no cover - file systems without hard links
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(tmp.read_text(encoding="utf-8"))
        return True
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _take_over_stale(path: Path, owner: Mapping[str, Any] | None) -> None:
    """Remove a stale lock, unless another process replaced it meanwhile (then it is put back)."""
    aside = path.with_name(f"{path.name}.stale-{uuid.uuid4().hex}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    if _read_lock(aside) != (dict(owner) if owner is not None else None):  # not the one we judged: give it back
        with contextlib.suppress(OSError):
            os.link(aside, path)
    with contextlib.suppress(OSError):
        aside.unlink()


def _fsync_files(paths: Iterable[Path]) -> None:
    """Flush files (and their folder) to disk, so a commit point never precedes the data it commits."""
    folders = set()
    for p in paths:
        with contextlib.suppress(OSError), open(p, "rb") as f:
            os.fsync(f.fileno())
        folders.add(p.parent)
    if os.name != "nt":
        for d in folders:
            with contextlib.suppress(OSError):
                fd = os.open(d, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
