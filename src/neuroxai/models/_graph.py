"""Target-layer resolution and a traced forward pass for any Keras model.

This is a fact about models, so it lives in the models layer: explanation
methods use it to reach a feature map and the pre-softmax scores, and
mask-guided training uses the same pass (in training mode) to shape them.

The textbook Grad-CAM recipe builds ``keras.Model(model.inputs,
[layer.output, model.output])``. That fails with "Graph disconnected" as soon
as the target layer lives inside a nested model (``x = EfficientNetB0(...)(x)``)
because the inner layer's output belongs to the inner graph.

Instead we *re-run* the user's graph on new tensors, one operation at a time,
and intercept two things on the way:

- the target layer's output (handed to a ``capture`` callback, which watches
  it on a ``GradientTape``), descending into nested models along a tuple path;
- the final softmax: if the model ends in ``Activation("softmax")``,
  ``Softmax()`` or ``Dense(activation="softmax")`` we compute the pre-softmax
  scores (logits) from the same tensors, without touching the layer.

Nothing on the user's model is modified: layers are only called, never
rebuilt, re-configured or re-weighted.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from neuroxai.errors import ExplainError

__all__ = ["ForwardResult", "LayerPath", "ScoreSource", "TracedModel", "feature_layer_candidates", "resolve_target_layer"]

#: A layer's path from the top-level model through nested models: a tuple of layer names.
LayerPath = tuple[str, ...]
#: What the scores explained are: pre-softmax ``"logits"``, ``"probabilities"`` (a softmax that cannot be
#: bypassed) or the model's ``"output"`` (no softmax).
ScoreSource = Literal["logits", "output", "probabilities"]


@dataclass(frozen=True)
class ForwardResult:
    """Tensors from one traced forward pass.

    Attributes:
        features: The target layer's output ``[B, h, w, K]`` (``None`` without a target layer).
        scores: ``[B, K]`` pre-softmax scores where reachable, else the model's output.
        probabilities: ``[B, K]`` the model's output.
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


def _layers(model: Any) -> list[Any]:
    keras = _keras()
    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def _output_rank(layer: Any) -> int | None:
    try:
        out = layer.output
    except (AttributeError, ValueError):  # a layer never called has no output
        return None
    shape = getattr(out, "shape", None)
    return None if shape is None else len(shape)


def feature_layer_candidates(model: Any, prefix: LayerPath = ()) -> list[LayerPath]:
    """All layers with a 4-D output (batch, height, width, channels), as paths, in graph order.

    Nested models appear both as themselves and through their inner layers.
    """
    found: list[LayerPath] = []
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
        if _is_model(layer):
            hits.extend(_find_by_name(layer, name, path))
    return hits


def _get_by_path(model: Any, path: LayerPath) -> Any:
    current = model
    for i, name in enumerate(path):
        if not _is_model(current):
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


def resolve_target_layer(model: Any, target_layer: str | Sequence[str] | None) -> LayerPath:
    """Turn a layer name, a tuple path or ``None`` (automatic) into a full path.

    Args:
        model: The Keras model.
        target_layer: A layer name (searched at the top level first, then inside
            nested models when the name is unique there), a tuple of names that
            walks into nested models, or ``None`` for the last layer with a 4-D
            output (descending into a nested model that produces it).

    Returns:
        The path, a tuple of layer names from the top-level model.

    Raises:
        ExplainError: The name or path does not exist, is ambiguous, or its
            output is not 4-D; the message lists the candidate layers.
    """
    model_name = getattr(model, "name", "model")
    if target_layer is None:
        top = [layer for layer in _layers(model) if _output_rank(layer) == 4]
        if not top:
            raise ExplainError(
                f"Cannot find a target layer automatically in model {model_name!r}: expected a layer with a 4-D "
                "(batch, height, width, channels) output, found none. Grad-CAM-family methods need a convolutional "
                "feature map; use a pixel method (saliency, smoothgrad, integrated_gradients, occlusion) instead."
            )
        path: LayerPath = (top[-1].name,)
        layer = top[-1]
        while _is_model(layer):
            inner = [sub for sub in _layers(layer) if _output_rank(sub) == 4]
            if not inner:
                break
            layer = inner[-1]
            path = (*path, layer.name)
        return path
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
                f"Target layer path {path!r} not found in model {model_name!r}: no layer at {exc.args[0]!r}. "
                f"Expected a tuple of names walking through nested models; {_candidates_text(model)}."
            ) from None
    layer = _get_by_path(model, path)
    rank = _output_rank(layer)
    if rank is not None and rank != 4:
        raise ExplainError(
            f"Target layer {_format_path(path)!r} in model {model_name!r} has a {rank}-D output; expected a 4-D "
            f"(batch, height, width, channels) feature map. {_candidates_text(model)}."
        )
    return path


