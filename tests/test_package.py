"""The package as users meet it: metadata, public names, atomic writes, the command."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import neuroxai
from neuroxai import _io
from neuroxai.errors import DataError, NeuroxaiError, UnknownModelError

ROOT = Path(__file__).resolve().parents[1]


def test_version_comes_from_package_metadata():
    assert neuroxai.__version__ == importlib.metadata.version("neuroxai")


def test_every_public_name_resolves_and_is_in_all():
    for name in neuroxai.__all__:
        assert getattr(neuroxai, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        neuroxai.nope


def test_import_is_light():
    # `import neuroxai` must not pull in TensorFlow: the CLI's --help stays instant.
    code = "import sys, neuroxai; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_package_ships_py_typed():
    files = importlib.metadata.files("neuroxai") or []
    names = {Path(str(f)).name for f in files}
    # editable installs list no package files; fall back to the source tree
    assert "py.typed" in names or (ROOT / "src" / "neuroxai" / "py.typed").exists()


def test_every_public_name_is_in_the_api_reference():
    api = (ROOT / "docs" / "api.rst").read_text(encoding="utf-8")
    documented = set(re.findall(r"neuroxai\.(\w+)", api))
    missing = [n for n in neuroxai.__all__ if n not in documented]
    assert not missing, f"public names missing from docs/api.rst: {missing}"


SUBPACKAGES = ("data", "models", "plugins", "runs", "training", "explain", "evaluation", "volumes", "report", "cli")


@pytest.mark.parametrize("sub", SUBPACKAGES)
def test_every_subpackage_is_in_the_api_reference_and_documented(sub):
    import importlib
    import inspect

    api = (ROOT / "docs" / "api.rst").read_text(encoding="utf-8")
    assert f".. automodule:: neuroxai.{sub}\n" in api
    module = importlib.import_module(f"neuroxai.{sub}")
    undocumented = [
        name
        for name in module.__all__
        if (inspect.isclass(obj := getattr(module, name)) or inspect.isfunction(obj)) and not inspect.getdoc(obj)
    ]
    assert not undocumented, f"public names of neuroxai.{sub} without a docstring (autodoc would skip them): {undocumented}"


def test_errors_derive_from_builtin_and_base():
    assert issubclass(DataError, ValueError) and issubclass(DataError, NeuroxaiError)
    err = UnknownModelError("Unknown model 'x'. Available: cnn")
    assert isinstance(err, KeyError)
    assert str(err) == "Unknown model 'x'. Available: cnn"  # no KeyError quoting


def test_atomic_write_keeps_old_file_when_writer_fails(tmp_path):
    target = tmp_path / "metrics.json"
    _io.write_json(target, {"accuracy": 0.5})
    with pytest.raises(RuntimeError), _io.atomic_path(target) as tmp:
        tmp.write_text("half-writ")
        raise RuntimeError("killed mid-write")
    assert json.loads(target.read_text()) == {"accuracy": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temp debris


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_atomic_write_gives_files_the_usual_mode_not_private(tmp_path):
    path = _io.write_text(tmp_path / "report.json", "{}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~_io._UMASK  # a colleague can read the run directory


def test_write_json_converts_numpy_and_non_finite(tmp_path):
    import numpy as np

    path = _io.write_json(tmp_path / "a" / "b.json", {"x": np.float32(0.25), "arr": np.arange(3), "nan": float("nan")})
    assert json.loads(path.read_text()) == {"x": 0.25, "arr": [0, 1, 2], "nan": None}


def test_cli_help_lists_every_subcommand_in_order():
    from neuroxai.cli import CommandRegistry, build_parser

    registry = CommandRegistry(autoload=False)
    names = [c.name for c in registry.in_order()]
    assert names == ["demo", "audit", "models", "train", "evaluate", "predict", "calibrate", "explain", "evaluate-xai", "report"]
    help_text = build_parser(registry).format_help()
    assert [n for n in names if n in help_text] == names
    assert "-v, --verbose" in help_text and "-q, --quiet" in help_text


def test_python_dash_m_runs_the_command():
    out = subprocess.run([sys.executable, "-m", "neuroxai", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"neuroxai {neuroxai.__version__}"


def test_tensorflow_start_up_noise_is_filtered_but_errors_are_kept():
    from neuroxai._tf import is_startup_noise

    noise = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796235354.385487   20396 port.cc:153] oneDNN custom operations are on. You may see ...",
        "I0000 00:00:1796235354.385902   20396 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.",
        "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags.",
    ]
    assert all(is_startup_noise(line) for line in noise)
    kept = [
        "E0000 00:00:1796235354.385902   20396 op.cc:31] a real error",
        "Traceback (most recent call last):",
        "neuroxai: error: x",
    ]
    assert not any(is_startup_noise(line) for line in kept)


def test_a_command_that_runs_tensorflow_prints_no_start_up_noise(tmp_path):
    # `neuroxai models` builds both models with TensorFlow: stderr must stay empty
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    out = subprocess.run([sys.executable, "-m", "neuroxai", "models"], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "efficientnetb0" in out.stdout
    assert out.stderr == "", out.stderr


def test_cli_version(capsys):
    from neuroxai.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert neuroxai.__version__ in capsys.readouterr().out
