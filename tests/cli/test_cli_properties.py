"""Property: over random folder trees and manifests the command line never shows a traceback, and every input
file is either used or reported (never dropped without a word)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuroxai.cli import main

NAMES = ("a", "b c", "\u00fc", "-x", "=y", "#h", "d.e") + (() if sys.platform == "win32" else ("new\nline",))
KINDS = ("png", "jpg", "corrupt", "empty", "txt", "hidden")
CLASSES = ("glioma", "notumor", "meningioma")


def _write(path: Path, kind: str, seed: int) -> Path:
    from PIL import Image

    if kind == "hidden":
        path = path.with_name("." + path.name)
    path = path.with_suffix({"png": ".png", "jpg": ".jpg", "txt": ".txt"}.get(kind, ".png"))
    if kind in ("png", "jpg", "hidden"):
        pixels = np.random.default_rng(seed).integers(0, 255, (12, 12), dtype=np.uint8)
        Image.fromarray(pixels).save(path, format="PNG" if kind != "jpg" else "JPEG")
    elif kind == "corrupt":
        path.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        path.write_text("notes")
    return path


files = st.lists(
    st.tuples(st.integers(0, len(CLASSES)), st.sampled_from((*KINDS, "png", "png")), st.sampled_from(NAMES)),
    min_size=0,
    max_size=8,
)
links = st.lists(st.sampled_from(["class-to-class", "file", "loop", "outside", "dangling"]), max_size=2)


def _audit(target: Path, *extra: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["audit", str(target), "--format", "json", "--no-progress", *extra])
    return rc, out.getvalue(), err.getvalue()


def _check_cli(rc: int, err: str) -> None:
    assert "Traceback" not in err, err
    assert rc in (0, 2), err
    if rc == 2:
        assert len([line for line in err.splitlines() if "error:" in line]) == 1, err


def _accounted(created: list[Path], target: Path, **options) -> None:
    """Every created file is used by the Dataset or reported in its skipped list (or lies under a skipped folder)."""
    from neuroxai.data import Dataset

    ds = Dataset(target, val_fraction=0.0, test_fraction=0.0, progress=False, **options)
    used = {os.path.realpath(p) for split in ("train", "val", "test") for p in ds.paths(split) if p}
    reported = [os.path.realpath(s.path) for s in ds.skipped]
    for f in created:
        real = os.path.realpath(f)
        ok = real in used or real in reported or any(real.startswith(r + os.sep) for r in reported)
        assert ok, f"{f!r} neither used nor reported; skipped: {[s.path for s in ds.skipped]}"


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=files, links=links, seed=st.integers(0, 100))
def test_random_folder_trees_never_traceback_and_every_file_is_used_or_reported(files, links, seed):
    base = Path(tempfile.mkdtemp())
    try:
        root = base / "data"
        root.mkdir()
        created: list[Path] = []
        for i, (cls, kind, name) in enumerate(files):
            folder = root if cls == len(CLASSES) else root / CLASSES[cls]
            folder.mkdir(exist_ok=True)
            path = _write(folder / f"{name}{i}", kind, seed + i)
            if kind != "hidden":
                created.append(path)
        for j, kind in enumerate(links):
            folder = root / CLASSES[j % len(CLASSES)]
            folder.mkdir(exist_ok=True)
            with contextlib.suppress(OSError):
                if kind == "class-to-class":
                    os.symlink(folder, root / f"linked{j}", target_is_directory=True)
                elif kind == "file" and created:
                    os.symlink(created[0], folder / f"link{j}.png")
                elif kind == "loop":
                    os.symlink(folder, folder / f"loop{j}", target_is_directory=True)
                elif kind == "outside":
                    (base / "outside").mkdir(exist_ok=True)
                    os.symlink(base / "outside", root / f"outside{j}", target_is_directory=True)
                else:
                    os.symlink(base / "nowhere.png", folder / f"dangling{j}.png")
        rc, out, err = _audit(root)
        _check_cli(rc, err)
        if rc == 0:
            report = json.loads(out)
            assert report["images"] >= 1
            _accounted(created, root)
    finally:
        shutil.rmtree(base, ignore_errors=True)


rows = st.lists(
    st.tuples(
        st.sampled_from(["existing", "missing", "duplicate", "parent", "absolute", "corrupt"]),
        st.sampled_from(["glioma", "notumor", "", "=x"]),
    ),
    min_size=1,
    max_size=8,
)


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows, seed=st.integers(0, 100))
def test_random_manifests_never_traceback_and_every_row_is_used_or_reported(rows, seed):
    base = Path(tempfile.mkdtemp())
    try:
        home = base / "set"
        home.mkdir()
        (base / "other").mkdir()
        lines = ["path,label"]
        created: list[Path] = []
        for i, (kind, label) in enumerate(rows):
            if kind == "missing":
                lines.append(f"gone{i}.png,{label}")
                continue
            if kind == "duplicate" and created:
                lines.append(f"{created[0].name},{label}")
                continue
            folder = base / "other" if kind in ("parent", "absolute") else home
            path = _write(folder / f"img{i}", "corrupt" if kind == "corrupt" else "png", seed + i)
            shown = {"parent": f"../other/{path.name}", "absolute": str(path)}.get(kind, path.name)
            lines.append(f"{shown},{label}")
            if folder == home:
                created.append(path)
        manifest = home / "manifest.csv"
        manifest.write_text("\n".join(lines) + "\n")
        for extra in ((), ("--allow-outside-root",)):
            rc, _out, err = _audit(manifest, *extra)
            _check_cli(rc, err)
            if rc == 0:
                _accounted(created, manifest, **({"allow_outside_root": True} if extra else {}))
    finally:
        shutil.rmtree(base, ignore_errors=True)
