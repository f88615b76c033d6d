"""Atomic file writes, and the one place that decides whether an output path is safe.

Each writer writes to a temporary file in the destination folder and then
renames it over the destination (``os.replace`` is atomic on POSIX and
Windows when both paths are on one file system); a failed write raises
:class:`~neuroxai.errors.OutputError` naming the file.

Outputs never touch inputs: :func:`prepare_output_file` and
:func:`prepare_output_dir` refuse an output path that is, or is inside, an
input (a data folder, a scanned folder, a listed file), refuse to replace a
file neuroxai did not write, replace an earlier output only when asked
(``overwrite``), and check that the destination can be written before any
long work starts. Output folders get a small marker file
(:data:`OUTPUT_MARKER`) so a later run knows they hold neuroxai's outputs.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from neuroxai.errors import OutputError

__all__ = [
    "LOCK_FILE",
    "MIN_FREE_BYTES",
    "OUTPUT_MARKER",
    "OutputFolder",
    "atomic_path",
    "check_not_input",
    "check_writable_dir",
    "csv_cell",
    "csv_text",
    "display_path",
    "is_output_dir",
    "is_temp_file",
    "prepare_output_dir",
    "prepare_output_file",
    "printable",
    "remove_temp_files",
    "save_figure",
    "write_bytes",
    "write_json",
    "write_text",
]

#: Marker file neuroxai leaves in the output folders it creates (which command wrote them, which files).
OUTPUT_MARKER = ".neuroxai-output.json"
#: Lock file of a run directory being written (see :class:`neuroxai.runs.RunDirectory`).
LOCK_FILE = ".neuroxai.lock"
#: An output folder with less free space than this is refused before the work starts.
MIN_FREE_BYTES = 1 << 20


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: Read once at import: os.umask can only be read by setting it, which is not thread-safe later on.
_UMASK = _current_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` on success.

    The temporary file keeps the destination's suffix, so writers that pick a
    format from the extension (Keras, matplotlib, PIL) still work. On an
    exception the temporary file is removed and ``path`` is left untouched.
    """
    dest = Path(path)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.stem}.", suffix=f".tmp{dest.suffix}", dir=dest.parent)
    except OSError as exc:
        raise OutputError(
            f"Could not write {display_path(dest)}: {exc.strerror or exc}. Check that {display_path(dest.parent)} is a "
            "writable folder with free space, or write somewhere else."
        ) from exc
    # mkstemp creates the file private (0600); give it the mode a plain open() would.
    if hasattr(os, "fchmod"):  # POSIX
        os.fchmod(fd, 0o666 & ~_UMASK)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, dest)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise OutputError(
                f"Could not write {display_path(dest)}: {exc.strerror or exc}. "
                "Check the free space and permissions there, or write somewhere else."
            ) from exc
        raise


def _write(path: str | os.PathLike[str], writer: Callable[[Path], object]) -> Path:
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Atomically write ``data`` to ``path``."""
    return _write(path, lambda tmp: tmp.write_bytes(data))


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Atomically write UTF-8 ``text`` to ``path``."""
    return _write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON (NaN written as ``null``)."""
    return write_text(path, json.dumps(_jsonable(obj), indent=2, sort_keys=False, allow_nan=False) + "\n")


def save_figure(fig: Any, path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Atomically save a matplotlib figure; the format comes from the suffix."""
    kwargs.setdefault("dpi", 120)
    kwargs.setdefault("bbox_inches", "tight")
    return _write(path, lambda tmp: fig.savefig(tmp, **kwargs))


