"""One registry, one error contract: models, explanation methods, explanation metrics and commands.

:class:`Registry` holds named items that plugins add through a hook. Each
concrete registry says what it holds (``kind``), which hook fills it, which
built-in plugin module provides its built-ins, and which errors it raises:

- an unknown name raises ``unknown_error`` (a :class:`~neuroxai.errors.UnknownNameError`,
  hence also a ``KeyError``) whose message suggests close names and lists the
  available ones: ``Unknown model 'efficientnet'. Did you mean 'efficientnetb0'?
  Available: cnn, efficientnetb0``;
- a duplicate name without ``override=True`` and a malformed item raise
  ``error`` and name both plugins.

Names are matched exactly first, then case-insensitively.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterable, Iterator
from typing import ClassVar, Generic, TypeVar

from neuroxai.errors import NeuroxaiError, UnknownNameError
from neuroxai.plugins._host import PluginInfo, current_plugin, get_plugin_manager

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Named items added by the built-ins and by plugins.

    Subclasses set the class attributes and implement :meth:`_builtin_plugin`;
    they may override :meth:`_check` to validate an item.

    Args:
        autoload: Include installed plugins (entry points of group
            ``neuroxai``). ``None`` (default): yes unless
            ``NEUROXAI_DISABLE_PLUGIN_AUTOLOAD=1``. Built-ins are always present.
        plugins: Extra plugin objects whose hook implementations add items to
            this registry (registered with the plugin host for this call only).
        populate: Fill the registry through the hook (``False`` gives an empty one).

    Raises:
        PluginError: A plugin failed to import, misspelt a hook or failed in it.
    """

    #: What the registry holds, in messages ("model", "explanation method" ...).
    kind: ClassVar[str] = "item"
    #: The hook that fills the registry.
    hook: ClassVar[str] = ""
    #: Raised for duplicates and malformed items.
    error: ClassVar[type[NeuroxaiError]] = NeuroxaiError
    #: Raised for unknown names.
    unknown_error: ClassVar[type[UnknownNameError]] = UnknownNameError

    def __init__(self, autoload: bool | None = None, *, plugins: Iterable[object] = (), populate: bool = True) -> None:
        self._items: dict[str, T] = {}
        self._origin: dict[str, PluginInfo | None] = {}
        if populate:
            pm = get_plugin_manager(autoload=False)
            pm.ensure_builtin(self._builtin_plugin())
            pm.call_registration(self.hook, autoload=autoload, plugins=tuple(plugins), registry=self)

    # ------------------------------------------------------------------ for subclasses
    def _builtin_plugin(self) -> object:
        """The plugin module that registers this registry's built-ins."""
        raise NotImplementedError

    def _check(self, name: str, item: object, origin: PluginInfo | None) -> T:
        """Validate ``item`` (plugins pass anything) and return it as stored (maybe a changed copy); raise ``error`` if it is malformed."""
        return item  # type: ignore[return-value]  # subclasses narrow the type; the base accepts anything

    def _source(self, name: str, item: T) -> str:
        """Who an item comes from, in messages: the plugin that registered it, else "a direct call"."""
        origin = self._origin.get(name)
        return origin.source if origin is not None else "a direct call"

    # ------------------------------------------------------------------ registration
    def _add(self, name: str, item: object, *, override: bool = False) -> T:
        origin = current_plugin()
        who = f" (from {origin.describe().lower()})" if origin is not None else ""
        if not isinstance(name, str) or not name.strip():
            raise self.error(f"Expected a non-empty {self.kind} name{who}; got {name!r}.")
        name = name.strip()
        checked = self._check(name, item, origin)
        existing = self._key(name)
        if existing is not None and not override:
            by = self._source(existing, self._items[existing])
            now = origin.source if origin is not None else self._source(name, checked)
            raise self.error(
                f"{self.kind.capitalize()} {name!r} from '{now}' is already registered by '{by}'. "
                "Pass override=True to replace it, or choose another name."
            )
        if existing is not None:
            del self._items[existing]
            self._origin.pop(existing, None)
        self._items[name] = checked
        self._origin[name] = origin
        return checked

    def unregister(self, name: str) -> T:
        """Remove and return the item ``name``.

        Raises:
            UnknownNameError: No such item (the registry's own subclass of it).
        """
        key = self._resolve(name)
        self._origin.pop(key, None)
        return self._items.pop(key)

    # ------------------------------------------------------------------ lookup
    def _key(self, name: object) -> str | None:
        if not isinstance(name, str):
            return None
        if name in self._items:
            return name
        folded = name.strip().lower()
        return next((k for k in self._items if k.lower() == folded), None)

    def _resolve(self, name: object) -> str:
        key = self._key(name)
        if key is None:
            available = sorted(self._items)
            text = str(name).strip().lower()
            prefix = [n for n in available if text and n.lower().startswith(text)]  # "efficientnet" -> "efficientnetb0"
            close = difflib.get_close_matches(text, [n.lower() for n in available], n=3, cutoff=0.5)
            close_names = [n for c in close for n in available if n.lower() == c]
            suggestions = list(dict.fromkeys(prefix + close_names))[:3]
            hint = f" Did you mean {' or '.join(repr(s) for s in suggestions)}?" if suggestions else ""
            raise self.unknown_error(f"Unknown {self.kind} {name!r}.{hint} Available: {', '.join(available) or '(none)'}")
        return key

    def get(self, name: str) -> T:
        """The item registered as ``name`` (exact, else case-insensitive match).

        Raises:
            UnknownNameError: No such item; the message suggests close names and
                lists the available ones (the registry's own subclass of it).
        """
        return self._items[self._resolve(name)]

    def origin(self, name: str) -> PluginInfo | None:
        """The plugin that registered ``name`` (``None`` when registered by a direct call)."""
        return self._origin.get(self._resolve(name))

    def names(self, pattern: str = "*") -> list[str]:
        """Sorted names matching the shell-style ``pattern`` (``*``, ``?``, ``[ab]``; case-insensitive)."""
        return sorted(n for n in self._items if fnmatch.fnmatchcase(n.lower(), pattern.lower()))

    def items(self) -> list[tuple[str, T]]:
        """``(name, item)`` pairs, sorted by name."""
        return [(n, self._items[n]) for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return self._key(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(self.names())})"
