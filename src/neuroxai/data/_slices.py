"""Slices of scanner volumes as Dataset samples: which slices a row asks for, index-time probing, and slice reading.

A sample may be one axial slice of a volume (a NIfTI file, a DICOM file or a folder holding a DICOM series)
instead of an image file. Slice indices are in the display orientation of
:attr:`neuroxai.data.Volume.voxels` (axial, inferior -> superior), and a slice's pixels are
:meth:`Volume.slices_uint8` of the volume read with the default :class:`~neuroxai.data.Window`: what
``neuroxai predict`` sees for the same slice.

Reading a slice in the tf.data pipeline goes through a small per-process cache of windowed volumes
(:data:`VOLUME_CACHE_SIZE` volumes at most, least recently used dropped first), so the slices of one
volume cost one read of the file, and memory stays bounded whatever the number of volumes.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from neuroxai._progress import progress as _progress
from neuroxai._records import Record
from neuroxai.data._files import SkippedFile
from neuroxai.data._images import ImageInfo, digest_bytes, thumbnail
from neuroxai.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from neuroxai.data._medical import Volume

__all__ = ["VOLUME_CACHE_SIZE", "SliceRange", "SliceRef", "probe_volumes", "read_slice", "slice_problem"]

log = logging.getLogger(__name__)

#: Most windowed volumes the slice reader keeps in memory per process (uint8, e.g. 9 MB for 155 x 240 x 240).
VOLUME_CACHE_SIZE = 4

#: Volumes read at the same time while indexing (each is held as float32 while it is windowed).
_PROBE_WORKERS = 2

_RANGE = re.compile(r"^\s*(-?\d+)?\s*:\s*(-?\d+)?\s*$")
_INDEX = re.compile(r"^\s*-?\d+\s*$")


@dataclass(frozen=True)
class SliceRef(Record):
    """Which slice of which volume a sample is.

    Attributes:
        path: The volume: a NIfTI file, a DICOM file or a folder holding a DICOM series (as the data names it).
        series: The DICOM SeriesInstanceUID when the folder holds several series; else ``None``.
        index: The axial slice, in the display orientation of :attr:`neuroxai.data.Volume.voxels`
            (0 is the most inferior slice).
    """

    path: str
    series: str | None
    index: int

    @property
    def name(self) -> str:
        """A readable name for messages and reports: ``scan.nii.gz[slice 12]``."""
        series = f"series {self.series}, " if self.series else ""
        return f"{self.path}[{series}slice {self.index}]"


@dataclass(frozen=True)
class SliceRange:
    """The slices a manifest row asks for (its ``slice`` cell), resolved once the volume's length is known.

    Attributes:
        text: The cell as written (``"12"``, ``"10:20"``, ``":"``).
        start: First slice (negative counts from the end, as in Python).
        stop: End of a range, exclusive (``None``: to the end).
        single: The cell named one slice: out of range is an error, not an empty range.
    """

    text: str
    start: int | None
    stop: int | None
    single: bool

    @classmethod
    def parse(cls, text: str) -> SliceRange | str | None:
        """``None`` for an empty cell (every brain slice), a :class:`SliceRange`, or why the cell is not one."""
        if not text.strip():
            return None
        if _INDEX.match(text):
            return cls(text.strip(), int(text), None, True)
        m = _RANGE.match(text)
        if m is None:
            return (
                f"slice {text!r} is neither a slice index (12) nor a half-open range (10:20, 10:, :20); "
                "fix the cell, or leave it empty for every slice with brain"
            )
        start, stop = (int(g) if g is not None else None for g in m.groups())
        return cls(text.strip(), start, stop, False)

    def resolve(self, n_slices: int) -> list[int] | str:
        """The slice indices in a volume of ``n_slices`` slices, or why there are none."""
        last = f"0..{n_slices - 1}" if n_slices else "none"
        if self.single:
            assert self.start is not None
            index = self.start + n_slices if self.start < 0 else self.start
            if not 0 <= index < n_slices:
                return f"slice {self.text} is out of range: the volume has {n_slices} slices ({last}); fix the slice column"
            return [index]
        picked = list(range(*slice(self.start, self.stop).indices(n_slices)))
        if not picked:
            return f"slice range {self.text} selects none of the volume's {n_slices} slices ({last}); fix the slice column"
        return picked


@dataclass(frozen=True)
class VolumeRequest:
    """One data row (or class-folder volume) naming a volume: which slices of it become samples."""

    path: str
    slices: SliceRange | None  # None: every slice with brain (brain_slices)


@dataclass(frozen=True)
class ProbedSlice:
    """One slice that became a sample, with what indexing learnt about its pixels."""

    ref: SliceRef
    info: ImageInfo


def _kind(path: str) -> str:
    return "NIfTI" if path.lower().endswith((".nii", ".nii.gz")) else "DICOM"


def _slice_info(fmt: str, pixels: np.ndarray) -> ImageInfo:
    """The :class:`ImageInfo` of one windowed uint8 slice: its pixels' digest and thumbnail (duplicate detection)."""
    data = np.ascontiguousarray(pixels)
    digest = digest_bytes(b"volume-slice" + str(data.shape).encode() + data.tobytes())
    return ImageInfo(fmt, "L", int(data.shape[1]), int(data.shape[0]), digest, thumbnail(data))