def _jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, paths and tuples to JSON types; NaN/inf to None."""
    import math

    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "tolist") and hasattr(obj, "dtype"):  # numpy array or scalar
        return _jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


# ---------------------------------------------------------------------------------------------------- messages and CSV
def display_path(path: str | os.PathLike[str]) -> str:
    """``path`` for a message: as it is, or as ``repr`` where it holds control characters (a newline cannot forge a line).

    Control characters include the invisible formatting marks (the right-to-left override U+202E turns
    ``gpj.exe`` into what looks like ``exe.jpg``): any character that is not printable is shown escaped.
    """
    text = os.fspath(path)
    if not text.isprintable():
        return repr(text)
    return text


def printable(text: object) -> str:
    """``text`` with every non-printable character escaped (``\\n``, ``\\x1b``, ``\\u202e``), for names shown to people.

    Unlike :func:`display_path` it adds no quotes: for class names in tables and reports.

    Example:
        >>> print(printable("glioma" + chr(0x202E) + "gpj"))
        glioma\\u202egpj
    """
    value = str(text)
    if value.isprintable():
        return value
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in value)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run: text starting with ``= + - @`` (or a tab / carriage return) gets a ``'`` first.

    Numbers (and text that reads as a number, such as ``-0.5``) are left alone.
    """
    if not isinstance(value, str) or not value.startswith(_FORMULA_START):
        return value
    try:
        float(value)
    except ValueError:
        return "'" + value
    return value


