"""Which files are images: the one rule used by the Dataset scan, ``neuroxai explain`` and ``neuroxai predict``.

A file found inside a folder is an image when

- its name ends in one of :data:`IMAGE_EXTENSIONS` (any case),
- it is not a scanner file: NIfTI (``.nii``, ``.nii.gz``) and DICOM files (``.dcm``,
  ``.dicom``, ``.ima``, or any other name with the ``DICM`` marker at byte 128) are
  volumes, listed apart (:attr:`FolderContents.volumes`, :attr:`ImageFiles.volumes`)
  and read by :func:`neuroxai.data.read_volume`,
- it is not hidden: its name does not start with ``.`` and is not operating-system
  debris (``__MACOSX``, ``Thumbs.db``, ``desktop.ini``); files inside hidden
  folders are never read,
- it is not a mask: its stem does not end in :data:`MASK_SUFFIX` (any case),
  e.g. ``Tr-gl-0001_mask.png`` or ``B_MASK.PNG``,
- it is not inside a folder neuroxai wrote (a run directory or an output
  folder: :func:`neuroxai._io.is_output_dir`), nor reached through a symbolic
  link to a folder (not followed; reported),
- it is a regular file: named pipes (FIFOs), sockets and devices are never
  opened (opening a pipe waits for a writer forever), found or named; they are
  skipped and reported with what they are (:func:`special_file`).

A file named explicitly (not found inside a folder) is always taken: the user
asked for it, and reading it reports why it cannot be used. A scanner file named
explicitly is listed among the volumes instead of the images.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from neuroxai._io import is_output_dir
from neuroxai._records import Record

__all__ = [
    "IMAGE_EXTENSIONS",
    "MASK_SUFFIX",
    "MEDICAL_EXTENSIONS",
    "FolderContents",
    "ImageFile",
    "ImageFiles",
    "SkippedFile",
    "file_kind",
    "find_images",
    "has_dicom_marker",
    "is_hidden",
    "special_file",
    "walk_folder",
]

#: File name endings read as images (case-insensitive).
IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".tif", ".tiff", ".gif", ".webp"})

#: Stem ending that marks a mask file (case-insensitive): ``<image stem>_mask.<ext>``.
MASK_SUFFIX = "_mask"

# Operating-system debris (compared lower-case); names starting with "." are hidden too.
_DEBRIS = frozenset({"__macosx", "thumbs.db", "desktop.ini"})

#: File name endings read as scanner files (case-insensitive). DICOM files with another name are
#: recognised by the ``DICM`` marker at byte 128 (:func:`has_dicom_marker`).
MEDICAL_EXTENSIONS: tuple[str, ...] = (".nii", ".nii.gz", ".dcm", ".dicom", ".ima")

FileKind = Literal["image", "mask", "volume", "hidden", "other"]


@dataclass(frozen=True)
class SkippedFile(Record):
    """A file that was not used, and why.

    Attributes:
        path: The file or folder, as found on disk (or as listed in a manifest).
        reason: What was wrong and how to fix it.
    """

    path: str
    reason: str


def is_hidden(name: str) -> bool:
    """True for hidden names (``.DS_Store``, ``.ipynb_checkpoints``) and OS debris (``__MACOSX``, ``Thumbs.db``)."""
    return name.startswith(".") or name.lower() in _DEBRIS


_SPECIAL_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def special_file(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` must not be opened as a data file, or ``None`` for a regular file (or a link to one) and a folder.

    Named pipes, sockets and devices are never opened: reading a pipe waits for a writer that may never come, and
    a device may never end. A missing path also gives ``None`` (its reader reports it).

    Example:
        >>> special_file("/dev/null")
        'a character device, not a regular file; skipped (only regular files are read)'
    """
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):  # missing, a broken link, no permission, a NUL byte: the reader says why
        return None
    for test, what in _SPECIAL_KINDS:
        if test(mode):
            return f"{what}, not a regular file; skipped (only regular files are read)"
    return None


def has_dicom_marker(path: str | os.PathLike[str]) -> bool:
    """True when the file holds the DICOM part-10 marker ``DICM`` at byte 128 (False when unreadable or not a regular file)."""
    if special_file(path) is not None:  # never open a pipe: it would wait for a writer
        return False
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except (OSError, ValueError):
        return False


