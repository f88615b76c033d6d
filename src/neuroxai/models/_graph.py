"""Target-layer resolution and a traced forward pass for any Keras model.

This is a fact about models, so it lives in the models layer: explanation
methods use it to reach a feature map and the pre-activation scores, and
mask-guided training uses the same pass (in training mode) to shape them.

The textbook Grad-CAM recipe builds ``keras.Model(model.inputs,
[layer.output, model.output])``. That fails with "Graph disconnected" as soon
as the target layer lives inside a nested model (``x = EfficientNetB0(...)(x)``)
because the inner layer's output belongs to the inner graph.

Instead we *re-run* the user's graph on new tensors, one operation at a time,
and intercept two things on the way:

- the target layer's output (handed to a ``capture`` callback, which watches
  it on a ``GradientTape``), descending into nested models along a tuple path;
- the final activation: if the (chosen) output comes from ``Softmax()``,
  ``Activation("softmax"/"sigmoid")`` or ``Dense(activation="softmax"/"sigmoid")``,
  also inside a nested head model, we compute the pre-activation scores
  (logits) from the same tensors, without touching the layer.

The model's *head* (:mod:`neuroxai.models._heads`: softmax, logits,
independent sigmoids, one sigmoid unit) is read from that last layer or
stated by the caller; it decides how outputs become class probabilities and
which scores gradients are taken of.

Nothing on the user's model is modified: layers are only called, never
rebuilt, re-configured or re-weighted.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from neuroxai.errors import ExplainError
from neuroxai.models._heads import Head, check_head, head_classes

__all__ = [
    "ForwardResult",
    "LayerPath",
    "ScoreSource",
    "TracedModel",
    "detect_head",
    "feature_layer_candidates",
    "resolve_output",
    "resolve_target_layer",
]

logger = logging.getLogger(__name__)

#: A layer's path from the top-level model through nested models: a tuple of layer names.
LayerPath = tuple[str, ...]
#: What the scores explained are: pre-activation ``"logits"`` (reached, or the model outputs logits),
#: ``"probabilities"`` (a softmax/sigmoid that cannot be bypassed) or the model's ``"output"`` (a last
#: layer whose meaning is unknown).
ScoreSource = Literal["logits", "output", "probabilities"]
#: How a last layer applies its activation: the activation, and how to get in front of it
#: (``"activation"``: the layer is the activation alone; ``"dense"``: a plain Dense layer; ``None``: cannot).
_Activation = tuple[Literal["softmax", "sigmoid", "linear"] | None, Literal["activation", "dense"] | None]


@dataclass(frozen=True)
class ForwardResult:
    """Tensors from one traced forward pass.

    Attributes:
        features: The target layer's output ``[B, h, w, K]`` (``None`` without a target layer).
        scores: float32 ``[B, C]`` class scores gradients are taken of: pre-activation where reachable
            (``[-z, z]`` for a one-unit binary head), else the probabilities.
        probabilities: float32 ``[B, C]`` class probabilities as the head defines them (``C`` = 2 for a
            one-unit output).
    """

    features: Any
    scores: Any
    probabilities: Any


def _keras() -> Any:
    import keras

    return keras


def _is_model(layer: Any) -> bool:
    keras = _keras()
    return isinstance(layer, keras.Model)


def _is_sequential(model: Any) -> bool:
    keras = _keras()
    return isinstance(model, keras.Sequential)


def _is_functional(model: Any) -> bool:
    return hasattr(model, "_run_through_graph") and hasattr(model, "_nodes_by_depth") and not _is_sequential(model)


def _is_traceable(model: Any) -> bool:
    """Whether we can run ``model`` op by op (Sequential or functional; not a subclassed model)."""
    return _is_sequential(model) or _is_functional(model)


def _layers(model: Any) -> list[Any]:
    keras = _keras()
    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def _single(out: Any) -> Any:
    """A one-element list or tuple of tensors as its element (loaded nested models report outputs so)."""
    if isinstance(out, (list, tuple)) and len(out) == 1:
        return out[0]
    return out


def _output_rank(layer: Any) -> int | None:
    try:
        out = _single(layer.output)
    except (AttributeError, ValueError):  # a layer never called, or called several times, has no single output
        return None
    shape = getattr(out, "shape", None)
    return None if shape is None else len(shape)


def _output_tensors(model: Any) -> list[Any]:
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        return []
    return list(outputs or [])


def _ancestor_ids(model: Any, output_index: int | None) -> set[int] | None:
    """ids of the layers the chosen output (``None``: every output) depends on; ``None`` when unknown."""
    if _is_sequential(model):
        return {id(layer) for layer in _layers(model)}
    outputs = _output_tensors(model)
    if not outputs:
        return None
    stack = list(outputs if output_index is None else [outputs[output_index]])
    seen_nodes: set[tuple[int, int]] = set()
    found: set[int] = set()
    while stack:
        tensor = stack.pop()
        history = getattr(tensor, "_keras_history", None)
        if history is None:
            continue
        op, node_index = history[0], history[1]
        if (id(op), node_index) in seen_nodes:
            continue
        seen_nodes.add((id(op), node_index))
        found.add(id(op))
        try:
            node = op._inbound_nodes[node_index]
        except (AttributeError, IndexError):
            continue
        stack.extend(getattr(node, "input_tensors", ()) or ())
    return found


def _feature_layers(model: Any, output_index: int | None = None) -> list[Any]:
    """Layers with a 4-D output that the chosen output depends on, in graph order."""
    ancestors = _ancestor_ids(model, output_index)
    return [layer for layer in _layers(model) if (ancestors is None or id(layer) in ancestors) and _output_rank(layer) == 4]


def feature_layer_candidates(model: Any, prefix: LayerPath = ()) -> list[LayerPath]:
    """All layers with a 4-D output (batch, height, width, channels), as paths, in graph order.

    Nested Sequential and functional models appear both as themselves and through their inner
    layers; a nested subclassed model appears as itself only (it cannot be traced into).
    """
    found: list[LayerPath] = []
    if not _is_traceable(model):
        return found
    for layer in _layers(model):
        path = (*prefix, layer.name)
        if _is_model(layer):
            found.extend(feature_layer_candidates(layer, path))
        if _output_rank(layer) == 4:
            found.append(path)
    return found


def _find_by_name(model: Any, name: str, prefix: LayerPath = ()) -> list[LayerPath]:
    hits: list[LayerPath] = []
    for layer in _layers(model):
        path = (*prefix, layer.name)
        if layer.name == name:
            hits.append(path)
        if _is_model(layer) and _is_traceable(layer):
            hits.extend(_find_by_name(layer, name, path))
    return hits


def _get_by_path(model: Any, path: LayerPath) -> Any:
    current = model
    for i, name in enumerate(path):
        if not _is_model(current) or not _is_traceable(current):
            raise KeyError(path[: i + 1])
        match = [layer for layer in _layers(current) if layer.name == name]
        if not match:
            raise KeyError(path[: i + 1])
        current = match[0]
    return current


def _format_path(path: LayerPath) -> str:
    return path[0] if len(path) == 1 else repr(path)


def _candidates_text(model: Any) -> str:
    cands = feature_layer_candidates(model)
    if not cands:
        return "the model has no layer with a 4-D (batch, height, width, channels) output"
    shown = [_format_path(p) for p in cands[-12:]]
    more = f" (and {len(cands) - 12} earlier)" if len(cands) > 12 else ""
    return "candidate 4-D layers, last first: " + ", ".join(reversed(shown)) + more


def _subclassed_message(model: Any) -> str:
    return (
        f"Model {model.name!r} is a subclassed keras.Model, whose layers cannot be traced, so Grad-CAM-family methods "
        "cannot reach a feature map inside it. Wrap it as a functional model (inputs = keras.Input(shape); "
        "model = keras.Model(inputs, net(inputs))) with a traceable backbone, or use a pixel method "
        "(saliency, smoothgrad, integrated_gradients, occlusion), which work on any model."
    )


def resolve_output(model: Any, output: int | str | None) -> int:
    """The index (in ``model.outputs``) of the output to explain.

    Args:
        model: The Keras model.
        output: ``None`` (the model's only output), an index, or an output name (``model.output_names``).

    Returns:
        The output's index.

    Raises:
        ExplainError: ``None`` for a model with several outputs, an index out of range, or an unknown name;
            the message lists the outputs.
    """
    outputs = _output_tensors(model)
    n = len(outputs) if outputs else 1
    names = [str(n_) for n_ in (getattr(model, "output_names", None) or [])] if outputs else []
    listed = ", ".join(f"{i}: {names[i] if i < len(names) else '?'} {tuple(t.shape)}" for i, t in enumerate(outputs))
    if output is None:
        if n != 1:
            raise ExplainError(
                f"Model {model.name!r} has {n} outputs ({listed}); pass output= (an index or a name) to pick the "
                "classification output to explain."
            )
        return 0
    if isinstance(output, str):
        if output in names:
            return names.index(output)
        raise ExplainError(f"Model {model.name!r} has no output named {output!r}; its outputs are {listed or 'unnamed'}.")
    if isinstance(output, bool) or not isinstance(output, int) or not -n <= output < n:
        raise ExplainError(f"output must be an output name or an index in 0..{n - 1} for model {model.name!r}; got {output!r}.")
    return output % n


def _auto_path(model: Any, output_index: int | None, prefix: LayerPath = ()) -> LayerPath | None:
    """The last 4-D layer the output depends on, descending into a traceable nested model that produces it."""
    top = _feature_layers(model, output_index)
    if not top:
        return None
    layer = top[-1]
    path = (*prefix, layer.name)
    if _is_model(layer) and _is_traceable(layer):
        return _auto_path(layer, None, path) or path
    return path


def resolve_target_layer(model: Any, target_layer: str | Sequence[str] | None, *, output: int | str | None = None) -> LayerPath:
    """Turn a layer name, a tuple path or ``None`` (automatic) into a full path.

    Args:
        model: The Keras model.
        target_layer: A layer name (searched at the top level first, then inside
            nested models when the name is unique there), a tuple of names that
            walks into nested models, or ``None`` for the last layer with a 4-D
            output that the explained output depends on (descending into a
            nested Sequential or functional model that produces it).
        output: Which output of a multi-output model is explained (index or name), for the automatic search.

    Returns:
        The path, a tuple of layer names from the top-level model.

    Raises:
        ExplainError: The name or path does not exist, is ambiguous, goes into a subclassed model, or its
            output is not 4-D; the message lists the candidate layers.
    """
    model_name = getattr(model, "name", "model")
    if not _is_traceable(model):
        raise ExplainError(_subclassed_message(model))
    if target_layer is None:
        found = _auto_path(model, resolve_output(model, output))
        if found is None:
            cands = feature_layer_candidates(model)
            if cands:
                raise ExplainError(
                    f"Cannot find a target layer automatically in model {model_name!r}: no layer with a 4-D "
                    "(batch, height, width, channels) output lies on the path to the explained output. Pass "
                    f"target_layer= (a name, or a tuple path into a nested model); {_candidates_text(model)}."
                )
            raise ExplainError(
                f"Cannot find a target layer automatically in model {model_name!r}: expected a layer with a 4-D "
                "(batch, height, width, channels) output, found none. Grad-CAM-family methods need a convolutional "
                "feature map; use a pixel method (saliency, smoothgrad, integrated_gradients, occlusion) instead."
            )
        return found
    path: LayerPath
    if isinstance(target_layer, str):
        if "." in target_layer and not _find_by_name(model, target_layer):
            hint = " Use a tuple of names for a layer inside a nested model, e.g. ('efficientnetb0', 'top_conv')."
        else:
            hint = ""
        top_hits = [layer for layer in _layers(model) if layer.name == target_layer]
        if top_hits:
            path = (target_layer,)
        else:
            hits = _find_by_name(model, target_layer)
            if len(hits) > 1:
                raise ExplainError(
                    f"Target layer {target_layer!r} is ambiguous in model {model_name!r}: found at "
                    + ", ".join(repr(h) for h in hits)
                    + ". Pass the full path as a tuple."
                )
            if not hits:
                names = [p[-1] for p in feature_layer_candidates(model)]
                close = difflib.get_close_matches(target_layer, names, n=1)
                sugg = f" Did you mean {close[0]!r}?" if close else ""
                raise ExplainError(
                    f"Target layer {target_layer!r} not found in model {model_name!r}.{sugg}{hint} "
                    f"Expected a layer name or a tuple path; {_candidates_text(model)}."
                )
            path = hits[0]
    else:
        path = tuple(target_layer)
        if not path or not all(isinstance(p, str) for p in path):
            raise ExplainError(f"target_layer must be a layer name, a tuple of layer names or None; got {target_layer!r}.")
        try:
            _get_by_path(model, path)
        except KeyError as exc:
            raise ExplainError(
                f"Target layer path {path!r} not found in model {model_name!r}: no layer at {exc.args[0]!r} (or a "
                "subclassed model on the way, which cannot be traced into). Expected a tuple of names walking "
                f"through nested Sequential or functional models; {_candidates_text(model)}."
            ) from None
    layer = _get_by_path(model, path)
    rank = _output_rank(layer)
    if rank is not None and rank != 4:
        raise ExplainError(
            f"Target layer {_format_path(path)!r} in model {model_name!r} has a {rank}-D output; expected a 4-D "
            f"(batch, height, width, channels) feature map. {_candidates_text(model)}."
        )
    return path


def _activation_name(fn: Any) -> str | None:
    keras = _keras()
    for name in ("softmax", "sigmoid", "linear"):
        if fn is getattr(keras.activations, name) or getattr(fn, "__name__", None) == name:
            return name
    return None


def _last_activation(layer: Any) -> _Activation:
    """What the last layer applies (softmax, sigmoid, linear or unknown) and how to get in front of it."""
    keras = _keras()
    if layer is None:
        return None, None
    if isinstance(layer, keras.layers.Softmax):
        axis = getattr(layer, "axis", -1)
        return "softmax", "activation" if axis in (-1, None) else None
    act = _activation_name(getattr(layer, "activation", None))
    if act is None:
        return None, None
    if act == "linear":
        return "linear", None
    if isinstance(layer, keras.layers.Activation):
        return act, "activation"  # type: ignore[return-value]  # act is softmax or sigmoid here
    plain_dense = isinstance(layer, keras.layers.Dense) and type(layer) is keras.layers.Dense
    if plain_dense and not (getattr(layer, "quantization_mode", None) or getattr(layer, "lora_enabled", False)):
        return act, "dense"  # type: ignore[return-value]
    return act, None  # type: ignore[return-value]


def _output_chain(model: Any, output_index: int) -> tuple[Any, ...]:
    """The op producing the chosen output: ``(nested model, ..., last layer)`` descending into nested head models."""
    if _is_sequential(model):
        layers = _layers(model)
        if not layers:
            return ()
        op = layers[-1]
    elif _is_functional(model):
        outputs = _output_tensors(model)
        history = getattr(outputs[output_index], "_keras_history", None) if outputs else None
        if history is None:
            return ()
        op = history[0]
    else:
        return ()
    if _is_model(op) and _is_traceable(op) and len(_output_tensors(op) or [None]) == 1:
        inner = _output_chain(op, 0)
        return (op, *inner) if inner else ()
    return (op,)


def detect_head(model: Any, output: int | str | None = None) -> tuple[Head, bool]:
    """The model's head as read from its last layer.

    Args:
        model: A Keras model.
        output: Which output, for a multi-output model (index or name).

    Returns:
        ``(head, detected)``: ``detected`` is False when the last layer does not say (a custom
        layer, a subclassed model); the head is then assumed: ``"softmax"``, or ``"binary"`` for one unit.

    Example:
        >>> detect_head(model)  # doctest: +SKIP
        ('logits', True)
    """
    if _is_traceable(model):
        index = resolve_output(model, output)
        units = _units(_output_tensors(model)[index]) if _output_tensors(model) else None
        chain = _output_chain(model, index)
    else:
        units, chain = None, ()
    kind, _ = _last_activation(chain[-1] if chain else None)
    return _head_from(kind, units)


def _head_from(kind: str | None, units: int | None) -> tuple[Head, bool]:
    if kind == "softmax":
        return "softmax", True
    if kind == "sigmoid":
        return ("binary" if units == 1 else "sigmoid"), True
    if kind == "linear":
        return "logits", True
    return ("binary" if units == 1 else "softmax"), False


def _units(tensor: Any) -> int | None:
    shape = getattr(tensor, "shape", None)
    if shape is None or len(shape) < 2 or shape[-1] is None:
        return None
    return int(shape[-1])


def _subclassed_io(model: Any) -> tuple[tuple[int | None, ...], Any]:
    """``(input shape (H, W, C), output spec)`` of a built subclassed model."""
    keras = _keras()
    shapes = getattr(model, "_build_shapes_dict", None) or {}
    shape = next(iter(shapes.values()), None) if len(shapes) == 1 else None
    if shape is None or len(shape) != 4:
        raise ExplainError(
            f"Model {model.name!r} is a subclassed keras.Model without one known 4-D input shape; expected a model "
            "built on (batch, height, width, channels) images. Call it once on a batch, or wrap it: "
            "inputs = keras.Input(shape); keras.Model(inputs, net(inputs))."
        )
    try:
        spec = model.compute_output_spec(keras.KerasTensor((1, *shape[1:])))
    except Exception as exc:  # any failure of a user's call() means we cannot learn its output
        raise ExplainError(
            f"Could not run subclassed model {model.name!r} on a symbolic batch: {type(exc).__name__}: {exc}"
        ) from exc
    return tuple(shape[1:]), spec


class TracedModel:
    """Run a Keras model on new tensors, exposing a feature map, pre-activation scores and probabilities.

    Args:
        model: A built Keras model with one 4-D image input. Sequential and functional models (nested
            ones included) can be traced to any layer; a subclassed model can only be run whole
            (``target_path=None``: pixel and perturbation methods).
        target_path: The layer whose output is captured, or ``None`` for none.
        head: What the output means (:data:`~neuroxai.models.Head`); ``None``: read from the last layer
            (:func:`detect_head`).
        output: Which output of a multi-output model (index or name); ``None`` for a one-output model.

    Calling it (``traced(x, capture=None)``) returns a :class:`ForwardResult`;
    it holds no state between calls and never modifies the model.

    Attributes:
        model: The Keras model.
        target_path: The captured layer's path (``None``: no feature map is captured).
        input_shape: ``(height, width, channels)`` of the model input (``None`` for a free size).
        units: The explained output's last dimension (``None`` when unknown).
        num_classes: Classes the head shows (2 for one unit; ``None`` when unknown).
        head: The head used.
        head_detected: Whether the head was read from the last layer (False: stated or assumed).
        output_index: Index of the explained output.
        score_source: ``"logits"`` when pre-activation scores are reached (or the output is logits),
            ``"probabilities"`` when a softmax/sigmoid cannot be bypassed, ``"output"`` when the last
            layer's meaning is unknown and the head assumed.

    Raises:
        ExplainError: The model is not built, has not one image input, a target path into a model that
            cannot be traced, an output that does not exist, or a head that does not fit the output.
    """

    def __init__(
        self,
        model: Any,
        target_path: LayerPath | None,
        *,
        head: Head | None = None,
        output: int | str | None = None,
    ) -> None:
        _keras()
        self.model = model
        self.target_path = target_path
        if not getattr(model, "built", False):
            raise ExplainError(
                f"Model {model.name!r} is not built: expected a model with known input shape. Call it once on a "
                "batch or start it with keras.Input(shape=...)."
            )
        self._traceable = _is_traceable(model)
        if self._traceable:
            outputs = _output_tensors(model)
            if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
                shapes = [tuple(i.shape) for i in model.inputs]
                raise ExplainError(
                    f"Model {model.name!r} has inputs {shapes}; expected one image input (batch, height, width, channels)."
                )
            self.output_index = resolve_output(model, output)
            self.input_shape: tuple[int | None, ...] = tuple(model.inputs[0].shape[1:])
            self.units: int | None = _units(outputs[self.output_index])
            chain = _output_chain(model, self.output_index)
        else:
            if target_path:
                raise ExplainError(_subclassed_message(model))
            self.input_shape, spec = _subclassed_io(model)
            keras = _keras()
            specs = keras.tree.flatten(spec)
            self.output_index = 0 if output is None else int(output) if not isinstance(output, str) else -1
            if not 0 <= self.output_index < len(specs):
                raise ExplainError(
                    f"output must be an index in 0..{len(specs) - 1} for subclassed model {model.name!r}; got {output!r}."
                )
            self.units = _units(specs[self.output_index])
            chain = ()
        kind, bypass = _last_activation(chain[-1] if chain else None)
        detected_head, detected = _head_from(kind, self.units)
        if head is None:
            self.head: Head = detected_head
            self.head_detected = detected
            if not detected:
                logger.info(
                    "Model %r: the last layer does not say what the output means; assuming head %r (pass head= to state it).",
                    model.name,
                    detected_head,
                )
        else:
            self.head = check_head(head, self.units, name=f"head of model {model.name!r}", error=ExplainError)
            self.head_detected = False
        self.num_classes: int | None = None if self.units is None else head_classes(self.head, self.units)
        wants = {"softmax": "softmax", "sigmoid": "sigmoid", "binary": "sigmoid"}.get(self.head)
        self._bypass = bypass if (bypass is not None and kind == wants) else None
        self._chain: tuple[Any, ...] = chain if self._bypass is not None else ()
        self._activation = kind
        if self._bypass is not None or self.head == "logits":
            self.score_source: ScoreSource = "logits"
        elif kind in ("softmax", "sigmoid") or head is not None:
            self.score_source = "probabilities"
        else:
            self.score_source = "output"

    # -- running ---------------------------------------------------------------------------------
    def __call__(self, x: Any, capture: Callable[[Any], Any] | None = None, *, training: bool = False) -> ForwardResult:
        """Run the model on ``x``; ``capture(features)`` may return a replacement tensor.

        Args:
            x: A batch of model inputs.
            capture: Called with the target layer's output; its return value replaces it downstream.
            training: Run layers in training mode (dropout on, batch statistics updated), as
                mask-guided training does; explanations run in inference mode (the default).
        """
        from keras import ops

        state: dict[str, Any] = {"features": None, "logits": None}

        def on_feature(t: Any) -> Any:
            if capture is not None:
                t = capture(t)
            state["features"] = t
            return t

        def on_output(op: Any) -> Callable[..., Any]:
            def call(*args: Any, **kwargs: Any) -> Any:
                if self._bypass == "activation":
                    logits = ops.cast(args[0], "float32")
                else:  # a plain Dense layer
                    logits = ops.matmul(ops.cast(args[0], "float32"), ops.cast(op.kernel, "float32"))
                    if op.bias is not None:
                        logits = logits + ops.cast(op.bias, "float32")
                state["logits"] = logits
                return ops.softmax(logits, axis=-1) if self._activation == "softmax" else ops.sigmoid(logits)

            return call

        keras = _keras()
        outputs = _run(self.model, x, self.target_path or (), on_feature, self._chain, on_output, training=training)
        raw = ops.cast(keras.tree.flatten(outputs)[self.output_index], "float32")
        if self.target_path and state["features"] is None:
            raise ExplainError(
                f"Target layer {self.target_path!r} of model {self.model.name!r} is not on the path from the input to "
                "the output; pick a layer the prediction depends on."
            )
        scores, probabilities = self._head_scores(raw, state["logits"])
        return ForwardResult(features=state["features"], scores=scores, probabilities=probabilities)

    def _head_scores(self, raw: Any, logits: Any) -> tuple[Any, Any]:
        """``(scores, probabilities)`` ``[B, C]`` from the output ``raw`` and the intercepted pre-activation ``logits``."""
        from keras import ops

        if self.units == 1 and self.head in ("binary", "logits"):
            z = raw if self.head == "logits" else logits
            if z is not None:
                p = ops.sigmoid(z)
                return ops.concatenate([-z, z], axis=-1), ops.concatenate([1.0 - p, p], axis=-1)
            probabilities = ops.concatenate([1.0 - raw, raw], axis=-1)
            return probabilities, probabilities
        if self.head == "logits":
            return raw, ops.softmax(raw, axis=-1)
        return (raw if logits is None else logits), raw


def _call_op(op: Any, args: Sequence[Any], kwargs: dict[str, Any], training: bool = False) -> Any:
    keras = _keras()
    if isinstance(op, keras.layers.Layer) and "training" not in kwargs:
        kwargs = dict(kwargs, training=training)
    return op(*args, **kwargs)


def _run(
    model: Any,
    x: Any,
    path: LayerPath,
    on_feature: Callable[[Any], Any],
    chain: tuple[Any, ...],
    on_output: Callable[[Any], Callable[..., Any]],
    *,
    training: bool = False,
) -> Any:
    """Run ``model`` on ``x`` op by op, intercepting the layer at ``path`` and the last op of ``chain``.

    ``chain`` is ``(nested model, ..., last layer)``: the nested models to descend into on the way to
    the output's last layer, whose activation ``on_output`` replaces (empty: nothing replaced).
    """

    def wrap(op: Any) -> Callable[..., Any]:
        if len(chain) == 1 and op is chain[0]:
            return on_output(op)
        on_path = bool(path) and getattr(op, "name", None) == path[0]
        if on_path and len(path) == 1:
            return lambda *a, **k: on_feature(_call_op(op, a, k, training))
        into_chain = len(chain) > 1 and op is chain[0]
        if (on_path and len(path) > 1) or into_chain:
            inner_path = path[1:] if on_path else ()
            inner_chain = chain[1:] if into_chain else ()
            return lambda *a, **k: _run(
                op, a[0] if len(a) == 1 else list(a), inner_path, on_feature, inner_chain, on_output, training=training
            )
        return lambda *a, **k: _call_op(op, a, k, training)

    if _is_sequential(model):
        out = x
        for layer in _layers(model):
            out = wrap(layer)(out)
        return out
    if _is_functional(model):
        inputs = model._standardize_inputs(x) if hasattr(model, "_standardize_inputs") else x
        return _single(model._run_through_graph(inputs, operation_fn=wrap))
    if path:
        raise ExplainError(
            f"Cannot trace into nested model {model.name!r}: it is a subclassed model; pick a target layer outside it."
        )
    return _call_op(model, [x], {}, training)
