"""Scanner formats: DICOM series and NIfTI volumes read into axial slices the models can see.

Optional extra ``neuroxai[medical]`` (``pydicom`` and ``nibabel``): imported lazily; when missing, a
:class:`~neuroxai.errors.DataError` names the extra (``pip install 'neuroxai[medical]'`` or ``.[medical]``).

Display orientation of :attr:`Volume.voxels` (what the model sees, one axial slice per index):
``voxels[z, row, col]``: ``z`` runs inferior -> superior, rows anterior (top) -> posterior, columns in the
radiological convention by default (patient's right on the image's left, as radiology workstations and the
Kaggle slices show it) or the neurological one (patient's left on the left).

How the readers get there:

- The file's affine (voxel indices -> RAS+ millimetres) says which world direction each array axis runs
  along; the nearest of R/L, A/P, S/I is taken (an oblique scan is treated as the closest straight one).
  The array is then only transposed and flipped, never resampled: no interpolation, every voxel value is
  kept exactly, and :meth:`Volume.to_source` undoes it bit for bit. Slices are always axial: a sagittal or
  coronal acquisition is shown as axial slices of its own voxels (their pixels may then be non-square).
- NIfTI (``.nii``, ``.nii.gz``, via nibabel): the file's affine (sform, else qform), its data scaled by
  ``scl_slope``/``scl_inter`` as float32. 3-D only; a 4-D file with one volume is fine.
- DICOM (via pydicom): a file or the files of a folder, grouped by SeriesInstanceUID; slices sorted by
  their position along the slice normal (the cross product of the two ImageOrientationPatient
  directions), never by file name or InstanceNumber; each slice's RescaleSlope/RescaleIntercept applied;
  the affine built from ImagePositionPatient, ImageOrientationPatient, PixelSpacing and the distance
  between slice positions, converted from DICOM's LPS to RAS+.

Intensities become 8-bit pixels through a :class:`Window` (after rescale): by default the series' own
window centre/width where a DICOM series has one, else percentiles of the non-zero voxels.

Memory is bounded whatever a file claims. Before any voxel is decoded, the size the header claims (a NIfTI
file's dimensions; a DICOM series' Rows x Columns x slices, from a first pass that reads headers only) is
checked against :data:`MAX_VOLUME_VOXELS` (``max_voxels=``, or the environment variable
``NEUROXAI_MAX_VOLUME_VOXELS``); a larger volume is refused with the claimed size and the limit named, never
allocated. A volume within it is decoded slab by slab (NIfTI) or slice by slice (DICOM) straight into its
float32 :attr:`Volume.voxels` (no second copy for the reordering), and windowing and the foreground test run
block by block, so reading costs about 5 bytes per voxel (the float32 voxels and the uint8 slices). Only
regular files are opened: named pipes, sockets and devices are skipped with the reason.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import importlib
import logging
import math
import os
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import numpy as np

from neuroxai._io import atomic_path, display_path, prepare_output_file
from neuroxai._records import Record
from neuroxai.data._checks import size_limit
from neuroxai.data._files import MEDICAL_EXTENSIONS, SkippedFile, file_kind, has_dicom_marker, special_file, walk_folder
from neuroxai.errors import DataError

__all__ = [
    "MAX_VOLUME_VOXELS",
    "MAX_VOLUME_VOXELS_VARIABLE",
    "MEDICAL_EXTENSIONS",
    "Volume",
    "VolumeFiles",
    "Window",
    "brain_slices",
    "find_volumes",
    "is_dicom_file",
    "is_volume_name",
    "iter_volumes",
    "read_volume",
    "read_volumes",
    "volume_voxel_limit",
    "write_nifti",
]

logger = logging.getLogger(__name__)

Convention = Literal["radiological", "neurological"]

_EXTRA_HINT = "pip install 'neuroxai[medical]' (in a checkout: pip install -e '.[medical]')"
_NIFTI_ENDINGS = (".nii", ".nii.gz")
_DICOM_ENDINGS = (".dcm", ".dicom", ".ima")
#: Marker written into the ``descrip`` field of the NIfTI files neuroxai writes (recognised before replacing one).
_NIFTI_MARK = b"neuroxai"
#: Percentiles are estimated from at most this many voxels (evenly strided), so windowing stays fast on big volumes.
_PERCENTILE_SAMPLE = 1 << 21

#: Largest volume read by default, in voxels: 2**26 = 67,108,864 (512 x 512 x 256, or 1024 slices of 256 x 256):
#: above any brain MRI series (a 1 mm T1 is about 16 million voxels, a 0.5 mm 7 T scan about 70 million),
#: and small enough that reading, predicting and explaining it stays within about 1 GB. A file claiming more
#: is refused from its header, never decoded. Change it per call (``max_voxels=``), here for the process, or
#: with the environment variable :data:`MAX_VOLUME_VOXELS_VARIABLE` (for the command line).
MAX_VOLUME_VOXELS = 1 << 26

#: Environment variable that replaces :data:`MAX_VOLUME_VOXELS` where no ``max_voxels`` is given.
MAX_VOLUME_VOXELS_VARIABLE = "NEUROXAI_MAX_VOLUME_VOXELS"

#: Voxels decoded, windowed or tested at a time (16 MB of float32): what bounds the temporary arrays of reading.
_BLOCK_VOXELS = 1 << 22

#: DICOM values longer than this (the pixel data) are left on disk by the header pass.
_DEFER_BYTES = 4096


def volume_voxel_limit(max_voxels: int | None = None) -> int:
    """The largest volume read: ``max_voxels``, else ``$NEUROXAI_MAX_VOLUME_VOXELS``, else :data:`MAX_VOLUME_VOXELS`.

    Raises:
        DataError: The value given (or the variable's) is not a whole number >= 1.
    """
    return size_limit(max_voxels, MAX_VOLUME_VOXELS_VARIABLE, MAX_VOLUME_VOXELS)


def _mb(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:.1f} GB" if n_bytes >= 1e9 else f"{n_bytes / 1e6:.0f} MB"


def _over_limit(claim: str, n_voxels: int, limit: int) -> str:
    """Why a volume is refused before decoding: the size it claims and the limit, and how to raise the limit."""
    return (
        f"{claim} ({n_voxels:,} voxels, {_mb(4.0 * n_voxels)} as float32): more than the limit of {limit:,} voxels, "
        f"so it was not read. If the scan really is this large, raise the limit (max_voxels=, or the environment "
        f"variable {MAX_VOLUME_VOXELS_VARIABLE}); otherwise the header is damaged"
    )


def _blocks(n: int, per_item: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` ranges over ``n`` items of ``per_item`` voxels each, about :data:`_BLOCK_VOXELS` per range."""
    step = max(1, _BLOCK_VOXELS // max(1, per_item))
    for start in range(0, n, step):
        yield start, min(n, start + step)


@dataclass(frozen=True)
class Window(Record):
    """How scanner intensities (after rescale slope/intercept) become 8-bit pixels.

    The intensities ``low = center - width / 2`` and ``high = center + width / 2`` map to 0 and 255,
    linearly, clipped outside; ``Window("fixed", center=127.5, width=255)`` leaves 0..255 data unchanged.

    Attributes:
        mode: ``"auto"``: the DICOM window centre/width when the series has one (the first, where it lists
            several), else percentiles; ``"percentile"``: always percentiles; ``"dicom"``: the series' window
            (error when absent, e.g. for NIfTI); ``"fixed"``: ``(center, width)`` as given.
        percentiles: Lower and upper percentile of the volume's non-zero voxels mapped to 0 and 255 (the zero
            background of a skull-stripped or masked scan does not pull the window down). Estimated from an
            even sample of at most about two million voxels. Where they coincide (e.g. a mask of zeros and
            ones), the volume's minimum and maximum are used; a constant volume gives all-zero slices.
        center: Window centre for ``"fixed"``.
        width: Window width for ``"fixed"`` (> 0).
    """

    mode: Literal["auto", "percentile", "dicom", "fixed"] = "auto"
    percentiles: tuple[float, float] = (0.5, 99.5)
    center: float | None = None
    width: float | None = None


@dataclass(frozen=True)
class _NiftiGeometry:
    """A NIfTI input's own header geometry, kept so written volumes carry the same qform/sform and codes."""

    qform: np.ndarray
    qform_code: int
    sform: np.ndarray
    sform_code: int
    xyzt_units: int


@dataclass(frozen=True, eq=False)
class Volume(Record):
    """One 3-D scan in display orientation, with what is needed to map results back to the file's grid.

    Attributes:
        source: The NIfTI file, or the folder (or single file) of a DICOM series, as given.
        name: Output stem: the file name without ``.nii``/``.nii.gz``/``.dcm``; for DICOM the folder name,
            plus ``_s<SeriesNumber>`` when the folder holds several series.
        series: DICOM SeriesInstanceUID; ``None`` for NIfTI.
        voxels: float32 ``[Z, H, W]`` intensities after rescale slope/intercept, display orientation
            (see the module docstring).
        affine: float64 ``[4, 4]``: voxel indices of the *source grid* -> RAS+ millimetres (NIfTI: the
            file's own affine; DICOM: built from ImagePositionPatient/ImageOrientationPatient/PixelSpacing).
        source_shape: The source grid's spatial shape (3 ints): what :meth:`to_source` returns.
        window: ``(low, high)`` intensities mapped to 0 and 255 (:meth:`slices_uint8`).
        convention: Column convention of :attr:`voxels`.

    Example:
        >>> vol = read_volume("scan.nii.gz")  # doctest: +SKIP
        >>> pixels = vol.slices_uint8()  # [Z, H, W] uint8, what the model sees  # doctest: +SKIP
        >>> keep = brain_slices(pixels)  # doctest: +SKIP
    """

    source: str
    name: str
    series: str | None
    voxels: np.ndarray
    affine: np.ndarray
    source_shape: tuple[int, int, int]
    window: tuple[float, float]
    convention: Convention = "radiological"
    # private: how the source grid maps to display (axis permutation and flips), set by the readers
    _axes: tuple[int, int, int] = field(default=(0, 1, 2), repr=False)
    _flips: tuple[bool, bool, bool] = field(default=(False, False, False), repr=False)
    # private: the NIfTI input's header geometry (None for DICOM), kept by write_nifti
    _nifti: _NiftiGeometry | None = field(default=None, repr=False)
    # private: DICOM MONOCHROME1 (low values shown bright): slices_uint8 inverts
    _invert: bool = field(default=False, repr=False)

    @property
    def n_slices(self) -> int:
        """Number of axial slices."""
        return int(self.voxels.shape[0])

    def slices_uint8(self) -> np.ndarray:
        """uint8 ``[Z, H, W]``: :attr:`voxels` windowed to 0..255 with :attr:`window` (what the model sees).

        ``low`` maps to 0, ``high`` to 255, linearly and rounded to the nearest integer, clipped outside;
        NaN becomes 0. A window with ``high <= low`` (a constant volume) gives all zeros. A DICOM series
        stored as MONOCHROME1 (low values shown bright) is inverted here, so bright means bright.
        """
        pixels = _apply_window(self.voxels, self.window)
        if self._invert:
            np.subtract(np.uint8(255), pixels, out=pixels)
        return pixels

    def to_source(self, stack: np.ndarray) -> np.ndarray:
        """Map a display-orientation array ``[Z, H, W]`` (e.g. heatmaps) onto the source grid (:attr:`source_shape`).

        The exact inverse of the reader's reordering: ``to_source(voxels)`` is the file's data, value for value.

        Raises:
            DataError: ``stack`` does not have the shape of :attr:`voxels`.
        """
        arr = np.asarray(stack)
        if arr.shape[:3] != self.voxels.shape:
            raise DataError(
                f"Expected an array of shape {self.voxels.shape} (the display shape of {display_path(self.source)}); "
                f"got {arr.shape}. Pass one value per voxel of Volume.voxels."
            )
        flip_axes = tuple(d for d in range(3) if self._flips[d])
        if flip_axes:
            arr = np.flip(arr, axis=flip_axes)
        inverse = tuple(int(a) for a in np.argsort(self._axes))
        return np.transpose(arr, (*inverse, *range(3, arr.ndim)))


@dataclass(frozen=True)
class VolumeFiles(Record):
    """Scanner inputs found in files and folders (the rule of :func:`find_volumes`).

    Attributes:
        nifti: NIfTI files.
        dicom: One entry per folder holding DICOM files (or per DICOM file named explicitly): its files.
        missing: Inputs that do not exist, and why.
        ignored: Files inside the given folders that are neither scanner files nor images (hidden files
            and folders, other extensions, folders neuroxai wrote), with the reason; the same entries
            :attr:`neuroxai.data.ImageFiles.ignored` lists for the same inputs (a caller using both
            functions reports one of the two). Images, found or named, are :func:`~neuroxai.data.find_images`'
            business and are not listed here.
    """

    nifti: tuple[str, ...]
    dicom: tuple[tuple[str, ...], ...]
    missing: tuple[SkippedFile, ...] = ()
    ignored: tuple[SkippedFile, ...] = ()


# ---------------------------------------------------------------------------------------------------- optional imports
def _optional(package: str, needed_for: str) -> ModuleType:
    """Import ``package`` of the extra ``neuroxai[medical]``, or raise a DataError saying how to install it."""
    try:
        return importlib.import_module(package)  # typed ModuleType whether or not the package is installed
    except ImportError as exc:
        raise DataError(f"{needed_for} needs {package}, part of the optional extra neuroxai[medical]: {_EXTRA_HINT}.") from exc


def _nibabel() -> ModuleType:
    nib = _optional("nibabel", "Reading and writing NIfTI files")
    _propagate_nibabel_log()
    return nib


def _propagate_nibabel_log() -> None:
    """Let nibabel's header warnings (``pixdim[1,2,3] should be positive ...``) propagate like any library's log.

    nibabel gives its logger ``nibabel.global`` a handler of its own that prints each record raw on stderr, so
    no logging configuration can route them; that handler is removed, and records propagate instead (without
    any configuration Python still prints warnings on stderr; the ``neuroxai`` command shows them as one line).
    """
    log = logging.getLogger("nibabel.global")
    for handler in list(log.handlers):
        if type(handler) is logging.StreamHandler:  # nibabel's own default, not one a user configured
            log.removeHandler(handler)
    log.propagate = True


def _pydicom() -> ModuleType:
    return _optional("pydicom", "Reading DICOM files")


# ---------------------------------------------------------------------------------------------------- names and searching
def is_volume_name(name: str) -> bool:
    """True when a file name ends in one of :data:`MEDICAL_EXTENSIONS` (any case)."""
    return name.lower().endswith(MEDICAL_EXTENSIONS)


def _is_nifti_name(name: str) -> bool:
    return name.lower().endswith(_NIFTI_ENDINGS)


def is_dicom_file(path: str | os.PathLike[str]) -> bool:
    """True for a ``.dcm``/``.dicom``/``.ima`` name, or another non-image, non-NIfTI file with ``DICM`` at byte 128.

    DICOM files are often named without an extension or by their UID (``1.3.12.2.1107...``); those are
    recognised by the part-10 marker. A file without the 128-byte preamble and marker (old ACR-NEMA style)
    is only recognised by its extension.
    """
    name = os.path.basename(os.fspath(path)).lower()
    if name.endswith(_DICOM_ENDINGS):
        return True
    if _is_nifti_name(name) or file_kind(name) in ("image", "mask"):
        return False
    return has_dicom_marker(path)


def find_volumes(inputs: Iterable[str | os.PathLike[str]]) -> VolumeFiles:
    """NIfTI files and DICOM folders among ``inputs`` (folders searched recursively, hidden entries skipped).

    The folder rules of :func:`neuroxai.data.find_images` apply (hidden files and folders, symbolic links to
    folders and folders neuroxai wrote are not entered); a file is a scanner file by its name
    (:data:`MEDICAL_EXTENSIONS`) or, for other non-image names, by the DICOM ``DICM`` marker. Images found
    in the folders are left to :func:`~neuroxai.data.find_images` (not listed as ignored).

    Args:
        inputs: NIfTI files, DICOM files, and folders holding either.

    Returns:
        A :class:`VolumeFiles`: NIfTI files in a stable order, the DICOM files grouped per folder (each group
        may still hold several series: :func:`read_volumes` splits them; DICOM files named one by one are
        grouped by their folder too, so ``series/*.dcm`` is one series, not one volume per file), missing
        inputs and ignored files.

    Example:
        >>> found = find_volumes(["scans/"])  # doctest: +SKIP
        >>> found.nifti, [len(files) for files in found.dicom]  # doctest: +SKIP
        (('scans/t1.nii.gz',), [24])
    """
    nifti: list[str] = []
    dicom: list[tuple[str, ...]] = []
    missing: list[SkippedFile] = []
    ignored: list[SkippedFile] = []
    named_dicom: dict[str, list[str]] = {}
    placeholders: dict[int, str] = {}
    for raw in inputs:
        given = os.fspath(raw)
        p = Path(given)
        if (special := special_file(given)) is not None:  # never opened: a pipe would wait for a writer
            missing.append(SkippedFile(given, special))
        elif p.is_file():
            if _is_nifti_name(given):
                nifti.append(given)
            elif is_dicom_file(given):
                # DICOM files named one by one (``series/*.dcm``) are read together, per folder, as their series
                parent = os.path.realpath(p.parent)
                if parent in named_dicom:
                    named_dicom[parent].append(given)
                else:
                    named_dicom[parent] = [given]
                    dicom.append(())  # placeholder: keeps the order of first appearance
                    placeholders[len(dicom) - 1] = parent
            # any other named file is find_images' (it takes every named file and reports why it cannot be read)
        elif p.is_dir():
            for contents in walk_folder(given):
                ignored.extend(contents.skipped)
                here = [f for f in contents.volumes if not _is_nifti_name(f)]
                nifti.extend(f for f in contents.volumes if _is_nifti_name(f))
                if here:
                    dicom.append(tuple(here))
        else:
            missing.append(SkippedFile(given, "no such file or folder"))
    for index, parent in placeholders.items():
        dicom[index] = tuple(named_dicom[parent])
    seen: set[str] = set()
    unique_nifti: list[str] = []
    for f in nifti:
        key = os.path.realpath(f)
        if key not in seen:
            seen.add(key)
            unique_nifti.append(f)
    unique_dicom: list[tuple[str, ...]] = []
    for group in dicom:
        kept = tuple(f for f in group if os.path.realpath(f) not in seen)
        seen.update(os.path.realpath(f) for f in kept)
        if kept:
            unique_dicom.append(kept)
    return VolumeFiles(tuple(unique_nifti), tuple(unique_dicom), tuple(missing), tuple(ignored))


# ---------------------------------------------------------------------------------------------------- orientation
#: Display axis -> (RAS axis, direction): z towards S, rows towards P, columns towards L (radiological) or R.
_DISPLAY: dict[str, tuple[tuple[int, int], tuple[int, int], tuple[int, int]]] = {
    "radiological": ((2, 1), (1, -1), (0, -1)),
    "neurological": ((2, 1), (1, -1), (0, 1)),
}


def _axis_directions(affine: np.ndarray) -> np.ndarray | None:
    """For each array axis, ``(RAS axis, +1/-1)`` of the nearest world direction; ``None`` when the affine is degenerate.

    The affine's 3x3 part is made orthonormal first (nearest rotation, by SVD), then axes are assigned greedily
    by the largest remaining component, so every world axis is used exactly once (nibabel's ``io_orientation`` rule).
    """
    rzs = np.asarray(affine, dtype=np.float64)[:3, :3]
    if not np.all(np.isfinite(rzs)):
        return None
    zooms = np.sqrt((rzs**2).sum(axis=0))
    if np.any(zooms <= 1e-12):
        return None
    u, s, vt = np.linalg.svd(rzs / zooms)
    if s.min() <= 1e-8 * s.max():
        return None
    rot = np.abs(u @ vt)  # [world, array]
    signed = u @ vt
    out = np.zeros((3, 2), dtype=np.int64)
    work = rot.copy()
    for _ in range(3):
        world, axis = np.unravel_index(int(np.argmax(work)), work.shape)
        out[axis] = (world, 1 if signed[world, axis] > 0 else -1)
        work[world, :] = -1
        work[:, axis] = -1
    return out


def _display_mapping(
    affine: np.ndarray, convention: Convention, source: str
) -> tuple[tuple[int, int, int], tuple[bool, bool, bool]]:
    """``(axes, flips)``: display = ``flip(transpose(source_data, axes), flips)``."""
    directions = _axis_directions(affine)
    if directions is None:
        logger.warning("%s: the affine is degenerate; slices are shown in the file's own axis order", display_path(source))
        return (2, 1, 0), (False, False, False)
    axes: list[int] = []
    flips: list[bool] = []
    for world, sign in _DISPLAY[convention]:
        axis = int(np.flatnonzero(directions[:, 0] == world)[0])
        axes.append(axis)
        flips.append(bool(directions[axis, 1] != sign))
    return (axes[0], axes[1], axes[2]), (flips[0], flips[1], flips[2])


def _source_view(display: np.ndarray, axes: tuple[int, int, int], flips: tuple[bool, bool, bool]) -> np.ndarray:
    """A view of a display-orientation array in the source grid's axis order (writing to it fills ``display``)."""
    arr = display
    flip_axes = tuple(d for d in range(3) if flips[d])
    if flip_axes:
        arr = np.flip(arr, axis=flip_axes)
    return np.transpose(arr, tuple(int(a) for a in np.argsort(axes)))


def _display_array(source_shape: tuple[int, int, int], axes: tuple[int, int, int]) -> np.ndarray:
    """An uninitialised float32 array of the display shape, checked to fit in memory."""
    shape = tuple(int(source_shape[a]) for a in axes)
    try:
        return np.empty(shape, dtype=np.float32)
    except MemoryError as exc:  # within the limit, but more than this machine has free
        raise DataError(
            f"Not enough memory for a volume of {' x '.join(map(str, shape))} voxels ({_mb(4.0 * math.prod(shape))} as "
            f"float32); free memory, or lower the limit ({MAX_VOLUME_VOXELS_VARIABLE}) so such volumes are refused."
        ) from exc


def _check_pixels(voxels: np.ndarray, affine: np.ndarray, axes: tuple[int, int, int], source: str) -> None:
    zooms = np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))
    row, col = float(zooms[axes[1]]), float(zooms[axes[2]])
    if min(row, col) > 0 and max(row, col) / min(row, col) > 1.5:
        logger.warning(
            "%s: axial pixels are %.2g x %.2g mm (not square: the scan was not acquired axially); slices are shown "
            "without resampling and look stretched",
            display_path(source),
            row,
            col,
        )