def csv_text(rows: Iterable[Sequence[Any]]) -> str:
    """Rows as CSV text (``\\n`` line ends), every text cell passed through :func:`csv_cell`."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------------- stale temporary files
def is_temp_file(name: str) -> bool:
    """Whether ``name`` is a temporary file :func:`atomic_path` makes (``.<stem>.<random>.tmp<suffix>``)."""
    if not name.startswith("."):
        return False
    head, sep, _suffix = name.rpartition(".tmp")
    return bool(sep) and (_suffix == "" or _suffix.startswith(".")) and head.count(".") >= 2


def remove_temp_files(folder: str | os.PathLike[str], *, recursive: bool = False) -> list[Path]:
    """Delete temporary files a killed writer left in ``folder``; returns them.

    Only call this while no other process writes there (a run directory's lock held).
    """
    base = Path(folder)
    if not base.is_dir():
        return []
    found = base.rglob(".*") if recursive else base.glob(".*")
    removed: list[Path] = []
    for f in found:
        if f.is_file() and not f.is_symlink() and is_temp_file(f.name):
            with contextlib.suppress(OSError):
                f.unlink()
                removed.append(f)
    return removed


# ---------------------------------------------------------------------------------------------------- output safety
def _resolve(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.realpath(os.path.abspath(os.fspath(path))))


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_not_input(
    out: str | os.PathLike[str],
    inputs: Iterable[str | os.PathLike[str]],
    *,
    flag: str = "--out",
    names: Iterable[str] = (),
) -> None:
    """Refuse an output path that is, or is inside, an input.

    Args:
        out: The output file or folder.
        inputs: Input files and folders (data roots, scanned folders, listed files, a model file).
        flag: How the user gave ``out`` (named in the message).
        names: Files the command writes inside the output folder ``out``; none may be an input either.

    Raises:
        OutputError: ``out`` is an input, lies inside an input folder, or one of ``out/name`` is an input file.
    """
    target = _resolve(out)
    written = {_resolve(target / n) for n in names}
    for item in inputs:
        src = _resolve(item)
        shown = display_path(item)
        if target == src:
            raise OutputError(
                f"{flag} {display_path(out)} is an input ({shown}); writing there would replace it. Choose a new output path."
            )
        if _within(target, src) and src.is_dir():
            raise OutputError(
                f"{flag} {display_path(out)} is inside the input folder {shown}; its files would be mixed into the input. "
                "Choose an output path outside it."
            )
        if src in written:
            raise OutputError(f"{flag} {display_path(out)} would replace the input file {shown}. Choose another output folder.")


def check_writable_dir(folder: str | os.PathLike[str], *, flag: str = "--out", min_free: int = MIN_FREE_BYTES) -> Path:
    """Create ``folder`` if needed and check a file can be written there and that it has ``min_free`` bytes free.

    Raises:
        OutputError: The folder cannot be created or written (read-only, no permission, a file in the way) or is full.
    """
    path = Path(folder)
    shown = display_path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".neuroxai-probe.", suffix=".tmp", dir=path)
        try:
            os.write(fd, b"x")
        finally:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OutputError(
            f"{flag} {shown} cannot be written ({reason}). Choose a writable folder (check permissions and free space)."
        ) from exc
    try:
        free = shutil.disk_usage(path).free
    except OSError:  # pragma: no cover - some file systems do not report it
        return path
    if free < min_free:
        raise OutputError(f"{flag} {shown} has only {free} bytes free; free some space or choose another disk.")
    return path


def prepare_output_file(
    path: str | os.PathLike[str],
    *,
    inputs: Iterable[str | os.PathLike[str]] = (),
    overwrite: bool = False,
    ours: Callable[[Path], bool] | None = None,
    flag: str = "--out",
) -> Path:
    """Check an output file before the work that fills it starts.

    Args:
        path: The file to write.
        inputs: Input files and folders it must not be or lie in.
        overwrite: Replace an existing earlier output (one ``ours`` recognises).
        ours: Recognises a file this command wrote earlier (e.g. by its CSV header); ``None``: none is.
        flag: How the user gave ``path``.

    Returns:
        ``path`` as a :class:`~pathlib.Path` (its folder now exists and is writable).

    Raises:
        OutputError: ``path`` is a folder, an input or inside one, an existing file neuroxai did not write, an
            earlier output while ``overwrite`` is false, or its folder cannot be written.
    """
    p = Path(path)
    shown = display_path(p)
    if p.is_dir():
        raise OutputError(f"{flag} {shown} is a folder; expected a file name, e.g. {display_path(p / 'predictions.csv')}.")
    check_not_input(p, inputs, flag=flag)
    if p.exists() or p.is_symlink():
        if not p.is_file() or p.is_symlink():
            raise OutputError(f"{flag} {shown} exists and is not a regular file; choose a new file name.")
        mine = False
        with contextlib.suppress(OSError, ValueError):
            mine = bool(ours is not None and ours(p))
        if not mine:
            raise OutputError(
                f"{flag} {shown} exists and was not written by neuroxai; refusing to replace it. "
                "Choose a new file name, or move the file away first."
            )
        if not overwrite:
            raise OutputError(f"{flag} {shown} holds an earlier output; add --overwrite to replace it, or choose a new name.")
    check_writable_dir(p.parent if str(p.parent) else Path("."), flag=flag)
    return p


def _read_marker(folder: Path) -> dict[str, Any] | None:
    marker = folder / OUTPUT_MARKER
    if not marker.is_file():
        return None
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"command": "?", "files": []}
    return data if isinstance(data, dict) else {"command": "?", "files": []}


def is_output_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder neuroxai wrote: it holds an :data:`OUTPUT_MARKER`, a run lock or a run's spec.

    Data scans skip such folders, so outputs never become inputs.
    """
    p = Path(path)
    return p.is_dir() and any((p / n).exists() for n in (OUTPUT_MARKER, LOCK_FILE, "neuroxai.json"))


class OutputFolder:
    """An output folder checked by :func:`prepare_output_dir`; :meth:`record` and :meth:`finish` keep its marker true.

    The marker lists every file of ours that may be in the folder at any moment: the earlier run's files
    (until this run removes them) and each file this run is about to write (:meth:`record`, called before the
    file is written). So a run killed halfway leaves a marker that still names all its files, and the next
    ``--overwrite`` removes the ones it does not write again: an overwrite always leaves exactly the new
    run's files.

    Attributes:
        path: The folder.
        command: The command writing it.
        previous: Files an earlier run of a neuroxai command recorded there.
        overwrite: Whether earlier outputs may be replaced.
    """

    def __init__(self, path: Path, command: str, previous: Sequence[str], overwrite: bool, marked: bool) -> None:
        self.path = path
        self.command = command
        self.previous = tuple(previous)
        self.overwrite = overwrite
        self._marked = marked
        self._recorded: set[str] = set()

    def __repr__(self) -> str:
        return f"OutputFolder({str(self.path)!r}, command={self.command!r})"

    def _names(self, files: Iterable[str | os.PathLike[str]]) -> set[str]:
        return {os.path.relpath(os.fspath(f), self.path) if os.path.isabs(os.fspath(f)) else os.fspath(f) for f in files}

    def _write_marker(self, names: Iterable[str]) -> None:
        if self._marked:
            write_json(self.path / OUTPUT_MARKER, {"command": self.command, "files": sorted(set(names))})

    def record(self, files: Iterable[str | os.PathLike[str]]) -> None:
        """Add files this run is about to write (paths inside the folder) to the marker, before writing them."""
        new = self._names(files) - self._recorded
        if not new:
            return
        self._recorded |= new
        self._write_marker({*self.previous, *self._recorded})

    def finish(self, written: Iterable[str | os.PathLike[str]]) -> None:
        """Record the files written (paths inside the folder); with ``overwrite``, remove earlier outputs not written again.

        Files recorded but not written (a volume that failed halfway) are removed with ``overwrite``; without it,
        those still there stay in the marker, so a later ``--overwrite`` removes them.
        """
        names = self._names(written)
        left = set()
        for old in ({*self.previous, *self._recorded}) - names:
            target = _resolve(self.path / old)
            if not (_within(target, _resolve(self.path)) and target.is_file()):
                continue
            if self.overwrite or old not in self.previous:
                with contextlib.suppress(OSError):
                    target.unlink()
            if target.exists():
                left.add(old)
        self._write_marker(names | left)


def prepare_output_dir(
    path: str | os.PathLike[str],
    *,
    command: str,
    inputs: Iterable[str | os.PathLike[str]] = (),
    overwrite: bool = False,
    names: Sequence[str] = (),
    strict: bool = False,
    adopt: bool = False,
    flag: str = "--out",
) -> OutputFolder:
    """Check an output folder before the work that fills it starts, and mark it as neuroxai's.

    A folder is *ours* when it holds :data:`OUTPUT_MARKER` (or ``adopt`` says so, e.g. a run directory):
    its files may be replaced with ``overwrite``. In a folder that is not ours, no existing file is ever
    replaced; with ``strict`` the folder must hold no (non-hidden) files at all, so outputs are never mixed
    into someone's data (a folder of images, say).

    Args:
        path: The output folder (created when missing).
        command: The command writing it (recorded in the marker).
        inputs: Input files and folders the folder must not be or lie in.
        overwrite: Replace earlier outputs.
        names: Files the command will write, where known in advance.
        strict: Require a new, empty or ours folder.
        adopt: Treat the folder as ours without a marker (and write none).
        flag: How the user gave ``path``.

    Returns:
        An :class:`OutputFolder`; call :meth:`OutputFolder.finish` with the files written.

    Raises:
        OutputError: See above; also when the folder cannot be created or written.
    """
    p = Path(path)
    shown = display_path(p)
    if p.exists() and not p.is_dir():
        raise OutputError(f"{flag} {shown} is a file; expected a folder (a new one, or one neuroxai wrote).")
    check_not_input(p, inputs, flag=flag, names=names)
    marker = _read_marker(p) if p.is_dir() else None
    ours = adopt or marker is not None
    entries = sorted(e.name for e in p.iterdir() if not e.name.startswith(".")) if p.is_dir() else []
    clashes = [n for n in names if (p / n).exists()]
    if not ours:
        foreign = entries if strict else clashes
        if foreign:
            what = "holds files neuroxai did not write" if strict else "holds a file neuroxai did not write"
            raise OutputError(
                f"{flag} {shown} {what} ({display_path(foreign[0])}"
                + (f" and {len(foreign) - 1} more" if len(foreign) > 1 else "")
                + "); refusing to mix outputs into it. Choose a new or empty folder."
            )
    elif not overwrite and (entries if strict else clashes):
        earlier = f"`neuroxai {marker.get('command', '?')}`" if marker else "an earlier run"
        raise OutputError(f"{flag} {shown} holds the output of {earlier}; add --overwrite to replace it, or choose a new folder.")
    check_writable_dir(p, flag=flag)
    previous = [str(f) for f in (marker or {}).get("files", []) if isinstance(f, str)]
    marked = not adopt or marker is not None
    if marked:
        write_json(p / OUTPUT_MARKER, {"command": command, "files": previous})
    return OutputFolder(p, command, previous, overwrite, marked=marked)