def _read(path: str) -> tuple[list[Volume], list[SkippedFile]]:
    """The volumes a data entry names: a NIfTI file, the series of a DICOM file, or the series of a DICOM folder.

    A folder's own DICOM files are its volumes (its sub-folders are volumes of their own in a class folder);
    a folder with no DICOM file of its own (e.g. a patient folder with one sub-folder per series) gives
    the series of its sub-folders.
    """
    from neuroxai.data._medical import read_volumes

    volumes, bad = read_volumes([path])
    if os.path.isdir(path):
        here = os.path.realpath(path)
        own = [v for v in volumes if os.path.realpath(v.source) == here]
        if own:
            inside = {here, *(os.path.realpath(os.path.dirname(s.path)) for s in bad if os.path.isfile(s.path))}
            return own, [
                s for s in bad if os.path.realpath(s.path) in inside or os.path.realpath(os.path.dirname(s.path)) == here
            ]
    return volumes, bad


def _probe_one(path: str, requests: Sequence[VolumeRequest]) -> tuple[list[list[ProbedSlice] | str], list[SkippedFile]]:
    """Read one volume (or the series of one DICOM folder) once and answer every request naming it."""
    from neuroxai.data._medical import brain_slices

    try:
        volumes, bad = _read(path)
    except DataError as exc:  # e.g. the medical extra is not installed
        return [str(exc)] * len(requests), []
    except Exception as exc:  # a reader bug must not stop indexing: skip the volume and say why
        log.debug("reading volume %s failed", path, exc_info=True)
        return [f"cannot be read as a volume ({type(exc).__name__}: {exc})"] * len(requests), []
    if not volumes:
        why = "; ".join(s.reason for s in bad) or "no volume found in it"
        return [why] * len(requests), []
    fmt = _kind(path)
    several = len(volumes) > 1
    stacks = [(v.series if several else None, v.slices_uint8()) for v in volumes]
    out: list[list[ProbedSlice] | str] = []
    for req in requests:
        if req.slices is not None and several:
            out.append(
                f"folder holds {len(volumes)} DICOM series, so slice {req.slices.text} is ambiguous; "
                "move each series into its own folder, or leave the slice empty for every slice with brain of every series"
            )
            continue
        found: list[ProbedSlice] = []
        why = ""
        for series, stack in stacks:
            picked: list[int] | str
            if req.slices is None:
                picked = np.flatnonzero(brain_slices(stack)).tolist()
                if not picked:
                    why = (
                        f"no slice with brain in its {len(stack)} slices (the foreground test of brain_slices); "
                        "name the slices in a manifest's slice column"
                    )
                    continue
            else:
                picked = req.slices.resolve(len(stack))
                if isinstance(picked, str):
                    why = picked
                    continue
            found.extend(ProbedSlice(SliceRef(path, series, int(z)), _slice_info(fmt, stack[z])) for z in picked)
        out.append(found if found else why)
    return out, list(bad)


