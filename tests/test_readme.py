"""The README's and the quickstart page's code runs as written, and the figures they quote are the ones it prints.

Each Python block is written to a file in a fresh folder and run there as a user would run it (a fresh process,
the installed package); the command lines that run on the phantoms or on one image are run too. Placeholders for
the user's own files are the only thing replaced (:data:`PLACEHOLDERS`): a phantom data folder stands in for the
Kaggle folder, and a phantom slice for ``scan.jpg``.

These runs train models for minutes, so they are not part of ``make test``: ``make test-readme`` runs them, and CI
runs that target after the suite.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
QUICKSTART = ROOT / "docs" / "quickstart.rst"

pytestmark = pytest.mark.readme

#: Placeholder in the docs -> what stands in for it in the test folder (made by :func:`_materials`).
PLACEHOLDERS = {
    "path/to/brain-tumor-mri": "phantom-data",
    "path/to/scans/": "phantom-data/Testing/glioma/",
}

#: How far a printed figure may lie outside the range the README quotes for it (the range measured across CPU kernel
#: families): one of the 120 test phantoms either way (1/120 = 0.0083) plus the printed rounding; the centre prior
#: does not depend on the model (the masks alone): its rounding only.
TOLERANCE = {"accuracy": 1 / 120 + 0.0005, "pointing": 1 / 120 + 0.005, "centre": 0.005}


def python_blocks(path: Path) -> list[str]:
    """The Python code blocks of a Markdown (```python) or reStructuredText (.. code-block:: python) file."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".md":
        return re.findall(r"```python\n(.*?)```", text, flags=re.S)
    blocks = []
    for match in re.finditer(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", text):
        lines = [line[4:] for line in match.group(1).splitlines()]
        blocks.append("\n".join(lines).strip() + "\n")
    return blocks


def command_lines(path: Path) -> list[str]:
    """The ``neuroxai ...`` lines of the shell blocks (comments after ``#`` dropped)."""
    text = path.read_text(encoding="utf-8")
    shells = (
        re.findall(r"```(?:sh|bash)\n(.*?)```", text, flags=re.S)
        if path.suffix == ".md"
        else re.findall(r"::\n\n((?:    .*\n)+)", text)
    )
    lines = []
    for block in shells:
        for line in block.splitlines():
            line = line.strip().split("  #")[0].strip()
            if line.startswith("neuroxai "):
                lines.append(line)
    return lines


def _env() -> dict[str, str]:
    """The user's environment, with the ``neuroxai`` command of the Python running the tests first on ``PATH``
    (``make`` runs the venv's Python without activating it)."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path, "NEUROXAI_NO_PROGRESS": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0"}


def _materials(folder: Path) -> None:
    """The stand-ins for the user's files: a phantom data folder (Kaggle layout) and ``scan.jpg``."""
    from PIL import Image

    from neuroxai.data import write_phantoms

    data = write_phantoms(folder / "phantom-data", n_per_class=6, image_size=64, seed=7)
    first = sorted((Path(data) / "Testing" / "glioma").glob("*.png"))
    first = next(p for p in first if "_mask" not in p.name)
    Image.open(first).convert("L").save(folder / "scan.jpg", quality=95)


def _substitute(code: str) -> str:
    for placeholder, stand_in in PLACEHOLDERS.items():
        code = code.replace(placeholder, stand_in)
    return code


def run_block(code: str, folder: Path, timeout: int = 900) -> str:
    """Run one block as ``block.py`` in ``folder``; returns what it printed (fails with its output otherwise)."""
    script = folder / "block.py"
    script.write_text(_substitute(code), encoding="utf-8")
    proc = subprocess.run([sys.executable, str(script)], cwd=folder, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (
        f"the block failed:\n{code}\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}"
    )
    return proc.stdout


def quoted_ranges(text: str) -> dict[str, tuple[float, float]]:
    """The spread a text quotes: ``accuracy measured A to B``, ``pointing game measured P to Q`` (or ``... P``)."""
    found = {}
    for key, pattern in (
        ("accuracy", r"accuracy\s+measured\s+(\d\.\d+)\s+to\s+(\d\.\d+)"),
        ("pointing", r"pointing\s+game\s+measured\s+(\d\.\d+)(?:\s+to\s+(\d\.\d+))?"),
    ):
        m = re.search(pattern, text)
        if m:  # "A to B", or one figure measured on every kernel family
            found[key] = (float(m.group(1)), float(m.group(2) or m.group(1)))
    return found


def quoted_figures(text: str) -> dict[str, float]:
    """The figures a text quotes in the form the blocks print: ``test accuracy A``, ``pointing game P (centre prior C)``."""
    found = {}
    for key, pattern in (
        ("accuracy", r"test\s+accuracy\s+(\d\.\d+)"),
        ("pointing", r"Grad-CAM\s+pointing\s+game\s+(\d\.\d+)"),
        ("centre", r"centre\s+prior\s+(\d\.\d+)"),
    ):
        m = re.search(pattern, text)
        if m:
            found[key] = float(m.group(1))
    return found


@pytest.fixture()
def folder(tmp_path):
    _materials(tmp_path)
    return tmp_path


def test_the_readme_blocks_run_and_keep_their_promise(folder):
    blocks = python_blocks(README)
    assert len(blocks) >= 2, "the README shows the ten lines and the pretrained model"
    printed = ""
    for code in blocks:
        printed += run_block(code, folder)
    figures = quoted_figures(printed)
    assert figures["accuracy"] >= 0.95 and figures["pointing"] >= 0.8, printed
    assert figures["pointing"] > figures["centre"] + 0.5  # the maps point at the tumours, not at the middle
    overlays = list((folder / "runs" / "cnn" / "explanations").glob("*.png"))
    assert len(overlays) == 8, "the ten lines write one overlay per explained image"
    # what the README says the run prints is what it printed: within the spread it quotes across CPU kernels
    text = README.read_text(encoding="utf-8").split("```python")[1].split("## ")[0]
    claimed, spread = quoted_figures(text), quoted_ranges(text)
    assert claimed.keys() == {"accuracy", "pointing", "centre"}, "the README quotes the three figures the block prints"
    assert spread.keys() == {"accuracy", "pointing"}, "the README says how much accuracy and pointing game vary"
    spread["centre"] = (claimed["centre"], claimed["centre"])
    for key, (lo, hi) in spread.items():
        assert lo <= claimed[key] <= hi, f"the README's {key} {claimed[key]} lies outside its own range {lo} to {hi}"
        assert lo - TOLERANCE[key] <= figures[key] <= hi + TOLERANCE[key], (
            f"README quotes {key} {lo} to {hi}, a fresh run printed {figures[key]}"
        )


def test_the_readme_command_lines_run(folder):
    lines = command_lines(README)
    assert any("--pretrained" in line for line in lines)
    ran = 0
    for line in lines:
        if line.startswith("neuroxai train"):
            continue  # a 30-epoch run on the real data: the quickstart test trains on phantoms instead
        args = shlex.split(_substitute(line))
        if any(a.endswith((".nii.gz", "/")) and not (folder / a).exists() for a in args[1:]):
            continue  # scanner volumes the reader has and this test does not (covered by tests/volumes)
        if args[1] == "explain" and not args[2].startswith("-") and not (folder / args[2]).exists():
            continue  # explains a run the train line would have written
        proc = subprocess.run(args, cwd=folder, env=_env(), capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{line}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        ran += 1
    assert ran >= 3


def test_the_quickstart_page_runs(folder):
    blocks = python_blocks(QUICKSTART)
    assert blocks, "the quickstart page shows Python"
    for code in blocks:
        run_block(code, folder)