def file_kind(name: str) -> FileKind:
    """What a file found inside a folder is, from its name alone.

    Args:
        name: The file name (a path works too; only its last part is used).

    Returns:
        ``"hidden"``, ``"volume"`` (a scanner file name: :data:`MEDICAL_EXTENSIONS`), ``"other"``
        (not an image extension; the name alone cannot tell an extension-less DICOM file, see
        :func:`has_dicom_marker`), ``"mask"`` (``<stem>_mask.<ext>``, any case) or ``"image"``, checked in that order.

    Example:
        >>> [file_kind(n) for n in ("a.PNG", "B_MASK.png", ".a.png", "notes.txt", "t1.nii.gz")]
        ['image', 'mask', 'hidden', 'other', 'volume']
    """
    base = os.path.basename(name)
    if is_hidden(base):
        return "hidden"
    if base.lower().endswith(MEDICAL_EXTENSIONS):
        return "volume"
    stem, ext = os.path.splitext(base)
    if ext.lower() not in IMAGE_EXTENSIONS:
        return "other"
    if stem.lower().endswith(MASK_SUFFIX):
        return "mask"
    return "image"


def _count_files(folder: str) -> int:
    return sum(len(files) for _, _, files in os.walk(folder))


@dataclass
class FolderContents:
    """The files of one folder, sorted by name, as :func:`walk_folder` classifies them.

    Attributes:
        path: The folder.
        images: ``(stem, path)`` of each image.
        masks: ``{image stem: mask path}`` for each ``<stem>_mask.<ext>`` file.
        skipped: Hidden files and folders and files that are neither images nor scanner files, with the reason.
        volumes: Scanner files (NIfTI, DICOM by name or by its ``DICM`` marker), not read as images.
    """

    path: str
    images: list[tuple[str, str]] = field(default_factory=list)
    masks: dict[str, str] = field(default_factory=dict)
    skipped: list[SkippedFile] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)


def walk_folder(folder: str | os.PathLike[str]) -> Iterator[FolderContents]:
    """Walk ``folder`` recursively in sorted order, classifying every file with :func:`file_kind`.

    Hidden sub-folders are not entered; each is reported once in ``skipped``.

    Args:
        folder: The folder to walk.

    Yields:
        One :class:`FolderContents` per folder visited, parents before children.
    """
    for dirpath, dirnames, filenames in os.walk(folder):
        here = FolderContents(dirpath)
        dirnames.sort()
        for d in list(dirnames):
            full = os.path.join(dirpath, d)
            if is_hidden(d):
                dirnames.remove(d)
                here.skipped.append(
                    SkippedFile(full, f"hidden folder ({_count_files(full)} files inside not counted as samples)")
                )
            elif os.path.islink(full):  # os.walk does not follow it; say so
                dirnames.remove(d)
                here.skipped.append(
                    SkippedFile(full, "symbolic link to a folder; not followed (copy or move the images into the folder instead)")
                )
            elif is_output_dir(full):
                dirnames.remove(d)
                here.skipped.append(SkippedFile(full, "a folder neuroxai wrote (run or outputs); its files are not samples"))
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            kind = file_kind(name)
            if kind == "hidden":
                here.skipped.append(SkippedFile(full, "hidden file; not counted as a sample"))
            elif (special := special_file(full)) is not None:  # before anything opens it (a pipe would hang)
                here.skipped.append(SkippedFile(full, special))
            elif kind == "volume" or (kind == "other" and has_dicom_marker(full)):
                here.volumes.append(full)
            elif kind == "other":
                ext = os.path.splitext(name)[1] or "no extension"
                here.skipped.append(
                    SkippedFile(full, f"not an image file ({ext}); expected one of {', '.join(sorted(IMAGE_EXTENSIONS))}")
                )
            else:
                stem = os.path.splitext(name)[0]
                if kind == "mask":
                    here.masks[stem[: -len(MASK_SUFFIX)]] = full
                else:
                    here.images.append((stem, full))
        yield here