def probe_volumes(
    requests: Sequence[VolumeRequest], *, progress: bool = False
) -> tuple[list[list[ProbedSlice] | str], list[SkippedFile]]:
    """Read the volumes that ``requests`` name (each file once, a few at a time) and list the slices they give.

    Returns:
        Per request, its slices (in slice order; several series in slice order each) or why it gives none;
        and the series of a DICOM folder that were skipped while the folder's other series were read.
    """
    by_path: dict[str, list[int]] = {}
    for k, req in enumerate(requests):
        by_path.setdefault(req.path, []).append(k)
    results: list[list[ProbedSlice] | str] = [""] * len(requests)
    skipped: list[SkippedFile] = []
    if not by_path:
        return results, skipped
    bar: Any = _progress(total=len(by_path), desc="Reading volumes", enabled=progress and len(by_path) > 20)
    try:
        with ThreadPoolExecutor(max_workers=_PROBE_WORKERS) as pool:
            jobs = {path: pool.submit(_probe_one, path, [requests[k] for k in ks]) for path, ks in by_path.items()}
            for path, job in jobs.items():
                answers, bad = job.result()
                for k, res in zip(by_path[path], answers):
                    results[k] = res
                skipped.extend(bad)
                bar.update(1)
    finally:
        bar.close()
    return results, skipped


# ------------------------------------------------------------------------------------------ reading slices


def _signature(path: str) -> tuple[int, int]:
    """What tells a changed file apart: its modification time and size (a folder's: when files come or go)."""
    st = os.stat(path)
    return int(st.st_mtime_ns), int(st.st_size)


class _VolumeCache:
    """Windowed uint8 volumes ``[Z, H, W]`` by ``(path, series)``, least recently used dropped first; thread-safe.

    A volume is read once even when several pipeline threads ask for its slices at the same time (the
    others wait for the first reader). A volume that cannot be read is remembered as its reason.
    """

    def __init__(self, size: int) -> None:
        self.size = int(size)
        self._items: OrderedDict[tuple[str, str | None], tuple[tuple[int, int], np.ndarray | str]] = OrderedDict()
        self._loading: dict[tuple[str, str | None], threading.Event] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, path: str, series: str | None) -> np.ndarray | str:
        key = (path, series)
        while True:
            try:
                sig = _signature(path)
            except OSError as exc:
                return f"cannot be read ({exc.strerror or exc}); check the path and the file's permissions"
            with self._lock:
                hit = self._items.get(key)
                if hit is not None and hit[0] == sig:
                    self._items.move_to_end(key)
                    return hit[1]
                waiting = self._loading.get(key)
                if waiting is None:
                    done = threading.Event()
                    self._loading[key] = done
                    break
            waiting.wait()
        try:
            value = _read_stack(path, series)
            with self._lock:
                self._items[key] = (sig, value)
                self._items.move_to_end(key)
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
            return value
        finally:
            with self._lock:
                del self._loading[key]
            done.set()


def _read_stack(path: str, series: str | None) -> np.ndarray | str:
    """The windowed uint8 slices of one volume, or why it cannot be read now."""
    try:
        volumes, bad = _read(path)
    except DataError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001  # reported as the sample's reason, never a crash mid-run
        return f"cannot be read as a volume ({type(exc).__name__}: {exc})"
    why = "; ".join(s.reason for s in bad)
    if series is None:
        if len(volumes) == 1:
            return volumes[0].slices_uint8()
        if not volumes:
            return why or "no volume found in it"
        return f"now holds {len(volumes)} DICOM series instead of one; rebuild the Dataset"
    for v in volumes:
        if v.series == series:
            return v.slices_uint8()
    return f"DICOM series {series} is no longer in the folder{': ' + why if why else ''}; rebuild the Dataset"


_CACHE = _VolumeCache(VOLUME_CACHE_SIZE)


def read_slice(ref: SliceRef) -> np.ndarray:
    """The windowed uint8 pixels ``[H, W]`` of one slice (through the per-process volume cache).

    Raises:
        DataError: The volume cannot be read (any more), or has no such slice.
    """
    stack = _CACHE.get(ref.path, ref.series)
    if isinstance(stack, str):
        raise DataError(f"{ref.name}: {stack}")
    if not 0 <= ref.index < len(stack):
        raise DataError(f"{ref.name}: the volume now has {len(stack)} slices; it changed since indexing, rebuild the Dataset")
    out: np.ndarray = stack[ref.index]
    return out


def slice_problem(ref: SliceRef) -> str:
    """Why a slice cannot be read now (the reader's reason), or a generic reason when it reads fine."""
    try:
        read_slice(ref)
    except DataError as exc:
        return str(exc).removeprefix(f"{ref.name}: ").rstrip(".")
    return "could not be decoded by the tf.data pipeline"
