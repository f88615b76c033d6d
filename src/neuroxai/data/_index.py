"""Finding samples on disk: Kaggle layout, a folder of class folders, or a CSV manifest.

Which files are images, hidden or masks is decided in :mod:`neuroxai.data._files`.
Mask convention (folders): a mask sits beside its image and is named after it
with ``_mask`` added to the stem (any case), in any image format:
``Tr-gl-0001.jpg`` -> ``Tr-gl-0001_mask.png``. Mask files are never counted as samples.

Groups (manifests): a ``patient``, ``group`` or ``groups`` column gives each
row a group; carved splits keep every group on one side.

Scanner volumes: a class folder's NIfTI files, and each of its folders holding
DICOM files, are volumes whose slices with brain become samples; a manifest row
may name a volume (a NIfTI file, a DICOM file or a DICOM series folder) with an
optional ``slice`` cell (``12``, ``10:20``; empty: every slice with brain).
Such an entry is expanded into one entry per slice when the volume is read
(:mod:`neuroxai.data._slices`); the slices of one volume share a group.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from neuroxai._io import display_path, is_output_dir
from neuroxai.data._files import FolderContents, SkippedFile, file_kind, has_dicom_marker, is_hidden, walk_folder
from neuroxai.data._slices import SliceRange, SliceRef, VolumeRequest
from neuroxai.errors import DataError

__all__ = ["Entry", "RawIndex", "scan"]

TRAIN_NAMES = frozenset({"training", "train"})
TEST_NAMES = frozenset({"testing", "test"})
VAL_NAMES = frozenset({"validation", "val", "valid"})
_SPLIT_ALIASES = {
    **dict.fromkeys(TRAIN_NAMES, "train"),
    **dict.fromkeys(TEST_NAMES, "test"),
    **dict.fromkeys(VAL_NAMES, "val"),
}


@dataclass
class Entry:
    """One candidate sample before its file is read.

    A scanner volume (NIfTI file, DICOM file or DICOM series folder) is one entry with ``volume`` set (which
    slices it asks for); indexing expands it into one entry per slice, each with ``slice`` set.
    """

    path: str
    label: str
    split: str | None
    mask: str | None = None
    group: str | None = None
    volume: VolumeRequest | None = None
    slice: SliceRef | None = None


@dataclass
class RawIndex:
    """Candidate samples, files skipped while scanning, and the layout found."""

    entries: list[Entry]
    skipped: list[SkippedFile]
    layout: str
    class_names: tuple[str, ...]
    group_column: str | None = None


def _volume_entries(contents: FolderContents, label: str, split: str | None) -> list[Entry]:
    """One entry per NIfTI file of a folder, and one for the folder itself when it holds DICOM files (every brain slice)."""
    nifti = [p for p in contents.volumes if p.lower().endswith((".nii", ".nii.gz"))]
    volumes = nifti + ([contents.path] if len(nifti) < len(contents.volumes) else [])
    # the slices of one volume share a group (the volume), so carved splits never cut a volume in two
    return [Entry(v, label, split, group=v, volume=VolumeRequest(v, None)) for v in volumes]


def _scan_class_folder(folder: Path, label: str, split: str | None, skipped: list[SkippedFile]) -> list[Entry]:
    """All images under ``folder`` (recursively), pairing ``<stem>_mask.*`` masks; scanner volumes too."""
    entries: list[Entry] = []
    for contents in walk_folder(folder):
        skipped.extend(contents.skipped)
        if contents.volumes:
            entries.extend(_volume_entries(contents, label, split))
        used: set[str] = set()
        for stem, full in contents.images:
            mask = contents.masks.get(stem)
            if mask is not None:
                used.add(stem)
            entries.append(Entry(full, label, split, mask))
        for stem, full in contents.masks.items():
            if stem not in used:
                skipped.append(
                    SkippedFile(full, f"mask with no image beside it (expected an image named {stem}.<ext>); not used")
                )
    return entries


#: Folders of a run directory (written by neuroxai) that are never classes, even when the run lies in the data.
RUN_FOLDERS = frozenset({"checkpoints", "logs", "backup"})


def _linked_class_dir(child: Path, root: Path, allow_outside_root: bool) -> Path:
    """The folder a symbolic link to a class folder points at, when it is inside the data root (or allowed); else a DataError."""
    try:
        target = child.resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise DataError(
            f"Class folder {child} is a symbolic link that loops or points nowhere ({exc}). Remove the link or point it at "
            "a folder of images inside the data folder."
        ) from exc
    top = root.resolve()
    if not allow_outside_root and target != top and top not in target.parents:
        raise DataError(
            f"Class folder {child} is a symbolic link to {target}, outside the data folder {root}. Move or copy the images "
            f"into {root}, or allow it explicitly with Dataset(..., allow_outside_root=True) (--allow-outside-root)."
        )
    return target


def _class_dirs(
    folder: Path, skipped: list[SkippedFile], root: Path | None = None, allow_outside_root: bool = False
) -> list[Path]:
    root = folder if root is None else root
    dirs: list[Path] = []
    ours = is_output_dir(folder)  # a run directory written into the data: its folders are not classes
    targets: dict[Path, Path] = {}
    for child in sorted(folder.iterdir(), key=lambda p: p.name):
        if child.is_symlink() and not is_hidden(child.name):
            target = _linked_class_dir(child, root, allow_outside_root)
            if not target.is_dir():
                skipped.append(SkippedFile(str(child), "symbolic link to a file outside any class folder; not a sample"))
                continue
            targets[child] = target
        if is_hidden(child.name):
            if child.is_dir():
                n = sum(len(f) for _, _, f in os.walk(child))
                skipped.append(SkippedFile(str(child), f"hidden folder ({n} files inside not counted as samples)"))
            else:
                skipped.append(SkippedFile(str(child), "hidden file; not counted as a sample"))
        elif child.is_dir() and (is_output_dir(child) or (ours and child.name in RUN_FOLDERS)):
            skipped.append(SkippedFile(str(child), "a folder neuroxai wrote (run or outputs); not a class folder"))
        elif child.is_dir():
            dirs.append(child)
        else:
            skipped.append(SkippedFile(str(child), "file outside any class folder; not counted as a sample"))
    real = {d.resolve(): d for d in dirs if d not in targets}
    for link, target in targets.items():
        twin = real.get(target)
        if twin is not None:
            raise DataError(
                f"Class folder {link} is a symbolic link to the class folder {twin}: the same images would count as two "
                "classes. Remove the link."
            )
    return dirs


def _scan_split_folder(
    folder: Path, split: str | None, skipped: list[SkippedFile], root: Path | None = None, allow_outside_root: bool = False
) -> dict[str, list[Entry]]:
    dirs = _class_dirs(folder, skipped, root, allow_outside_root)
    if not dirs:
        loose = [s for s in skipped if os.path.dirname(s.path) == str(folder) and file_kind(s.path) in ("image", "mask")]
        hint = " It holds image files directly; move them into one folder per class." if loose else ""
        raise DataError(f"No class folders in {folder}: expected one sub-folder per class (e.g. {folder}/glioma/*.jpg).{hint}")
    out: dict[str, list[Entry]] = {}
    for d in dirs:
        entries = _scan_class_folder(d, d.name, split, skipped)
        if not entries:
            raise DataError(
                f"Class folder {d} holds no image files (expected .jpg, .png, .bmp or .tif files, or NIfTI/DICOM scans). "
                "Add images to it or remove the folder."
            )
        out[d.name] = entries
    return out


def _scan_folders(root: Path, allow_outside_root: bool = False) -> RawIndex:
    skipped: list[SkippedFile] = []
    children = {c.name.lower(): c for c in sorted(root.iterdir()) if c.is_dir() and not is_hidden(c.name)}
    train = next((children[n] for n in ("training", "train") if n in children), None)
    test = next((children[n] for n in ("testing", "test") if n in children), None)
    val = next((children[n] for n in ("validation", "val", "valid") if n in children), None)
    other = test or val
    if train is None and other is not None:
        raise DataError(
            f"{root} has a {other.name}/ folder but no Training/ (or train/) folder; "
            "add the training images as Training/<class>/*.jpg."
        )
    if train is None:
        by_class = _scan_split_folder(root, None, skipped, root, allow_outside_root)
        entries = [e for name in sorted(by_class) for e in by_class[name]]
        return RawIndex(entries, skipped, "class-folders", tuple(sorted(by_class)))
    # Kaggle layout: the root's own loose files and other folders are not samples.
    for child in sorted(root.iterdir()):
        if child in (train, test, val):
            continue
        kind = "hidden " if is_hidden(child.name) else ""
        what = "folder" if child.is_dir() else "file"
        skipped.append(SkippedFile(str(child), f"{kind}{what} beside the split folders; not counted as samples"))
    train_classes = _scan_split_folder(train, "train", skipped, root, allow_outside_root)
    class_names = tuple(sorted(train_classes))
    lookup = {c.lower(): c for c in class_names}
    entries = [e for name in class_names for e in train_classes[name]]
    for folder, split in ((val, "val"), (test, "test")):
        if folder is None:
            continue
        found = _scan_split_folder(folder, split, skipped, root, allow_outside_root)
        for name in sorted(found):
            canon = lookup.get(name.lower())
            if canon is None:
                raise DataError(
                    f"Class folder {folder / name} is not a class of the training set {train}: "
                    f"training classes are {', '.join(class_names)}. Rename it to a training class "
                    f"or add {train / name} with training images."
                )
            for e in found[name]:
                e.label = canon
                entries.append(e)
    layout = "kaggle" if test is not None else "train-only"
    return RawIndex(entries, skipped, layout, class_names)


_PATH_COLS = ("path", "image", "file", "filename", "filepath")
_LABEL_COLS = ("label", "class", "diagnosis")
#: Manifest columns read as the group of a row (first one present wins).
GROUP_COLUMNS = ("patient", "group", "groups")


def _inside(path: str, base: Path) -> bool:
    """Whether ``path`` (symbolic links resolved) lies inside the folder ``base``."""
    real, top = os.path.realpath(path), os.path.realpath(base)
    return real == top or real.startswith(top.rstrip(os.sep) + os.sep)


def _is_volume_file(path: str) -> bool:
    """A NIfTI or DICOM file by its name, or a DICOM file by its ``DICM`` marker (an image name is never opened)."""
    kind = file_kind(path)
    return kind == "volume" or (kind == "other" and has_dicom_marker(path))


def _scan_manifest(csv_path: Path, allow_outside_root: bool = False) -> RawIndex:
    base = csv_path.parent
    skipped: list[SkippedFile] = []
    outside: list[str] = []
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"Cannot read manifest {csv_path}: {exc}. Expected a UTF-8 CSV file.") from exc
    if not rows:
        raise DataError(
            f"Manifest {csv_path} is empty; expected a header row 'path,label[,split][,mask][,patient]' and one row per image."
        )
    header = [h.strip().lower() for h in rows[0]]
    col_path = next((header.index(c) for c in _PATH_COLS if c in header), None)
    col_label = next((header.index(c) for c in _LABEL_COLS if c in header), None)
    if col_path is None or col_label is None:
        raise DataError(
            f"Manifest {csv_path} has columns {rows[0]}; expected a header with 'path' and 'label' "
            "(and optionally 'split', 'mask', 'patient' or 'group', and 'slice' for volumes), paths relative to the CSV file."
        )
    col_split = header.index("split") if "split" in header else None
    col_mask = header.index("mask") if "mask" in header else None
    col_slice = header.index("slice") if "slice" in header else None
    group_column = next((c for c in GROUP_COLUMNS if c in header), None)
    col_group = header.index(group_column) if group_column is not None else None

    def cell(row: list[str], col: int | None) -> str:
        return row[col].strip() if col is not None and col < len(row) else ""

    entries: list[Entry] = []
    for lineno, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        where = f"{csv_path.name} line {lineno}"

        rel, label = cell(row, col_path), cell(row, col_label)
        for what, value in (("path", rel), ("mask", cell(row, col_mask))):
            if "\x00" in value:  # no file name can hold one; os calls would fail with a bare ValueError
                raise DataError(
                    f"Manifest {display_path(csv_path)} line {lineno}: the {what} {value!r} holds a NUL byte, which no file "
                    "name can contain (a damaged or binary manifest?); fix or delete the row."
                )
        if not rel:
            skipped.append(SkippedFile(f"{csv_path}:{lineno}", f"{where}: empty path; fill in the image path"))
            continue
        full = str(base / rel) if not os.path.isabs(rel) else rel
        if not allow_outside_root and not _inside(full, base):
            outside.append(f"{where}: {rel!r}")
            continue
        if not label:
            skipped.append(SkippedFile(full, f"{where}: empty label; fill in the class name"))
            continue
        split = None
        raw_split = cell(row, col_split)
        if raw_split:
            split = _SPLIT_ALIASES.get(raw_split.lower())
            if split is None:
                skipped.append(
                    SkippedFile(full, f"{where}: unknown split {raw_split!r}; use train, val or test (or leave it empty)")
                )
                continue
        raw_slice = cell(row, col_slice)
        if os.path.isdir(full) or (os.path.isfile(full) and _is_volume_file(full)):
            wanted = SliceRange.parse(raw_slice)
            if isinstance(wanted, str):
                skipped.append(SkippedFile(full, f"{where}: {wanted}"))
                continue
            if cell(row, col_mask):
                skipped.append(
                    SkippedFile(
                        f"{csv_path}:{lineno}",
                        f"{where}: a mask for a volume's slices is not read; its slices are kept without a mask",
                    )
                )
            # the slices of one volume share a group (the row's patient, else the volume): carving never cuts it in two
            group = cell(row, col_group) or full
            entries.append(Entry(full, label, split, None, group, volume=VolumeRequest(full, wanted)))
            continue
        if not os.path.isfile(full):
            skipped.append(SkippedFile(full, f"{where} lists this file but it does not exist; fix the path (relative to {base})"))
            continue
        if raw_slice:
            skipped.append(
                SkippedFile(
                    full,
                    f"{where}: slice {raw_slice!r} given for a file that is not a NIfTI or DICOM volume; "
                    "empty the slice cell for an image file",
                )
            )
            continue
        mask = None
        raw_mask = cell(row, col_mask)
        if raw_mask:
            mask = str(base / raw_mask) if not os.path.isabs(raw_mask) else raw_mask
            if not allow_outside_root and not _inside(mask, base):
                outside.append(f"{where} (mask): {raw_mask!r}")
                continue
            if not os.path.isfile(mask):
                skipped.append(SkippedFile(mask, f"{where}: mask file does not exist; the image is kept without a mask"))
                mask = None
        entries.append(Entry(full, label, split, mask, cell(row, col_group) or None))
    if outside:
        more = f" and {len(outside) - 3} more" if len(outside) > 3 else ""
        raise DataError(
            f"Manifest {csv_path} lists {len(outside)} path(s) outside its folder {base} ({'; '.join(outside[:3])}{more}). "
            "Paths are read relative to the manifest and must stay inside its folder; move the files there, or allow "
            "other places explicitly with Dataset(..., allow_outside_root=True) (--allow-outside-root)."
        )
    if not entries:
        raise DataError(
            f"Manifest {csv_path} lists no usable images ({len(skipped)} rows skipped); "
            "check that the paths are relative to the CSV file."
        )
    train_labels = sorted({e.label for e in entries if e.split in (None, "train")})
    class_names = tuple(train_labels)
    unknown = sorted({e.label for e in entries} - set(class_names))
    if unknown:
        raise DataError(
            f"Manifest {csv_path}: label(s) {', '.join(unknown)} appear only in val/test rows, not in training rows "
            f"(training classes: {', '.join(class_names) or 'none'}). Add training rows for them or fix the labels."
        )
    return RawIndex(entries, skipped, "manifest", class_names, group_column)


def scan(path: str | os.PathLike[str], *, allow_outside_root: bool = False) -> RawIndex:
    """Find candidate samples under ``path`` (folder layouts or a CSV manifest).

    Args:
        path: Data folder or manifest.
        allow_outside_root: Let a manifest list files outside its own folder
            (absolute paths, ``../``) and a class folder be a symbolic link to
            a folder outside the data; refused otherwise.

    Raises:
        DataError: If the path is missing, empty, or not a layout neuroxai reads;
            a class folder that is a symbolic link looping, leading outside the data or to another class
            folder; manifest paths outside its folder (unless allowed).
    """
    root = Path(path)
    if not root.exists():
        raise DataError(
            f"Data path {root} does not exist. Pass a folder with Training/ and Testing/ class folders, "
            "a folder of class folders, or a CSV manifest (path,label[,split][,mask])."
        )
    if root.is_file():
        if root.suffix.lower() not in (".csv", ".tsv", ".txt"):
            raise DataError(f"{root} is a file but not a CSV manifest; expected a .csv with columns path,label[,split][,mask].")
        return _scan_manifest(root, allow_outside_root)
    visible = [c for c in root.iterdir() if not is_hidden(c.name)]
    if not visible:
        raise DataError(
            f"Data folder {root} is empty. Put one folder per class in it (e.g. {root}/glioma/*.jpg), "
            "or Training/ and Testing/ folders of class folders."
        )
    return _scan_folders(root, allow_outside_root)
