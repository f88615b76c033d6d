"""ModelRegistry: every built-in and plugin model, by name."""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import difflib
import fnmatch
import inspect
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from neuroxai.errors import ModelError, NeuroxaiError, UnknownModelError
from neuroxai.models._spec import ModelSpec, validate_input_shape

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = ["ModelRegistry", "is_structure_only", "structure_only"]

_structure_only: contextvars.ContextVar[bool] = contextvars.ContextVar("neuroxai_structure_only", default=False)
_PARAM_CACHE: dict[tuple[Any, ...], int] = {}


@contextlib.contextmanager
def structure_only() -> Iterator[None]:
    """Within this block, factories are called only to inspect the architecture.

    ``neuroxai models`` counts parameters this way. Factories that download
    pretrained weights should check :func:`is_structure_only` and skip the
    download (the built-in EfficientNetB0 does).

    Example:
        >>> with structure_only():
        ...     model = ModelRegistry(autoload=False).create("efficientnetb0")  # no download
    """
    token = _structure_only.set(True)
    try:
        yield
    finally:
        _structure_only.reset(token)


def is_structure_only() -> bool:
    """True inside :func:`structure_only`: build the graph, skip weight downloads."""
    return _structure_only.get()


class ModelRegistry:
    """The models neuroxai can build, by name: built-ins plus installed plugins.

    A new registry asks every plugin (built-ins first, then entry points of
    group ``neuroxai``, then ``plugins``) to register its models through the
    ``neuroxai_register_models`` hook.

    Args:
        autoload: Load installed plugins from entry points. ``None`` (default)
            loads them unless ``NEUROXAI_DISABLE_PLUGIN_AUTOLOAD=1``. The
            built-in models are always present.
        plugins: Extra plugin objects with a ``neuroxai_register_models``
            hook implementation, registered last.

    Raises:
        PluginError: A plugin failed to import, misspelt a hook, or failed
            inside its hook.
        ModelError: A plugin registered a duplicate name without
            ``override=True``.

    Example:
        >>> registry = ModelRegistry()
        >>> registry.names()
        ['cnn', 'efficientnetb0']
        >>> "cnn" in registry
        True
        >>> model = registry.create("cnn", num_classes=4, input_shape=(128, 128, 1))
    """

    def __init__(self, autoload: bool | None = None, *, plugins: Iterable[object] = ()) -> None:
        from neuroxai.plugins import call_hook, get_plugin_manager

        self._specs: dict[str, ModelSpec] = {}
        self._registered_by: dict[str, str] = {}
        self._pm = get_plugin_manager(autoload, plugins=plugins)
        call_hook(self._pm, "neuroxai_register_models", registry=self)

    # ------------------------------------------------------------------ registration
    def register(self, spec: ModelSpec, override: bool = False) -> ModelSpec:
        """Add ``spec`` under ``spec.name``.

        Inside a plugin hook, a spec whose ``source`` is left at the default
        ``"neuroxai"`` gets the plugin's distribution name as its source.

        Args:
            spec: The model to add.
            override: Replace an existing model of the same name.

        Returns:
            The spec as stored (with its source filled in).

        Raises:
            ModelError: ``spec`` is not a :class:`ModelSpec`, or the name is
                taken and ``override`` is false.
        """
        from neuroxai.plugins import current_plugin

        info = current_plugin()
        if not isinstance(spec, ModelSpec):
            who = f" (from plugin '{info.name}')" if info else ""
            raise ModelError(f"registry.register expects a neuroxai.ModelSpec, got {type(spec).__name__}{who}.")
        if info is not None and not info.builtin and spec.source == "neuroxai":
            spec = dataclasses.replace(spec, source=info.source)
        existing = self._specs.get(spec.name)
        if existing is not None and not override:
            raise ModelError(
                f"Model '{spec.name}' from '{spec.source}' is already registered by '{existing.source}'. "
                f"Pass override=True to replace it, or choose another name."
            )
        self._specs[spec.name] = spec
        self._registered_by[spec.name] = info.name if info else "<direct>"
        return spec

    def unregister(self, name: str) -> ModelSpec:
        """Remove and return the model ``name``.

        Raises:
            UnknownModelError: No such model.
        """
        spec = self.get(name)
        del self._specs[spec.name]
        self._registered_by.pop(spec.name, None)
        return spec

    # ------------------------------------------------------------------ lookup
    def get(self, name: str) -> ModelSpec:
        """The spec registered as ``name`` (exact, else case-insensitive match).

        Raises:
            UnknownModelError: No such model; the message suggests close
                names and lists the available ones.
        """
        spec = self._specs.get(name) if isinstance(name, str) else None
        if spec is None and isinstance(name, str):
            folded = {n.lower(): s for n, s in self._specs.items()}
            spec = folded.get(name.lower())
        if spec is None:
            available = sorted(self._specs)
            close = difflib.get_close_matches(str(name).lower(), available, n=3, cutoff=0.5)
            # prefix matches ("efficientnet" -> "efficientnetb0") beat fuzzy ones
            prefix = [n for n in available if isinstance(name, str) and name and n.lower().startswith(name.lower())]
            suggestions = list(dict.fromkeys(prefix + close))[:3]
            hint = f" Did you mean {' or '.join(repr(s) for s in suggestions)}?" if suggestions else ""
            raise UnknownModelError(f"Unknown model {name!r}.{hint} Available: {', '.join(available) or '(none)'}")
        return spec

    def names(self, pattern: str = "*") -> list[str]:
        """Sorted model names matching the shell-style ``pattern`` (``*``, ``?``, ``[ab]``; case-insensitive).

        Example:
            >>> ModelRegistry(autoload=False).names("eff*")
            ['efficientnetb0']
        """
        return sorted(n for n in self._specs if fnmatch.fnmatchcase(n.lower(), pattern.lower()))

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return name in self._specs or name.lower() in {n.lower() for n in self._specs}

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter([self._specs[n] for n in sorted(self._specs)])

    def __len__(self) -> int:
        return len(self._specs)

    def __repr__(self) -> str:
        return f"ModelRegistry({', '.join(sorted(self._specs))})"

    # ------------------------------------------------------------------ building
    def create(self, name: str, *, num_classes: int = 4, input_shape: Iterable[int] | None = None, **options: Any) -> keras.Model:
        """Build an uncompiled model.

        Args:
            name: A registered model name.
            num_classes: Number of output classes (at least 2).
            input_shape: ``(height, width, channels)``; the spec's default when
                ``None``.
            **options: Model-specific options (e.g. ``width``, ``dropout`` for
                ``cnn``; ``weights`` for ``efficientnetb0``).

        Returns:
            A flat functional ``keras.Model`` with ``logits`` and
            ``probabilities`` layers; compile it yourself (or let the Trainer).

        Raises:
            UnknownModelError: ``name`` is not registered.
            ModelError: Bad ``num_classes``/``input_shape``, an option the
                model does not take, the factory failed or did not return a
                ``keras.Model`` with the required layers.

        Example:
            >>> model = ModelRegistry().create("cnn", num_classes=4, input_shape=(64, 64, 1), width=0.5)
        """
        import keras

        spec = self.get(name)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ModelError(f"Model '{spec.name}': expected num_classes to be an integer >= 2, got {num_classes!r}.")
        shape = spec.input_shape if input_shape is None else validate_input_shape(input_shape, model=spec.name)
        self._check_options(spec, options)
        origin = f"plugin '{spec.source}'"
        try:
            model = spec.factory(num_classes=num_classes, input_shape=shape, **options)
        except NeuroxaiError:
            raise
        except Exception as exc:
            raise ModelError(
                f"Model '{spec.name}' from {origin} failed to build with num_classes={num_classes}, "
                f"input_shape={shape}, options={options}: {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(model, keras.Model):
            raise ModelError(
                f"Model '{spec.name}' from {origin}: its factory returned {type(model).__name__}, "
                "expected a keras.Model. Fix the plugin's factory."
            )
        self._check_model(spec, model, num_classes, origin)
        return model

    @staticmethod
    def _check_options(spec: ModelSpec, options: dict[str, Any]) -> None:
        try:
            params = inspect.signature(spec.factory).parameters
        except (TypeError, ValueError):  # pragma: no cover - builtins without signature
            return
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return
        accepted = sorted(
            n
            for n, p in params.items()
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and n not in {"num_classes", "input_shape"}
        )
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise ModelError(
                f"Model '{spec.name}' does not take option(s) {', '.join(unknown)}. "
                f"Its options are: {', '.join(accepted) or '(none)'}."
            )

    @staticmethod
    def _check_model(spec: ModelSpec, model: keras.Model, num_classes: int, origin: str) -> None:
        layer_names = {layer.name for layer in model.layers}
        missing = [n for n in ("logits", "probabilities") if n not in layer_names]
        if missing:
            raise ModelError(
                f"Model '{spec.name}' from {origin} has no layer named {' or '.join(repr(m) for m in missing)}. "
                "A neuroxai model ends with a layer named 'logits' (pre-softmax scores) followed by a softmax "
                "activation layer named 'probabilities'."
            )
        if spec.target_layer is not None and spec.target_layer not in layer_names:
            raise ModelError(
                f"Model '{spec.name}' from {origin}: its spec's target_layer {spec.target_layer!r} is not a layer "
                "of the built model. Fix the spec or name the layer."
            )
        out_shape = tuple(model.outputs[0].shape) if len(model.outputs) == 1 else None
        if out_shape is None or out_shape[-1] != num_classes:
            raise ModelError(
                f"Model '{spec.name}' from {origin}: expected one output of shape (batch, {num_classes}), "
                f"got {[tuple(o.shape) for o in model.outputs]}."
            )

    # ------------------------------------------------------------------ description
    def count_params(self, name: str) -> int:
        """Parameter count of ``name`` built at its default input shape (4 classes).

        Built under :func:`structure_only` (no weight downloads) and cached
        for the process.

        Raises:
            UnknownModelError: No such model.
            ModelError: The model failed to build.
        """
        spec = self.get(name)
        key = (
            spec.name,
            spec.source,
            getattr(spec.factory, "__module__", None),
            getattr(spec.factory, "__qualname__", id(spec.factory)),
            spec.input_shape,
        )
        if key not in _PARAM_CACHE:
            import keras

            with structure_only():
                model = self.create(spec.name, num_classes=4)
            _PARAM_CACHE[key] = int(model.count_params())
            del model
            keras.backend.clear_session(free_memory=False)
        return _PARAM_CACHE[key]

    def describe(self, pattern: str = "*", *, params: bool = True) -> list[dict[str, Any]]:
        """A JSON-able description of each model matching ``pattern``.

        Args:
            pattern: Shell-style name filter.
            params: Include ``params`` (builds each model once per process;
                ``None`` with an ``error`` entry if building fails).

        Returns:
            One dict per model: ``name``, ``source``, ``input_shape``,
            ``input_range``, ``target_layer``, ``description``, ``two_phase``,
            ``options`` (factory keyword defaults), ``plugin`` and ``params``.
        """
        rows = []
        for name in self.names(pattern):
            spec = self._specs[name]
            row = spec.to_dict()
            row["plugin"] = self._registered_by.get(name)
            row["options"] = _factory_options(spec)
            if params:
                try:
                    row["params"] = self.count_params(name)
                except NeuroxaiError as exc:
                    row["params"] = None
                    row["error"] = str(exc)
            rows.append(row)
        return rows

    def plugins(self) -> list[dict[str, Any]]:
        """The loaded plugins: origin, implemented hooks and the models each registered.

        Returns:
            One dict per plugin with ``name``, ``module``, ``builtin``,
            ``distribution``, ``version``, ``entry_point``, ``hooks`` and
            ``models``.
        """
        from neuroxai.plugins import registered_plugins

        out = []
        for plugin, info in registered_plugins(self._pm):
            row = info.to_dict()
            row["hooks"] = sorted(caller.name for caller in (self._pm.get_hookcallers(plugin) or []))
            row["models"] = sorted(n for n, by in self._registered_by.items() if by == info.name)
            out.append(row)
        return out


def _factory_options(spec: ModelSpec) -> dict[str, Any]:
    try:
        params = inspect.signature(spec.factory).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return {}
    out: dict[str, Any] = {}
    for name, p in params.items():
        if name in {"num_classes", "input_shape"} or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        default = None if p.default is inspect.Parameter.empty else p.default
        out[name] = default if isinstance(default, (str, int, float, bool, type(None))) else repr(default)
    return out