def _softmax_kind(layer: Any) -> str | None:
    """How a final layer applies softmax: 'activation', 'dense' or None."""
    keras = _keras()
    if isinstance(layer, keras.layers.Softmax):
        axis = getattr(layer, "axis", -1)
        return "activation" if axis in (-1, None) else None
    act = getattr(layer, "activation", None)
    is_softmax = act is keras.activations.softmax or getattr(act, "__name__", None) == "softmax"
    if not is_softmax:
        return None
    if isinstance(layer, keras.layers.Activation):
        return "activation"
    if isinstance(layer, keras.layers.Dense) and type(layer) is keras.layers.Dense:
        if getattr(layer, "quantization_mode", None) or getattr(layer, "lora_enabled", False):
            return None
        return "dense"
    return None


def _ends_in_softmax(op: Any) -> bool:
    """Whether ``op`` (or the last layer of a nested model ``op``) applies a softmax."""
    keras = _keras()
    if op is None:
        return False
    if _is_model(op):
        layers = _layers(op)
        return bool(layers) and _ends_in_softmax(layers[-1])
    if isinstance(op, keras.layers.Softmax):
        return True
    act = getattr(op, "activation", None)
    return act is keras.activations.softmax or getattr(act, "__name__", None) == "softmax"


class TracedModel:
    """Run a Keras model on new tensors, exposing a feature map and pre-softmax scores.

    Args:
        model: A built Keras model with one 4-D image input and one output.
        target_path: The layer whose output is captured, or ``None`` for none.

    Calling it (``traced(x, capture=None)``) returns a :class:`ForwardResult`;
    it holds no state between calls and never modifies the model.

    Attributes:
        model: The Keras model.
        target_path: The captured layer's path (``None``: no feature map is captured).
        input_shape: ``(height, width, channels)`` of the model input (``None`` for a free size).
        num_classes: Output units (``None`` when unknown).
        score_source: ``"logits"`` when pre-softmax scores are reached,
            ``"output"`` when the model's output has no softmax, or
            ``"probabilities"`` when the output is a softmax we cannot undo.

    Raises:
        ExplainError: The model is not built, is subclassed (cannot be traced), or does not have one
            image input and one output.
    """

    def __init__(self, model: Any, target_path: LayerPath | None) -> None:
        _keras()
        self.model = model
        self.target_path = target_path
        self._softmax_kind: str | None = None
        self.score_source: ScoreSource = "output"
        if not getattr(model, "built", False):
            raise ExplainError(
                f"Model {model.name!r} is not built: expected a model with known input shape. Call it once on a "
                "batch or start it with keras.Input(shape=...)."
            )
        try:
            outputs = model.outputs
        except (AttributeError, ValueError):  # a subclassed model has no symbolic outputs
            outputs = None
        if outputs is None or (not _is_sequential(model) and not _is_functional(model)):
            raise ExplainError(
                f"Model {model.name!r} is a subclassed keras.Model; expected a Sequential or functional model whose "
                "layers can be traced. Wrap it: inputs = keras.Input(shape); model = keras.Model(inputs, net(inputs)), "
                "or use a functional model."
            )
        if len(outputs) != 1:
            raise ExplainError(f"Model {model.name!r} has {len(outputs)} outputs; expected one classification output.")
        if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
            shapes = [tuple(i.shape) for i in model.inputs]
            raise ExplainError(
                f"Model {model.name!r} has inputs {shapes}; expected one image input (batch, height, width, channels)."
            )
        self.input_shape: tuple[int | None, ...] = tuple(model.inputs[0].shape[1:])
        out = outputs[0]
        self.num_classes: int | None = int(out.shape[-1]) if out.shape[-1] is not None else None
        history = getattr(out, "_keras_history", None)
        self._output_op = history[0] if history is not None else None
        if _is_sequential(model):
            self._output_op = _layers(model)[-1]
        kind = _softmax_kind(self._output_op) if self._output_op is not None else None
        if kind is not None:
            self.score_source = "logits"
            self._softmax_kind = kind
        elif _ends_in_softmax(self._output_op):
            self.score_source = "probabilities"

    # -- running ---------------------------------------------------------------------------------
    def __call__(self, x: Any, capture: Callable[[Any], Any] | None = None, *, training: bool = False) -> ForwardResult:
        """Run the model on ``x``; ``capture(features)`` may return a replacement tensor.

        Args:
            x: A batch of model inputs.
            capture: Called with the target layer's output; its return value replaces it downstream.
            training: Run layers in training mode (dropout on, batch statistics updated), as
                mask-guided training does; explanations run in inference mode (the default).
        """
        state: dict[str, Any] = {"features": None, "logits": None}

        def on_feature(t: Any) -> Any:
            if capture is not None:
                t = capture(t)
            state["features"] = t
            return t

        def on_output(op: Any) -> Callable[..., Any]:
            def call(*args: Any, **kwargs: Any) -> Any:
                from keras import ops

                if self._softmax_kind == "activation":
                    logits = args[0]
                else:  # dense
                    logits = ops.matmul(args[0], op.kernel)
                    if op.bias is not None:
                        logits = logits + op.bias
                state["logits"] = logits
                return ops.softmax(logits, axis=-1)

            return call

        output = _run(
            self.model,
            x,
            self.target_path or (),
            on_feature,
            self._output_op if self._softmax_kind else None,
            on_output,
            training=training,
        )
        if self.target_path and state["features"] is None:
            raise ExplainError(
                f"Target layer {self.target_path!r} of model {self.model.name!r} is not on the path from the input to "
                "the output; pick a layer the prediction depends on."
            )
        scores = state["logits"] if state["logits"] is not None else output
        return ForwardResult(features=state["features"], scores=scores, probabilities=output)


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
    output_op: Any | None,
    on_output: Callable[[Any], Callable[..., Any]],
    *,
    training: bool = False,
) -> Any:
    """Run ``model`` on ``x`` op by op, intercepting ``path`` and ``output_op``."""

    def wrap(op: Any) -> Callable[..., Any]:
        if output_op is not None and op is output_op:
            return on_output(op)
        if path and getattr(op, "name", None) == path[0]:
            if len(path) == 1:
                return lambda *a, **k: on_feature(_call_op(op, a, k, training))
            return lambda *a, **k: _run(
                op, a[0] if len(a) == 1 else list(a), path[1:], on_feature, None, on_output, training=training
            )
        return lambda *a, **k: _call_op(op, a, k, training)

    if _is_sequential(model):
        out = x
        for layer in _layers(model):
            out = wrap(layer)(out)
        return out
    if _is_functional(model):
        inputs = model._standardize_inputs(x) if hasattr(model, "_standardize_inputs") else x
        outputs = model._run_through_graph(inputs, operation_fn=wrap)
        if isinstance(outputs, (list, tuple)) and len(outputs) == 1:
            outputs = outputs[0]
        return outputs
    if path:
        raise ExplainError(
            f"Cannot trace into nested model {model.name!r}: it is a subclassed model; pick a target layer outside it."
        )
    return _call_op(model, [x], {}, training)
