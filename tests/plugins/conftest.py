"""Fixtures that install plugin packages for real (pip, into a temporary target folder)."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "plugin_package"


def pip_install(source: Path, target: Path) -> Path:
    """``pip install --no-deps --no-build-isolation --target`` a copy of ``source``; returns ``target``.

    This produces real ``*.dist-info`` metadata (with ``entry_points.txt``)
    without touching the test environment; putting ``target`` on ``sys.path``
    (or ``PYTHONPATH``) makes ``importlib.metadata`` see the distribution.
    Needs setuptools in the environment (no build isolation, no network).
    """
    pytest.importorskip("setuptools", reason="building the plugin without build isolation needs setuptools")
    copy = target.parent / f"src-{source.name}"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "--quiet",
            "--target",
            str(target),
            str(copy),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert list(target.glob("*.dist-info/entry_points.txt")), "pip produced no entry point metadata"
    return target


def _forget(prefix: str) -> None:
    for name in [m for m in sys.modules if m == prefix or m.startswith(prefix + ".")]:
        del sys.modules[name]


@pytest.fixture(scope="session")
def tinyresnet_site(tmp_path_factory) -> Path:
    """A folder holding the installed example plugin package (neuroxai-tinyresnet)."""
    return pip_install(EXAMPLE, tmp_path_factory.mktemp("tinyresnet") / "site")


@pytest.fixture(scope="session")
def broken_site(tmp_path_factory) -> Path:
    """A folder holding an installed plugin whose module raises ImportError on import."""
    root = tmp_path_factory.mktemp("broken")
    pkg = root / "neuroxai-broken-plugin"
    (pkg / "neuroxai_broken_plugin").mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(
        textwrap.dedent("""\
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "neuroxai-broken-plugin"
        version = "0.3.1"

        [project.entry-points.neuroxai]
        broken = "neuroxai_broken_plugin"

        [tool.setuptools]
        packages = ["neuroxai_broken_plugin"]
        """)
    )
    (pkg / "neuroxai_broken_plugin" / "__init__.py").write_text(
        "raise ImportError(\"neuroxai_broken_plugin needs the package 'torchvision', which is not installed\")\n"
    )
    return pip_install(pkg, root / "site")


@pytest.fixture
def on_path(monkeypatch):
    """Put an install folder on ``sys.path`` for one test and forget its modules afterwards."""
    added: list[str] = []

    def add(site: Path) -> None:
        monkeypatch.syspath_prepend(str(site))  # also invalidates import caches
        monkeypatch.delenv("NEUROXAI_DISABLE_PLUGIN_AUTOLOAD", raising=False)
        added.extend(p.name for p in site.iterdir() if p.is_dir() and not p.name.endswith(".dist-info"))

    yield add
    for name in added:
        _forget(name)
    importlib.invalidate_caches()
