"""Typed result records: frozen dataclasses that become plain dicts only at the file boundary.

Every result that crosses a module boundary (training phases, classification
metrics, audits, explanation metrics) is a frozen dataclass deriving from
:class:`Record`. Code reads attributes (``report.test.accuracy``), never
string keys; :meth:`Record.to_dict` and :meth:`Record.from_dict` exist for
writing JSON files and reading them back.

``from_dict`` rebuilds nested records from the field annotations, so a record
only declares its fields::

    @dataclass(frozen=True)
    class Scores(Record):
        accuracy: float
        per_class: tuple[ClassScores, ...]
        note: str | None = None

Supported field types: ``int``, ``float``, ``str``, ``bool``, ``Any``, other
records, ``X | None``, ``tuple[X, ...]``, ``tuple[X, Y]``, ``list[X]``,
``dict[str, X]`` / ``Mapping[str, X]`` and ``Literal[...]``. A ``float`` field
read back as JSON ``null`` (how :func:`neuroxai._io.write_json` writes NaN)
becomes ``nan``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar, Union, get_args, get_origin, get_type_hints

from neuroxai.errors import DataError

__all__ = ["Record"]

R = TypeVar("R", bound="Record")

_HINTS: dict[type, dict[str, Any]] = {}


class Record:
    """Base class of neuroxai's frozen result dataclasses (see the module docstring)."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-able Python types (nested records become dicts, tuples lists)."""
        return {f.name: _dump(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls: type[R], data: Mapping[str, Any]) -> R:
        """Rebuild a record written by :meth:`to_dict` (extra keys are ignored).

        Raises:
            DataError: ``data`` is not a mapping, or a field without a default is missing.
        """
        if not isinstance(data, Mapping):
            raise DataError(f"Expected a JSON object for {cls.__name__}; got {type(data).__name__}.")
        hints = _hints(cls)
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            if f.name in data:
                kwargs[f.name] = _load(hints[f.name], data[f.name], f"{cls.__name__}.{f.name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise DataError(
                    f"{cls.__name__} read from a file lacks the field {f.name!r}; the file is incomplete or from another version."
                )
        return cls(**kwargs)


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = get_type_hints(cls)  # each class's annotations resolve in its own module
        _HINTS[cls] = hints
    return hints


def _dump(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {str(k): _dump(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_dump(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy array or scalar
        return _dump(value.tolist())
    return value


def _load(tp: Any, value: Any, where: str) -> Any:
    if tp is Any:
        return value
    origin = get_origin(tp)
    args = get_args(tp)
    if origin is Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        for option in options:  # the first option the value fits
            if _fits(option, value):
                return _load(option, value, where)
        return _load(options[0], value, where)
    if origin is typing.Literal:
        return value
    if value is None:
        if tp is float:
            return math.nan
        return None
    if isinstance(tp, type) and issubclass(tp, Record):
        return tp.from_dict(value)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise DataError(f"{where}: expected a list, got {type(value).__name__}.")
        if origin is tuple and args and args[-1] is not Ellipsis:
            return tuple(_load(a, v, where) for a, v in zip(args, value))
        item = args[0] if args else Any
        loaded = [_load(item, v, where) for v in value]
        return tuple(loaded) if origin is tuple else loaded
    if origin in (dict, Mapping) or (origin is not None and isinstance(origin, type) and issubclass(origin, Mapping)):
        if not isinstance(value, Mapping):
            raise DataError(f"{where}: expected an object, got {type(value).__name__}.")
        item = args[1] if len(args) == 2 else Any
        return {str(k): _load(item, v, where) for k, v in value.items()}
    if tp is float:
        return float(value)
    if tp is int and not isinstance(value, bool):
        return int(value)
    return value


def _fits(tp: Any, value: Any) -> bool:
    origin = get_origin(tp)
    if isinstance(tp, type) and issubclass(tp, Record):
        return isinstance(value, Mapping)
    if origin in (tuple, list):
        return isinstance(value, (list, tuple))
    if origin in (dict, Mapping):
        return isinstance(value, Mapping)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True
