"""ModelRegistry: every built-in and plugin model, by name."""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import inspect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from neuroxai._records import Record
from neuroxai.errors import ModelError, NeuroxaiError, UnknownModelError
from neuroxai.models._spec import ModelSpec, validate_input_shape
from neuroxai.plugins import PluginInfo, Registry, get_plugin_manager

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = ["ModelDescription", "ModelRegistry", "PluginSummary", "is_structure_only", "structure_only"]

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


@dataclass(frozen=True)
class ModelDescription(Record):
    """One row of :meth:`ModelRegistry.describe` (what ``neuroxai models`` prints).

    Attributes:
        name, source, input_shape, input_range, target_layer, description: From the spec.
        two_phase: The spec has a transfer recipe (two-phase fine-tuning).
        plugin: Name of the plugin that registered it (``None``: a direct ``register`` call).
        options: The factory's keyword options and their defaults.
        params: Parameter count at the default input shape (``None`` when not counted or the build failed).
        error: Why the build failed, when it did.
    """

    name: str
    source: str
    input_shape: tuple[int, int, int]
    input_range: tuple[float, float]
    target_layer: str | None
    description: str
    two_phase: bool
    plugin: str | None
    options: dict[str, Any]
    params: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class PluginSummary(Record):
    """A loaded plugin, the hooks it implements and the models it registered (:meth:`ModelRegistry.plugins`)."""

    info: PluginInfo
    hooks: tuple[str, ...]
    models: tuple[str, ...]


class ModelRegistry(Registry[ModelSpec]):
    """The models neuroxai can build, by name: built-ins plus installed plugins.

    A new registry asks every plugin (the built-ins first, then installed
    plugins unless autoload is off, then ``plugins``) to register its models
    through the ``neuroxai_register_models`` hook.

    Args:
        autoload: Load installed plugins from entry points. ``None`` (default)
            loads them unless ``NEUROXAI_DISABLE_PLUGIN_AUTOLOAD=1``. The
            built-in models are always present.
        plugins: Extra plugin objects with a ``neuroxai_register_models``
            hook implementation, used for this registry only.

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

    kind = "model"
    hook = "neuroxai_register_models"
    error = ModelError
    unknown_error = UnknownModelError

    def _builtin_plugin(self) -> object:
        from neuroxai.models import builtin

        return builtin

    def _check(self, name: str, item: object, origin: PluginInfo | None) -> ModelSpec:
        if not isinstance(item, ModelSpec):
            who = f" (from {origin.describe().lower()})" if origin else ""
            raise ModelError(f"registry.register expects a neuroxai.ModelSpec, got {type(item).__name__}{who}.")
        if origin is not None and not origin.builtin and item.source == "neuroxai":
            item = dataclasses.replace(item, source=origin.source)
        return item

    def _source(self, name: str, item: ModelSpec) -> str:
        return item.source

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
        return self._add(str(getattr(spec, "name", "?")), spec, override=override)

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

    def describe(self, pattern: str = "*", *, params: bool = True) -> list[ModelDescription]:
        """A description of each model matching ``pattern``.

        Args:
            pattern: Shell-style name filter.
            params: Count parameters (builds each model once per process;
                ``params`` is ``None`` with an ``error`` when building fails).

        Returns:
            One :class:`ModelDescription` per model, sorted by name.
        """
        rows = []
        for name in self.names(pattern):
            spec = self.get(name)
            origin = self.origin(name)
            count: int | None = None
            error: str | None = None
            if params:
                try:
                    count = self.count_params(name)
                except NeuroxaiError as exc:
                    error = str(exc)
            rows.append(
                ModelDescription(
                    name=spec.name,
                    source=spec.source,
                    input_shape=spec.input_shape,
                    input_range=spec.input_range,
                    target_layer=spec.target_layer,
                    description=spec.description,
                    two_phase=spec.transfer is not None,
                    plugin=origin.name if origin is not None else None,
                    options=_factory_options(spec),
                    params=count,
                    error=error,
                )
            )
        return rows

    def plugins(self) -> list[PluginSummary]:
        """The loaded plugins: origin, implemented hooks and the models each registered."""
        pm = get_plugin_manager(autoload=False)
        out = []
        for plugin, info in pm.registered():
            hooks = tuple(sorted(caller.name for caller in (pm.get_hookcallers(plugin) or [])))
            models = tuple(n for n in self.names() if (o := self.origin(n)) is not None and o.name == info.name)
            out.append(PluginSummary(info=info, hooks=hooks, models=models))
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
