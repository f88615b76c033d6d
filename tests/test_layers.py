"""Imports point one way: data -> models -> runs -> training / explain -> evaluation / volumes -> report -> cli.

The test reads every module of ``src/neuroxai`` with :mod:`ast` and checks
every import in it, lazy ones inside functions included (only imports under
``if TYPE_CHECKING:`` are exempt: they never run). A module may import its own
package and any layer below; an arrow against the order, or between siblings
(``training`` and ``explain``; ``evaluation`` and ``volumes``), fails with the file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "neuroxai"

#: Rank of each top-level part of the package; equal ranks may not import each other.
LAYERS: dict[str, int] = {
    "errors": 0,
    "_records": 1,
    "_io": 1,
    "_progress": 1,
    "_cache": 1,
    "_tf": 1,
    "_keras_backend": 1,
    "plugins": 2,
    "data": 3,
    "models": 4,
    "runs": 5,
    "training": 6,
    "explain": 6,
    "evaluation": 7,
    "volumes": 7,
    "report": 8,
    "cli": 10,
    "__main__": 11,
}
#: The package root is the public facade over the library layers (it imports them lazily, by name); only the
#: command line sits above it.
ROOT_RANK = 9


def _part(module: str) -> str | None:
    """``neuroxai.data._index`` -> ``data``; ``neuroxai`` -> ``""``; other packages -> None."""
    if module == "neuroxai":
        return ""
    if not module.startswith("neuroxai."):
        return None
    return module.split(".")[1]


def _rank(part: str) -> int:
    return ROOT_RANK if part == "" else LAYERS[part]


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, package: str) -> list[tuple[int, str]]:
    """``(line, module)`` for every import that can run (``if TYPE_CHECKING:`` bodies skipped)."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against this module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            if module == "neuroxai":  # `from neuroxai import data` imports the subpackage
                found.extend((node.lineno, f"neuroxai.{alias.name}") for alias in node.names if alias.name in LAYERS)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append((".".join(parts), path))
    return out


def test_every_part_of_the_package_has_a_layer():
    parts = {_part(name) for name, _ in _modules()} - {""}
    assert parts <= set(LAYERS), f"add {sorted(parts - set(LAYERS))} to LAYERS in tests/test_layers.py"


@pytest.mark.parametrize(("module", "path"), _modules(), ids=[m for m, _ in _modules()])
def test_imports_point_down(module, path):
    own = _part(module)
    assert own is not None
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    bad = []
    for line, target in _imports(ast.parse(path.read_text(encoding="utf-8")), package):
        other = _part(target)
        if other is None or other == own or own == "":
            continue
        if _rank(other) >= _rank(own):
            bad.append(
                f"{path.relative_to(SRC.parent.parent)}:{line} imports {target} ({other or 'the package root'} is not below {own})"
            )
    assert not bad, "\n".join(bad)


def test_the_checker_sees_lazy_imports_and_skips_type_checking_blocks():
    code = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from neuroxai.cli import main\n"
        "def f():\n    from neuroxai.training import Trainer\n"
    )
    assert [m for _, m in _imports(ast.parse(code), "neuroxai.data")] == ["typing", "neuroxai.training"]