@dataclass(frozen=True)
class ImageFile(Record):
    """One image file to read, with a stable name for what is written about it.

    Attributes:
        path: The file.
        stem: A name unique among the files found together, for output files
            (overlays): the file's stem for a file given directly, the path
            relative to the given folder joined with ``__`` for a file found
            inside a folder (``scans/a/x.png`` given as ``scans`` -> ``a__x``);
            ``_2``, ``_3`` ... is appended where two files would share one.
    """

    path: str
    stem: str


@dataclass(frozen=True)
class ImageFiles(Record):
    """What :func:`find_images` found.

    Attributes:
        files: The image files, in a stable order (inputs in the order given;
            inside a folder, sorted by path); each file once.
        missing: ``(path, reason)`` for each input that does not exist, and each file,
            named or found in a folder, that is a named pipe, socket or device (never
            opened): the files a caller reports as skipped.
        ignored: Files inside the given folders that are not images (hidden,
            other extensions, masks), with the reason.
        volumes: Scanner files (NIfTI, DICOM) named or found: not images; read them with
            :func:`neuroxai.data.read_volumes` (:func:`neuroxai.data.find_volumes` groups them into volumes).
    """

    files: tuple[ImageFile, ...]
    missing: tuple[SkippedFile, ...] = ()
    ignored: tuple[SkippedFile, ...] = ()
    volumes: tuple[str, ...] = ()

    @property
    def paths(self) -> list[str]:
        """The paths of :attr:`files`, in order."""
        return [f.path for f in self.files]


def find_images(inputs: Iterable[str | os.PathLike[str]]) -> ImageFiles:
    """Expand files and folders into the image files to read.

    Files named directly are always taken (scanner files among them go to
    :attr:`ImageFiles.volumes`). Folders are searched recursively and keep only
    image files (see the module rules: image extension, not hidden, not a
    ``*_mask`` file, not a scanner file; hidden sub-folders are not entered).
    The same file reached twice is listed once.

    Args:
        inputs: Image files and/or folders.

    Returns:
        An :class:`ImageFiles`: files with a unique output stem each, inputs
        that do not exist, and the files of the folders that were left out.

    Example:
        >>> found = find_images(["scans/", "extra.png"])  # doctest: +SKIP
        >>> [(f.path, f.stem) for f in found.files]  # doctest: +SKIP
        [('scans/a/x.png', 'a__x'), ('scans/y.png', 'y'), ('extra.png', 'extra')]
    """
    pairs: list[tuple[str, str]] = []
    missing: list[SkippedFile] = []
    ignored: list[SkippedFile] = []
    volumes: list[str] = []
    for raw in inputs:
        given = os.fspath(raw)
        p = Path(given)
        if (special := special_file(given)) is not None:
            missing.append(SkippedFile(given, special))
        elif p.is_file():
            kind = file_kind(given)
            if kind == "volume" or (kind == "other" and has_dicom_marker(given)):
                volumes.append(given)
            else:
                pairs.append((given, p.stem))
        elif p.is_dir():
            inside: list[tuple[tuple[str, ...], str]] = []
            for contents in walk_folder(given):
                for skip in contents.skipped:  # pipes, sockets, devices are reported; hidden files and the like are not
                    (missing if special_file(skip.path) is not None else ignored).append(skip)
                volumes.extend(contents.volumes)
                ignored.extend(
                    SkippedFile(path, "mask file (<image>_mask.<ext>); not read as an image") for path in contents.masks.values()
                )
                inside.extend((Path(path).relative_to(p).parts, path) for _stem, path in contents.images)
            for parts, path in sorted(inside):
                pairs.append((path, "__".join((*parts[:-1], os.path.splitext(parts[-1])[0]))))
        else:
            missing.append(SkippedFile(given, "no such file or folder"))
    files: list[ImageFile] = []
    seen_paths: set[str] = set()
    used: set[str] = set()
    for path, stem in pairs:
        key = os.path.realpath(path)
        if key in seen_paths:
            continue
        seen_paths.add(key)
        name, n = stem, 2
        while name in used:
            name, n = f"{stem}_{n}", n + 1
        used.add(name)
        files.append(ImageFile(path, name))
    return ImageFiles(tuple(files), tuple(missing), tuple(ignored), tuple(dict.fromkeys(volumes)))