# ---------------------------------------------------------------------------------------------------- windowing
def _apply_window(voxels: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """``voxels`` windowed to uint8, a block of slices at a time (the float temporaries stay small)."""
    low, high = float(window[0]), float(window[1])
    out = np.zeros(voxels.shape, dtype=np.uint8)
    if not (np.isfinite(low) and np.isfinite(high)) or high <= low:
        return out
    scale = np.float32(255.0 / (high - low))
    if voxels.ndim == 0 or voxels.size == 0:
        return out
    for start, stop in _blocks(voxels.shape[0], int(np.prod(voxels.shape[1:], dtype=np.int64))):
        scaled = (voxels[start:stop] - np.float32(low)) * scale
        np.clip(scaled, 0.0, 255.0, out=scaled)
        np.nan_to_num(scaled, copy=False, nan=0.0)
        np.rint(scaled, out=scaled)
        out[start:stop] = scaled
    return out


def _check_window(window: Window) -> None:
    lo, hi = window.percentiles
    if not (0.0 <= lo < hi <= 100.0):
        raise DataError(f"Window percentiles must satisfy 0 <= low < high <= 100; got {window.percentiles}.")
    if window.mode == "fixed" and (
        window.center is None or window.width is None or not np.isfinite(window.center) or not window.width > 0
    ):
        raise DataError(
            f"A fixed window needs a finite center and a width > 0; got center={window.center}, width={window.width}. "
            'Example: Window("fixed", center=40, width=80).'
        )
    if window.mode not in ("auto", "percentile", "dicom", "fixed"):
        raise DataError(f"Unknown window mode {window.mode!r}; expected auto, percentile, dicom or fixed.")


def _percentile_window(voxels: np.ndarray, percentiles: tuple[float, float]) -> tuple[float, float]:
    flat = voxels.reshape(-1)
    if flat.size > _PERCENTILE_SAMPLE:
        flat = flat[:: -(-flat.size // _PERCENTILE_SAMPLE)]
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return (0.0, 0.0)
    fg = flat[flat != 0]
    if fg.size:
        low, high = (float(v) for v in np.percentile(fg, percentiles))
        if high > low:
            return (low, high)
    return (float(flat.min()), float(flat.max()))


def _resolve_window(
    voxels: np.ndarray, window: Window, dicom_window: tuple[float, float] | None, source: str
) -> tuple[float, float]:
    _check_window(window)
    if window.mode == "fixed":
        assert window.center is not None and window.width is not None  # checked above
        return (float(window.center) - float(window.width) / 2.0, float(window.center) + float(window.width) / 2.0)
    if window.mode in ("auto", "dicom") and dicom_window is not None:
        center, width = dicom_window
        return (center - width / 2.0, center + width / 2.0)
    if window.mode == "dicom":
        raise DataError(
            f"{display_path(source)} has no DICOM window (WindowCenter/WindowWidth); use Window('auto') or "
            "Window('percentile'), or give one with Window('fixed', center=..., width=...)."
        )
    return _percentile_window(voxels, window.percentiles)


# ---------------------------------------------------------------------------------------------------- NIfTI
def _fill_nifti(img: Any, target: np.ndarray, source_shape: tuple[int, int, int], shown: str) -> None:
    """Decode a NIfTI image's voxels (scaled by scl_slope/scl_inter) into ``target`` (source axis order), slab by slab.

    The data block is read in order, a few slices along the file's last axis at a time (NIfTI stores voxels
    in Fortran order), so a gzip-compressed file is inflated once and no whole-volume temporary is made.
    """
    nib = _nibabel()
    from nibabel.volumeutils import apply_read_scaling

    proxy = img.dataobj
    nx, ny, nz = source_shape
    if not isinstance(proxy, nib.arrayproxy.ArrayProxy) or proxy.order != "F" or not isinstance(proxy.file_like, str):
        target[...] = np.asarray(proxy, dtype=np.float32).reshape(source_shape)  # an unusual proxy: nibabel reads it
        return
    dtype = np.dtype(proxy.dtype)
    with nib.openers.ImageOpener(proxy.file_like) as fh:
        fh.seek(int(proxy.offset))
        for k0, k1 in _blocks(nz, nx * ny):
            want = nx * ny * (k1 - k0) * dtype.itemsize
            raw = fh.read(want)
            if len(raw) < want:
                claimed = nx * ny * nz * dtype.itemsize
                got = nx * ny * k0 * dtype.itemsize + len(raw)
                raise DataError(
                    f"{shown}: the voxel data is cut short: the header claims {nx} x {ny} x {nz} voxels of {dtype.name} "
                    f"({claimed:,} bytes), the file holds {got:,}; the file is truncated or damaged: re-copy or re-export it."
                )
            block = np.frombuffer(raw, dtype=dtype).reshape((nx, ny, k1 - k0), order="F")
            target[:, :, k0:k1] = apply_read_scaling(block, proxy.slope, proxy.inter)


def _read_nifti(path: str, window: Window, convention: Convention, limit: int | None = None) -> Volume:
    nib = _nibabel()
    shown = display_path(path)
    if (special := special_file(path)) is not None:  # never open a pipe: it would wait for a writer
        raise DataError(f"{shown}: {special}.")
    max_voxels = volume_voxel_limit(limit)
    try:
        img = nib.load(path)
    except FileNotFoundError as exc:
        raise DataError(f"{shown}: no such file.") from exc
    except Exception as exc:  # nibabel raises many types for damaged files (ImageFileError, EOFError, zlib.error ...)
        raise DataError(
            f"{shown} is not a readable NIfTI file ({type(exc).__name__}: {exc}). Check the file, or re-export it."
        ) from exc
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise DataError(f"{shown} is a {type(img).__name__}, not a NIfTI image; convert it to .nii/.nii.gz.")
    shape = tuple(int(n) for n in img.shape)
    if len(shape) > 3 and any(n != 1 for n in shape[3:]):
        raise DataError(
            f"{shown} is {len(shape)}-D {shape} (time series / several volumes): extract one volume, e.g. with fslroi "
            f"({os.path.basename(path)} out.nii.gz 0 1) or nibabel's image slicing, and read that."
        )
    if len(shape) < 2:
        raise DataError(f"{shown} has shape {shape}; expected a 3-D volume (or a single 2-D slice).")
    dtype = img.get_data_dtype()
    if dtype.kind == "c" or dtype.names is not None:
        raise DataError(f"{shown} stores {dtype} voxels (complex or RGB); expected one real intensity per voxel.")
    source_shape = (*shape[:3], *(1,) * (3 - len(shape)))
    n_voxels = math.prod(source_shape)
    if n_voxels > max_voxels:  # from the header alone: nothing allocated yet
        raise DataError(
            f"{shown}: " + _over_limit(f"the header claims {' x '.join(map(str, shape))} voxels", n_voxels, max_voxels)
        )
    affine = np.asarray(img.affine, dtype=np.float64)
    hdr = img.header
    qform, qcode = hdr.get_qform(coded=True)
    sform, scode = hdr.get_sform(coded=True)
    if not qcode and not scode:
        logger.warning("%s has no qform or sform: its orientation is unknown; voxel order taken as RAS", shown)
    geometry = _NiftiGeometry(
        qform=np.asarray(qform if qform is not None else affine, dtype=np.float64),
        qform_code=int(qcode or 0),
        sform=np.asarray(sform if sform is not None else affine, dtype=np.float64),
        sform_code=int(scode or 0),
        xyzt_units=int(hdr["xyzt_units"]),
    )
    axes, flips = _display_mapping(affine, convention, path)
    grid = (int(source_shape[0]), int(source_shape[1]), int(source_shape[2]))
    voxels = _display_array(grid, axes)
    try:
        _fill_nifti(img, _source_view(voxels, axes, flips), grid, shown)
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zlib.error) as exc:  # a damaged data block (gzip, short read ...)
        raise DataError(
            f"{shown}: the voxel data cannot be read ({type(exc).__name__}: {exc}); the file is truncated or damaged."
        ) from exc
    _check_pixels(voxels, affine, axes, path)
    name = os.path.basename(path)
    stem = name[: -len(".nii.gz")] if name.lower().endswith(".nii.gz") else os.path.splitext(name)[0]
    return Volume(
        source=path,
        name=stem,
        series=None,
        voxels=voxels,
        affine=affine,
        source_shape=(int(source_shape[0]), int(source_shape[1]), int(source_shape[2])),
        window=_resolve_window(voxels, window, None, path),
        convention=convention,
        _axes=axes,
        _flips=flips,
        _nifti=geometry,
    )


# ---------------------------------------------------------------------------------------------------- DICOM
class _Unusable(Exception):
    """A DICOM file or series that cannot be read; the message is the reason."""


@dataclass
class _Slice:
    """One DICOM file of a series: its path and the header values the readers use (a plain dict, never the pixels)."""

    path: str
    ds: dict[str, Any]


#: The header values kept per DICOM file between the header pass and the pixel pass (a few KB per file, whatever
#: else the file holds); the pixel data elements are only noted as present.
_HEADER_TAGS = (
    "SOPInstanceUID",
    "SeriesInstanceUID",
    "SeriesNumber",
    "NumberOfFrames",
    "SamplesPerPixel",
    "Rows",
    "Columns",
    "RescaleSlope",
    "RescaleIntercept",
    "ImageOrientationPatient",
    "ImagePositionPatient",
    "PixelSpacing",
    "ImagerPixelSpacing",
    "SpacingBetweenSlices",
    "SliceThickness",
    "WindowCenter",
    "WindowWidth",
    "PhotometricInterpretation",
)
_PIXEL_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def _first(value: Any) -> float | None:
    """A DICOM numeric value, or its first item when multi-valued; ``None`` when absent or unreadable."""
    if value is None:
        return None
    with contextlib.suppress(TypeError, IndexError):
        if not isinstance(value, (str, bytes)) and len(value) > 0:
            value = value[0]
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if np.isfinite(out) else None


def _floats(value: Any, n: int) -> np.ndarray | None:
    if value is None:
        return None
    try:
        arr = np.array([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return arr if arr.shape == (n,) and np.all(np.isfinite(arr)) else None


def _rescale_problem(ds: Any) -> str | None:
    """Why a slice's RescaleSlope/RescaleIntercept cannot be applied (present but not a finite number), or None."""
    for keyword in ("RescaleSlope", "RescaleIntercept"):
        value = ds.get(keyword)
        if value is None or (isinstance(value, (str, bytes)) and not value.strip()):
            continue  # absent: slope 1, intercept 0
        if _first(value) is None:
            return (
                f"{keyword} is {str(value)[:40]!r}, not a finite number, so the slice's intensities cannot be rescaled "
                "(taking it as 1 or 0 would give wrong values); fix the header or remove the file"
            )
    return None


def _read_dicom_file(path: str, limit: int | None = None) -> _Slice:
    """A DICOM file's header (the pixel data stays on disk until :func:`_pixels`), checked; raises _Unusable."""
    pydicom = _pydicom()
    from pydicom.errors import InvalidDicomError

    if (special := special_file(path)) is not None:  # never open a pipe: it would wait for a writer
        raise _Unusable(special)
    try:  # headers only: the pixel data stays on disk and is read slice by slice later
        ds = pydicom.dcmread(path, defer_size=_DEFER_BYTES, specific_tags=[*_HEADER_TAGS, *_PIXEL_TAGS])
    except InvalidDicomError as exc:
        raise _Unusable("not a DICOM file (no DICM marker at byte 128)") from exc
    except (OSError, ValueError, EOFError, KeyError, TypeError, AttributeError) as exc:
        raise _Unusable(f"not a readable DICOM file ({type(exc).__name__}: {exc})") from exc
    sop_class = str(getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", ""))
    if sop_class == "1.2.840.10008.1.3.10":
        raise _Unusable("a DICOMDIR (an index of the other files), not an image; ignored")
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise _Unusable("no pixel data (a report, presentation state or header-only file); not an image")
    frames = int(_first(ds.get("NumberOfFrames")) or 1)
    if frames > 1:
        raise _Unusable(
            f"a multi-frame DICOM file ({frames} frames in one file, e.g. enhanced MR); not supported yet: "
            "export the series as one file per slice (classic DICOM), or convert it to NIfTI (e.g. with dcm2niix)"
        )
    if int(_first(ds.get("SamplesPerPixel")) or 1) != 1:
        raise _Unusable("a colour image (SamplesPerPixel > 1, e.g. a screenshot); expected a grayscale scan slice")
    rows, cols = int(_first(ds.get("Rows")) or 0), int(_first(ds.get("Columns")) or 0)
    max_voxels = volume_voxel_limit(limit)
    if rows * cols > max_voxels:
        raise _Unusable(_over_limit(f"the header claims an image of {rows} x {cols} pixels", rows * cols, max_voxels))
    if (why := _rescale_problem(ds)) is not None:
        raise _Unusable(why)
    header = {kw: ds.get(kw) for kw in _HEADER_TAGS if kw in ds}
    header.update({kw: True for kw in _PIXEL_TAGS if kw in ds})  # present; reading the value would load the pixels
    return _Slice(path, header)


def _pixels(sl: _Slice, shape: tuple[int, int]) -> np.ndarray:
    """One slice's pixels, rescaled, as float32 ``[rows, cols]`` (the file read again, now with its pixel data)."""
    pydicom = _pydicom()
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(sl.path)
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError, AttributeError) as exc:
        raise _Unusable(f"{display_path(sl.path)} cannot be read any more ({type(exc).__name__}: {exc})") from exc
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    try:
        arr = ds.pixel_array
    except (RuntimeError, NotImplementedError) as exc:
        if syntax is not None and getattr(syntax, "is_compressed", False):
            raise _Unusable(
                f"compressed pixel data ({syntax.name}, transfer syntax {syntax}) and no decoder for it is installed: "
                "pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg (or python-gdcm), or decompress the files "
                "(e.g. gdcmconv --raw, dcmdjpeg)"
            ) from exc
        raise _Unusable(f"the pixel data cannot be decoded ({exc})") from exc
    except (ValueError, AttributeError, KeyError, TypeError, OSError) as exc:
        raise _Unusable(
            f"the pixel data cannot be read ({exc}); the file is truncated, or Rows/Columns/BitsAllocated do not match it"
        ) from exc
    arr = np.asarray(arr)
    if arr.ndim != 2:
        raise _Unusable(f"pixel data of shape {arr.shape}; expected one 2-D grayscale slice")
    if arr.shape != tuple(shape):
        raise _Unusable(f"{display_path(sl.path)} changed while it was read (now {arr.shape[0]} x {arr.shape[1]} pixels)")
    if (why := _rescale_problem(ds)) is not None:
        raise _Unusable(why)
    slope = _first(ds.get("RescaleSlope"))
    intercept = _first(ds.get("RescaleIntercept"))
    out = arr.astype(np.float32)
    if slope is not None and slope != 1.0:
        out *= np.float32(slope)
    if intercept is not None and intercept != 0.0:
        out += np.float32(intercept)
    return out


def _geometry(sl: _Slice) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(orientation [6], position [3], spacing [2])`` of a slice, or None when its geometry is missing."""
    ds = sl.ds
    iop = _floats(ds.get("ImageOrientationPatient"), 6)
    ipp = _floats(ds.get("ImagePositionPatient"), 3)
    if iop is None or ipp is None:
        return None
    spacing = _floats(ds.get("PixelSpacing"), 2)
    if spacing is None:
        spacing = _floats(ds.get("ImagerPixelSpacing"), 2)
    if spacing is None or np.any(spacing <= 0):
        spacing = np.ones(2)
    return iop, ipp, spacing


def _series_volume(
    slices: list[_Slice], source: str, name: str, window: Window, convention: Convention, limit: int | None = None
) -> Volume:
    """One series' slices (any order) -> a Volume; raises _Unusable with the reason.

    Everything but the pixels comes from the headers; the size is checked against the limit before the pixels are
    decoded, one slice at a time, straight into the volume's display array.
    """
    first = slices[0].ds
    rows, cols = int(_first(first.get("Rows")) or 0), int(_first(first.get("Columns")) or 0)
    for sl in slices[1:]:
        r, c = int(_first(sl.ds.get("Rows")) or 0), int(_first(sl.ds.get("Columns")) or 0)
        if (r, c) != (rows, cols):
            raise _Unusable(
                f"slices of different sizes ({rows}x{cols} in {display_path(slices[0].path)}, {r}x{c} in "
                f"{display_path(sl.path)}); the series mixes images that do not form one volume"
            )
    max_voxels = volume_voxel_limit(limit)
    n_voxels = rows * cols * len(slices)
    if n_voxels > max_voxels:
        raise _Unusable(_over_limit(f"the series claims {len(slices)} slices of {rows} x {cols} pixels", n_voxels, max_voxels))
    geo: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for sl in slices:
        g = _geometry(sl)
        if g is None and len(slices) > 1:
            raise _Unusable(
                f"{display_path(sl.path)} lacks ImagePositionPatient/ImageOrientationPatient, so the slices cannot be "
                "put in order; re-export the series with its geometry"
            )
        if g is None:
            logger.warning("%s has no patient geometry; read as one axial slice", display_path(sl.path))
            spacing_2 = _floats(first.get("PixelSpacing"), 2)
            g = (np.array([1.0, 0, 0, 0, 1.0, 0]), np.zeros(3), spacing_2 if spacing_2 is not None else np.ones(2))
        geo.append(g)
    orient = [g[0] for g in geo]
    for sl, o in zip(slices, orient):
        if not np.allclose(o, orient[0], atol=1e-3):
            raise _Unusable(
                f"slices with different orientations ({display_path(slices[0].path)} and {display_path(sl.path)}: e.g. a "
                "localizer mixed into the series); export the axial (or one) stack as its own series"
            )
    row_dir, col_dir = orient[0][:3], orient[0][3:]
    normal = np.cross(row_dir, col_dir)
    if np.linalg.norm(normal) < 1e-6:
        raise _Unusable("ImageOrientationPatient has parallel row and column directions; the geometry is damaged")
    normal /= np.linalg.norm(normal)
    positions = np.array([g[1] for g in geo])
    along = positions @ normal
    order = np.argsort(along, kind="stable")
    along = along[order]
    if len(along) > 1:
        gaps = np.diff(along)
        if np.any(gaps < 1e-3):
            raise _Unusable(
                f"{len(slices)} images share {len(np.unique(np.round(along, 3)))} slice positions: several time points, "
                "echoes or repeated acquisitions in one series (4-D); export one time point or echo as its own series, "
                "or convert it with dcm2niix and extract one volume"
            )
        if gaps.max() - gaps.min() > 0.1 * float(np.median(gaps)):
            logger.warning(
                "%s: slice spacing is uneven (%.3g to %.3g mm: missing files?); the written volumes use the mean spacing",
                display_path(source),
                float(gaps.min()),
                float(gaps.max()),
            )
    ordered = [slices[int(i)] for i in order]
    spacing = geo[int(order[0])][2]
    # LPS affine of the source grid (i: column index, along row_dir; j: row index, along col_dir; k: slice order)
    origin = positions[int(order[0])]
    if len(ordered) > 1:
        step = (positions[int(order[-1])] - origin) / (len(ordered) - 1)
    else:
        thickness = _first(first.get("SpacingBetweenSlices")) or _first(first.get("SliceThickness")) or 1.0
        step = normal * abs(thickness)
    lps = np.eye(4)
    lps[:3, 0] = row_dir * spacing[1]
    lps[:3, 1] = col_dir * spacing[0]
    lps[:3, 2] = step
    lps[:3, 3] = origin
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    axes, flips = _display_mapping(affine, convention, source)
    grid = (cols, rows, len(ordered))  # source grid [i, j, k]: column, row, slice order
    voxels = _display_array(grid, axes)
    target = _source_view(voxels, axes, flips)
    for k, sl in enumerate(ordered):  # one slice's pixels in memory at a time
        target[:, :, k] = _pixels(sl, (rows, cols)).T
    _check_pixels(voxels, affine, axes, source)
    ds0 = ordered[0].ds
    center, width = _first(ds0.get("WindowCenter")), _first(ds0.get("WindowWidth"))
    dicom_window = (center, width) if center is not None and width is not None and width > 0 else None
    invert = str(ds0.get("PhotometricInterpretation", "")).strip().upper() == "MONOCHROME1"
    return Volume(
        source=source,
        name=name,
        series=str(ds0.get("SeriesInstanceUID", "")) or None,
        voxels=voxels,
        affine=affine,
        source_shape=grid,
        window=_resolve_window(voxels, window, dicom_window, source),
        convention=convention,
        _axes=axes,
        _flips=flips,
        _invert=invert,
    )


def _dicom_stem(path: str) -> str:
    name = os.path.basename(os.path.normpath(path))
    return name[: -len(ext)] if (ext := next((e for e in _DICOM_ENDINGS if name.lower().endswith(e)), "")) else name


def _read_dicom_group(
    files: Sequence[str], source: str, window: Window, convention: Convention, limit: int | None = None
) -> tuple[list[Volume], list[SkippedFile]]:
    """Every series among ``files`` (DICOM files of one folder, or one named file) as volumes; the rest reported."""
    skipped: list[SkippedFile] = []
    series: dict[str, list[_Slice]] = {}
    seen_sop: set[str] = set()
    for f in files:
        try:
            sl = _read_dicom_file(f, limit)
        except _Unusable as why:
            skipped.append(SkippedFile(f, str(why)))
            continue
        sop = str(sl.ds.get("SOPInstanceUID", "")) or f
        if sop in seen_sop:
            skipped.append(SkippedFile(f, "the same image (SOPInstanceUID) as another file of the series; duplicate ignored"))
            continue
        seen_sop.add(sop)
        series.setdefault(str(sl.ds.get("SeriesInstanceUID", "")), []).append(sl)
    volumes: list[Volume] = []
    stem = _dicom_stem(source)
    several = len(series) > 1
    for k, (uid, slices) in enumerate(
        sorted(series.items(), key=lambda kv: (_first(kv[1][0].ds.get("SeriesNumber")) or 0, kv[0]))
    ):
        number = _first(slices[0].ds.get("SeriesNumber"))
        label = f"{int(number)}" if number is not None and float(number).is_integer() else str(k + 1)
        name = f"{stem}_s{label}" if several else stem
        what = f"series {label}" + (f" ({uid})" if uid else "")
        try:
            volumes.append(_series_volume(slices, source, name, window, convention, limit))
        except _Unusable as why:
            skipped.append(SkippedFile(source, f"DICOM {what}: {why}"))
        except DataError as exc:
            skipped.append(SkippedFile(source, f"DICOM {what}: {exc}"))
    return volumes, skipped


# ---------------------------------------------------------------------------------------------------- public readers
def read_volume(
    path: str | os.PathLike[str],
    *,
    window: Window | None = None,
    convention: Convention = "radiological",
    max_voxels: int | None = None,
) -> Volume:
    """Read one NIfTI file, one DICOM file, or a folder holding exactly one DICOM series.

    Args:
        path: A ``.nii``/``.nii.gz`` file, a DICOM file, or a folder whose DICOM files (searched recursively,
            grouped by SeriesInstanceUID) form one series.
        window: How intensities become 8-bit pixels (:class:`Window`); default ``Window()`` (``"auto"``).
        convention: ``"radiological"`` (patient's right on the image's left) or ``"neurological"``.
        max_voxels: Largest volume read (default :func:`volume_voxel_limit`: :data:`MAX_VOLUME_VOXELS` unless
            the environment variable ``NEUROXAI_MAX_VOLUME_VOXELS`` sets another); a file claiming more is
            refused from its header, before anything is allocated.

    Returns:
        The :class:`Volume`, in display orientation.

    Raises:
        DataError: The file is unreadable or unsupported (4-D, compressed transfer syntax without a decoder,
            missing pixel data, several series in a folder, larger than ``max_voxels``, not a regular file ...):
            the message names the file and the fix. Also when pydicom/nibabel (the extra ``neuroxai[medical]``)
            is missing.

    Example:
        >>> vol = read_volume("brats/BraTS-001_t1ce.nii.gz")  # doctest: +SKIP
        >>> vol.voxels.shape, vol.window  # doctest: +SKIP
        ((155, 240, 240), (12.0, 1843.5))
    """
    given = os.fspath(path)
    shown = display_path(given)
    win = _check_settings(window, convention)
    limit = volume_voxel_limit(max_voxels)
    p = Path(given)
    if (special := special_file(given)) is not None:
        raise DataError(f"{shown}: {special}.")
    if p.is_file():
        if _is_nifti_name(given):
            return _read_nifti(given, win, convention, limit)
        if not is_dicom_file(given):
            raise DataError(
                f"{shown} is not a scanner file: expected a NIfTI file ({', '.join(MEDICAL_EXTENSIONS[:2])}), a DICOM file "
                "or a folder of one DICOM series. Read images with neuroxai.data.load_images."
            )
        files, source = [given], given
    elif p.is_dir():
        found = find_volumes([given])
        files, source = [f for group in found.dicom for f in group], given
        if not files:
            nifti = ", ".join(display_path(f) for f in found.nifti[:3])
            raise DataError(
                f"{shown} holds no DICOM files"
                + (f" but NIfTI files ({nifti}); name one file, or read them all with read_volumes." if nifti else "")
                + (
                    ""
                    if nifti
                    else "; give a NIfTI file, a DICOM file or a folder of one DICOM series (read_volumes for several)."
                )
            )
    else:
        raise DataError(f"{shown}: no such file or folder; give a NIfTI file, a DICOM file or a folder of one DICOM series.")
    volumes, skipped = _read_dicom_group(files, source, win, convention, limit)
    if len(volumes) > 1:
        raise DataError(
            f"{shown} holds {len(volumes)} DICOM series ({', '.join(v.name for v in volumes)}); read_volume reads one: "
            "name the folder or files of one series, or read them all with read_volumes."
        )
    if not volumes:
        first = skipped[0] if skipped else SkippedFile(given, "no readable DICOM image")
        raise DataError(f"Cannot read {display_path(first.path)}: {first.reason}")
    _log_skipped(skipped)  # files beside the series that are not part of it
    return volumes[0]


def _unique_names(volumes: list[Volume]) -> list[Volume]:
    """``volumes`` with names made unique ignoring case (``t1``, ``T1_2``): output files never clash."""
    taken: set[str] = set()
    out: list[Volume] = []
    for v in volumes:
        name, n = v.name, 2
        while name.lower() in taken:
            name, n = f"{v.name}_{n}", n + 1
        taken.add(name.lower())
        out.append(v if name == v.name else dataclasses.replace(v, name=name))
    return out


def read_volumes(
    inputs: Iterable[str | os.PathLike[str]],
    *,
    window: Window | None = None,
    convention: Convention = "radiological",
    max_voxels: int | None = None,
) -> tuple[list[Volume], list[SkippedFile]]:
    """Every volume in ``inputs`` (a folder with several DICOM series gives several); bad ones skipped and reported.

    Inputs are expanded with :func:`find_volumes`; each NIfTI file is one volume, each folder's DICOM files
    are grouped by series. A file or series that cannot be read (4-D, compressed without a decoder, missing
    pixel data, not DICOM after all ...) is skipped with the reason; the others are read. Names
    (:attr:`Volume.name`) are made unique, ignoring case, by appending ``_2``, ``_3`` ... where two would clash.

    Args:
        inputs: NIfTI files, DICOM files and folders.
        window: How intensities become 8-bit pixels; default ``Window()``.
        convention: ``"radiological"`` or ``"neurological"`` columns.
        max_voxels: Largest volume read (see :func:`read_volume`); larger ones are skipped with the reason.

    Returns:
        ``(volumes, skipped)``: the volumes in a stable order, and each missing input, unreadable file or
        series with the reason. (Files that are neither scanner files nor images are in
        :attr:`VolumeFiles.ignored` of :func:`find_volumes`; they are logged, not returned here.)

    Raises:
        DataError: A setting is invalid, or pydicom/nibabel (the extra ``neuroxai[medical]``) is missing.
    """
    _check_settings(window, convention)  # before any file is looked at
    volume_voxel_limit(max_voxels)
    given = [os.fspath(i) for i in inputs]
    found = find_volumes(given)
    for s in found.ignored:
        logger.info("%s: %s", display_path(s.path), s.reason)
    volumes: list[Volume] = []
    skipped: list[SkippedFile] = list(found.missing)
    for vols, bad in iter_volumes(found, window=window, convention=convention, named=given, max_voxels=max_voxels):
        volumes.extend(vols)
        skipped.extend(bad)
    return _unique_names(volumes), skipped


def iter_volumes(
    found: VolumeFiles,
    *,
    window: Window | None = None,
    convention: Convention = "radiological",
    named: Iterable[str | os.PathLike[str]] = (),
    max_voxels: int | None = None,
) -> Iterator[tuple[list[Volume], list[SkippedFile]]]:
    """Read what :func:`find_volumes` found one unit at a time: ``(volumes, skipped)`` per NIfTI file or DICOM group.

    For long jobs that must not hold every volume in memory (``neuroxai predict``/``explain`` read one
    unit while the model works on the last). A DICOM group's source is its folder, except a single file
    named on its own in ``named`` (then the file). Unreadable units (also those larger than ``max_voxels``,
    see :func:`read_volume`) are skipped with the reason, which the caller reports (it is logged at debug
    level only, so it is not said twice); nothing raises for a bad file. Names are not made unique across
    units (:func:`read_volumes` does).

    Raises:
        DataError: A setting is invalid, or pydicom/nibabel (the extra ``neuroxai[medical]``) is missing.
    """
    win = _check_settings(window, convention)
    limit = volume_voxel_limit(max_voxels)
    explicit = {os.path.realpath(g) for g in (os.fspath(n) for n in named) if os.path.isfile(g)}
    for f in found.nifti:
        try:
            vols, bad = [_read_nifti(f, win, convention, limit)], []
        except DataError as exc:
            if "optional extra" in str(exc):
                raise
            vols, bad = [], [SkippedFile(f, str(exc))]
        _log_skipped(bad, logging.DEBUG)  # returned: the caller reports them
        yield vols, bad
    for group in found.dicom:
        # a DICOM file named on its own is its own source; files found in a folder (or named with others) belong to the folder
        source = group[0] if len(group) == 1 and os.path.realpath(group[0]) in explicit else (os.path.dirname(group[0]) or ".")
        vols, bad = _read_dicom_group(group, source, win, convention, limit)
        _log_skipped(bad, logging.DEBUG)
        yield vols, bad


def _check_settings(window: Window | None, convention: str) -> Window:
    win = Window() if window is None else window
    _check_window(win)
    if convention not in _DISPLAY:
        raise DataError(f"Unknown convention {convention!r}; expected 'radiological' or 'neurological'.")
    return win


def _log_skipped(skipped: list[SkippedFile], level: int = logging.WARNING) -> None:
    for s in skipped:
        logger.log(level, "Skipped %s: %s", display_path(s.path), s.reason)


# ---------------------------------------------------------------------------------------------------- slices and writing
def brain_slices(slices: np.ndarray, *, level: int = 25, min_fraction: float = 0.05) -> np.ndarray:
    """Which slices hold brain: bool ``[Z]``, True where at least ``min_fraction`` of a uint8 slice's pixels exceed ``level``.

    The foreground test is deliberately simple: a slice counts as brain when enough of its windowed pixels
    (``Volume.slices_uint8()``, 0..255) are brighter than a dark-background level. With the defaults, a
    slice qualifies when more than 5% of its pixels exceed 25 (about 10% of full scale). It drops the
    empty slices above the head and below the skull base, and slices cut through the neck or the scalp
    only; it does not find brain tissue as such (no skull stripping, no segmentation), so a slice of neck
    or skull with enough bright area still counts. Thresholds are in windowed pixel values, so they depend
    on the window.

    Args:
        slices: uint8 ``[Z, H, W]`` (a single ``[H, W]`` slice is treated as ``[1, H, W]``).
        level: Pixel value a foreground pixel must exceed (0..254).
        min_fraction: Fraction of a slice's pixels that must be foreground (0..1).

    Returns:
        bool ``[Z]``.

    Raises:
        DataError: ``slices`` is not 2-D or 3-D, or the settings are out of range.
    """
    arr = np.asarray(slices)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise DataError(f"brain_slices expects uint8 slices [Z, H, W]; got an array of shape {arr.shape}.")
    if not 0 <= level < 255 or not 0.0 <= min_fraction <= 1.0:
        raise DataError(
            f"brain_slices needs 0 <= level < 255 and 0 <= min_fraction <= 1; got level={level}, min_fraction={min_fraction}."
        )
    if arr.shape[0] == 0 or arr.shape[1] * arr.shape[2] == 0:
        return np.zeros(arr.shape[0], dtype=bool)
    per_slice = arr.shape[1] * arr.shape[2]
    counts = np.zeros(arr.shape[0], dtype=np.int64)
    for start, stop in _blocks(arr.shape[0], per_slice):  # a block of slices at a time: no volume-sized mask
        counts[start:stop] = np.count_nonzero(arr[start:stop].reshape(stop - start, -1) > level, axis=1)
    return np.asarray(counts >= min_fraction * per_slice, dtype=bool)


def _is_our_nifti(path: Path) -> bool:
    nib = _nibabel()
    img = nib.load(str(path))
    descrip = bytes(np.asarray(img.header["descrip"]).tobytes())
    return descrip.startswith(_NIFTI_MARK)


def write_nifti(path: str | os.PathLike[str], stack: np.ndarray, volume: Volume, *, overwrite: bool = False) -> None:
    """Write a display-orientation float array ``[Z, H, W]`` as NIfTI on ``volume``'s source grid and affine (atomic).

    The file overlays the scan it came from in 3D Slicer, ITK-SNAP or FSLeyes: it has the source grid's
    shape (:attr:`Volume.source_shape`) and affine; for a NIfTI input, the input's own qform and sform
    (with their codes) and spatial units. Voxels are float32. The file is written to a temporary name and
    renamed into place, never over an input; the voxels are written a slab at a time from ``stack`` (no
    reordered or serialised copy of the whole volume in memory).

    Args:
        path: The file to write: ``.nii`` or ``.nii.gz`` (gzip-compressed).
        stack: float ``[Z, H, W]`` in the display orientation of ``volume.voxels`` (e.g. heatmaps).
        volume: The volume ``stack`` belongs to.
        overwrite: Replace a NIfTI file neuroxai wrote earlier (a file neuroxai did not write is never replaced).

    Raises:
        DataError: ``stack`` does not match ``volume``, ``path`` is not a NIfTI name, or the volume's affine
            cannot be stored in a NIfTI header (singular or not finite: a scan whose orientation is damaged).
        OutputError: ``path`` is an input, exists (without ``overwrite``) or cannot be written.
    """
    nib = _nibabel()
    target = os.fspath(path)
    if not _is_nifti_name(target):
        raise DataError(f"write_nifti writes .nii or .nii.gz files; got {display_path(target)}. Add one of these endings.")
    data = volume.to_source(np.asarray(stack, dtype=np.float32))  # a view: the source grid's axis order, not a copy
    if data.shape != tuple(volume.source_shape):
        raise DataError(f"Expected the source shape {volume.source_shape} of {display_path(volume.source)}; got {data.shape}.")
    out = prepare_output_file(target, inputs=[volume.source], overwrite=overwrite, ours=_is_our_nifti, flag="path")
    try:
        with np.errstate(invalid="ignore", divide="ignore"):  # a NaN affine: one clear error below, no warnings
            img = nib.Nifti1Image(data, affine=None)
            hdr = img.header
            geo = volume._nifti
            if geo is not None:
                img.set_qform(geo.qform, code=geo.qform_code)
                img.set_sform(geo.sform, code=geo.sform_code)
                hdr["xyzt_units"] = geo.xyzt_units
            else:
                img.set_qform(volume.affine, code=1)
                img.set_sform(volume.affine, code=1)
                hdr.set_xyzt_units("mm")
    except (nib.spatialimages.HeaderDataError, ValueError, np.linalg.LinAlgError) as exc:
        raise DataError(
            f"Cannot write {display_path(target)}: the affine of {display_path(volume.source)} cannot be stored in a NIfTI "
            f"header ({type(exc).__name__}: {(str(exc).splitlines() or [''])[0].rstrip(':')}); its orientation is damaged (singular or "
            "not finite). Fix the scan's header (e.g. fslorient or nibabel) or re-export it."
        ) from exc
    hdr.set_data_dtype(np.float32)
    hdr["descrip"] = _NIFTI_MARK + b" " + volume.name.encode("utf-8", "replace")[:70]
    with atomic_path(out) as tmp, open(tmp, "wb") as raw:
        if target.lower().endswith(".gz"):
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0) as packed:
                img.to_file_map({"image": nib.FileHolder(fileobj=packed)})  # the header, then the voxels slab by slab
        else:
            img.to_file_map({"image": nib.FileHolder(fileobj=raw)})
