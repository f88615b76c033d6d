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

import copy
import difflib
import logging
import math
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from neuroxai.errors import ExplainError
from neuroxai.models._heads import Head, check_head, head_classes
from neuroxai.models._layout import MAX_INFERRED_EXTRA, FeatureLayout, TokenGrid, check_token_grid, grid_fits, grid_from_input

__all__ = [
    "AttentionCall",
    "ForwardResult",
    "LayerPath",
    "ModelOutput",
    "ScoreSource",
    "TracedModel",
    "detect_head",
    "feature_layer_candidates",
    "resolve_output",
    "resolve_target_layer",
    "token_layout",
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
        features: The target layer's output as the model computes it (``None`` without a target layer): a
            feature map ``[B, *grid, K]``, or tokens ``[B, T, K]``
            (:meth:`TracedModel.to_grid` puts them on their grid).
        scores: float32 ``[B, C]`` class scores gradients are taken of: pre-activation where reachable
            (``[-z, z]`` for a one-unit binary head), else the probabilities.
        probabilities: float32 ``[B, C]`` class probabilities as the head defines them (``C`` = 2 for a
            one-unit output).
        objective: float32 ``[B]``: the value of the traced model's objective (a callable target, see
            :meth:`TracedModel.with_objective`) per image; ``None`` when targets are classes.
    """

    features: Any
    scores: Any
    probabilities: Any
    objective: Any = None


@dataclass(frozen=True)
class ModelOutput:
    """What a callable target receives: the model's class scores for a batch, as backend tensors.

    A callable target returns one float per image (``[B]``), computed with ``keras.ops`` from that image's
    row only (the batch may be split into chunks, and noisy or masked copies of an image are scored the
    same way); the methods explain that value instead of a class score.

    Attributes:
        scores: float32 ``[B, C]``: the pre-activation class scores (logits) where the model lets them be
            reached, as gradient methods use them (``[-z, z]`` for one sigmoid unit); the probabilities
            when the softmax cannot be bypassed (the Explainer's ``score_source`` says which).
        probabilities: float32 ``[B, C]``: the class probabilities.

    Example:
        >>> def why_glioma_not_meningioma(out):  # a margin between two logits
        ...     return out.scores[:, 0] - out.scores[:, 1]
    """

    scores: Any
    probabilities: Any


#: How an attention-reading method runs each ``MultiHeadAttention`` op: ``fn(layer, call, args, kwargs)``
#: returns the op's output; ``call(**extra)`` runs the layer on its own arguments plus ``extra``
#: (e.g. ``return_attention_scores=True``).
AttentionCall = Callable[[Any, Callable[..., Any], tuple[Any, ...], dict[str, Any]], Any]


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


def _output_shape(layer: Any) -> tuple[int | None, ...] | None:
    try:
        out = _single(layer.output)
    except (AttributeError, ValueError):  # a layer never called, or called several times, has no single output
        return None
    shape = getattr(out, "shape", None)
    return None if shape is None else tuple(shape)


def _output_rank(layer: Any) -> int | None:
    shape = _output_shape(layer)
    return None if shape is None else len(shape)


def _input_rank(model: Any) -> int:
    """Rank of the model's one input: 4 for images ``(batch, H, W, C)``, 5 for volumes; 4 when it cannot be read."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if inputs and len(inputs) == 1 and getattr(inputs[0], "shape", None) is not None:
        return len(inputs[0].shape)
    return 4


def _is_feature_rank(rank: int | None, input_rank: int) -> bool:
    """Whether an output of ``rank`` can be a target: a feature map of the input's rank, or tokens (rank 3)."""
    return rank is not None and input_rank in (4, 5) and (rank == input_rank or rank == 3)


def _what(input_rank: int) -> str:
    """What a target layer outputs, in words, for a model whose input has ``input_rank`` dimensions."""
    spatial = "(batch, depth, height, width, channels)" if input_rank == 5 else "(batch, height, width, channels)"
    return f"a feature map {spatial} or a token sequence (batch, tokens, channels)"


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


def _feature_layers(model: Any, output_index: int | None, input_rank: int) -> list[Any]:
    """Layers with a feature-map or token output that the chosen output depends on, in graph order."""
    ancestors = _ancestor_ids(model, output_index)
    return [
        layer
        for layer in _layers(model)
        if (ancestors is None or id(layer) in ancestors) and _is_feature_rank(_output_rank(layer), input_rank)
    ]


def feature_layer_candidates(model: Any, prefix: LayerPath = (), *, input_rank: int | None = None) -> list[LayerPath]:
    """All layers a Grad-CAM-family method can read, as paths, in graph order.

    Those are feature maps of the input's rank (``(batch, height, width, channels)`` in an image model,
    ``(batch, depth, height, width, channels)`` in a volume model) and token sequences
    ``(batch, tokens, channels)``. Nested Sequential and functional models appear both as themselves and
    through their inner layers; a nested subclassed model appears as itself only (it cannot be traced into).

    Args:
        model: The Keras model.
        prefix: The path of ``model`` inside an outer model (for the recursion).
        input_rank: The outer model's input rank (default: ``model``'s own).

    Returns:
        Paths (tuples of layer names), first layer first.
    """
    found: list[LayerPath] = []
    if not _is_traceable(model):
        return found
    rank = _input_rank(model) if input_rank is None else input_rank
    for layer in _layers(model):
        path = (*prefix, layer.name)
        if _is_model(layer):
            found.extend(feature_layer_candidates(layer, path, input_rank=rank))
        if _is_feature_rank(_output_rank(layer), rank):
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
        return f"the model has no layer with {_what(_input_rank(model))} output"
    shown = [_format_path(p) for p in cands[-12:]]
    more = f" (and {len(cands) - 12} earlier)" if len(cands) > 12 else ""
    return "candidate layers (feature maps and token sequences), last first: " + ", ".join(reversed(shown)) + more


def _found_text(model: Any, output_index: int | None) -> str:
    """The last few layers on the path to the output with their output shapes, last first (for error messages)."""
    ancestors = _ancestor_ids(model, output_index)
    on_path = [layer for layer in _layers(model) if ancestors is None or id(layer) in ancestors]
    shown = [f"{layer.name} {_output_shape(layer)}" for layer in reversed(on_path[-6:])]
    more = f" and {len(on_path) - 6} before" if len(on_path) > 6 else ""
    return ", ".join(shown) + more if shown else "no layers"


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


def _auto_path(model: Any, output_index: int | None, input_rank: int, prefix: LayerPath = ()) -> LayerPath | None:
    """The last feature-map or token layer the output depends on, descending into a traceable nested model that produces it."""
    top = _feature_layers(model, output_index, input_rank)
    if not top:
        return None
    layer = top[-1]
    path = (*prefix, layer.name)
    if _is_model(layer) and _is_traceable(layer):
        return _auto_path(layer, None, input_rank, path) or path
    return path


def _walk_back(model: Any, path: LayerPath) -> Iterator[tuple[LayerPath, Any, Any]]:
    """``(prefix, op, tensor)`` for the tensors the layer at ``path`` is computed from, nearest first (breadth first).

    ``prefix`` is the path of the model whose graph holds ``op``. The walk descends into traceable nested
    models through their outputs and stops at inputs; the layer's own output comes first.
    """
    layer = _get_by_path(model, path)
    start = _single(layer.output)
    queue: deque[tuple[LayerPath, Any]] = deque([(path[:-1], start)])
    seen: set[tuple[int, int, int]] = set()
    while queue:
        prefix, tensor = queue.popleft()
        history = getattr(tensor, "_keras_history", None)
        if history is None:
            continue
        op, node_index, tensor_index = history[0], history[1], history[2]
        if (id(op), node_index, tensor_index) in seen:
            continue
        seen.add((id(op), node_index, tensor_index))
        yield prefix, op, tensor
        if _is_model(op) and _is_traceable(op):
            inner = _output_tensors(op)
            if tensor_index < len(inner):
                queue.append(((*prefix, op.name), _single(inner[tensor_index])))
            continue
        try:
            node = op._inbound_nodes[node_index]
        except (AttributeError, IndexError):
            continue
        queue.extend((prefix, t) for t in getattr(node, "input_tensors", ()) or ())


def _container(model: Any, prefix: LayerPath) -> Any:
    return _get_by_path(model, prefix) if prefix else model


def token_layout(model: Any, path: LayerPath, token_grid: TokenGrid | Sequence[int] | None = None) -> FeatureLayout:
    """How the token sequence at ``path`` lies on the input: its grid, and the extra tokens to drop.

    Args:
        model: The Keras model (traceable).
        path: A layer with a ``(batch, tokens, channels)`` output.
        token_grid: The grid when it is known (``(rows, cols)``, ``(depth, rows, cols)`` or a :class:`TokenGrid`);
            ``None``: inferred (see :mod:`neuroxai.models._layout`).

    Returns:
        The layer's :class:`FeatureLayout` (``kind="tokens"``).

    Raises:
        ExplainError: A given grid that does not fit the token count, or a grid that cannot be inferred
            (the message says what to pass).
    """
    grid_given = check_token_grid(token_grid)
    layer = _get_by_path(model, path)
    shape = _output_shape(layer) or (None, None, None)
    tokens = shape[1]
    input_size = tuple(model.inputs[0].shape[1:-1])
    where = f"layer {_format_path(path)!r} of model {model.name!r} (output {shape})"
    if grid_given is not None:
        cells = math.prod(grid_given.grid)
        extra = grid_given.extra_tokens if grid_given.extra_tokens is not None else (tokens - cells if tokens is not None else 0)
        if len(grid_given.grid) != len(input_size) or extra < 0 or (tokens is not None and cells + extra != tokens):
            raise ExplainError(
                f"token_grid {grid_given.grid} with {extra} extra token(s) does not fit {where}: expected "
                f"{len(input_size)} sides whose cells plus the extra tokens make its {tokens} tokens."
            )
        return FeatureLayout(
            "tokens",
            grid_given.grid,
            tokens=cells + extra,
            extra_tokens=extra,
            extra_position=grid_given.extra_position,
            source="given",
        )
    if tokens is not None:
        rank = len(input_size) + 2
        for prefix, op, tensor in _walk_back(model, path):
            grid = tuple(getattr(tensor, "shape", ())[1:-1])
            if len(tensor.shape) == rank and all(g is not None for g in grid) and grid_fits(grid, tokens, input_size):
                extra = tokens - math.prod(grid)
                source = f"layer {_format_path((*prefix, op.name))}"
                return FeatureLayout("tokens", grid, tokens=tokens, extra_tokens=extra, source=source)
        inferred = grid_from_input(tokens, input_size, max_extra=MAX_INFERRED_EXTRA)
        if inferred is not None:
            return FeatureLayout("tokens", inferred[0], tokens=tokens, extra_tokens=inferred[1], source="input size")
    size = " x ".join("?" if s is None else str(s) for s in input_size)
    example = "(rows, cols)" if len(input_size) == 2 else "(depth, rows, cols)"
    raise ExplainError(
        f"Cannot infer the token grid of {where}: its {tokens if tokens is not None else 'free number of'} tokens fit no "
        f"spatial layer before it and no grid of the {size} input with at most {MAX_INFERRED_EXTRA} extra tokens. Pass "
        f"token_grid={example} (the tokens left over are extra tokens, such as a class token, dropped from the front; "
        "TokenGrid(grid, extra_position='last') when they come last)."
    )


def _layout_of(model: Any, path: LayerPath, token_grid: TokenGrid | Sequence[int] | None) -> FeatureLayout:
    """The :class:`FeatureLayout` of the target layer at ``path``."""
    layer = _get_by_path(model, path)
    shape = _output_shape(layer)
    if shape is not None and len(shape) == 3:
        return token_layout(model, path, token_grid)
    grid = tuple(shape[1:-1]) if shape is not None else (None,) * (_input_rank(model) - 2)
    input_size = tuple(model.inputs[0].shape[1:-1])
    sides = [int(g) for g in grid if g is not None]
    if len(sides) == len(grid) and not grid_fits(sides, math.prod(sides), input_size):
        logger.warning(
            "Model %r: layer %s outputs %s, not laid out like the %s input (its cells are far longer on one side: a "
            "window-partitioned tensor?); its map is stretched onto the image. Pick a layer that keeps the image's layout.",
            model.name,
            _format_path(path),
            shape,
            " x ".join(str(s) for s in input_size),
        )
    return FeatureLayout("spatial", grid)


def _attention_input(model: Any, path: LayerPath) -> LayerPath | None:
    """The layer feeding the last ``MultiHeadAttention`` before ``path`` (its query), or ``None``.

    In a ViT with a class-token head that is the last block's first normalization: its patch tokens
    reach the class token through the last attention, while the last layer's patch tokens reach nothing.
    """
    keras = _keras()
    for prefix, op, _ in _walk_back(model, path):
        if not isinstance(op, keras.layers.MultiHeadAttention):
            continue
        for node in getattr(op, "_inbound_nodes", ()):
            arguments = getattr(node, "arguments", None)
            args = getattr(arguments, "args", ()) if arguments is not None else ()
            query = args[0] if args else getattr(arguments, "kwargs", {}).get("query")
            history = getattr(query, "_keras_history", None)
            if history is None:
                continue
            producer = history[0]
            container = _container(model, prefix)
            if any(layer is producer for layer in _layers(container)) and _output_rank(producer) == 3:
                return (*prefix, producer.name)
        return None
    return None


def resolve_target_layer(
    model: Any,
    target_layer: str | Sequence[str] | None,
    *,
    output: int | str | None = None,
    token_grid: TokenGrid | Sequence[int] | None = None,
) -> LayerPath:
    """Turn a layer name, a tuple path or ``None`` (automatic) into a full path.

    A target layer outputs a feature map of the input's rank (``(batch, height, width, channels)``, or
    ``(batch, depth, height, width, channels)`` for a volume model) or a token sequence
    ``(batch, tokens, channels)`` whose grid is known or can be inferred (:func:`token_layout`).

    Args:
        model: The Keras model.
        target_layer: A layer name (searched at the top level first, then inside
            nested models when the name is unique there), a tuple of names that
            walks into nested models, or ``None`` for the last feature-map or token
            layer that the explained output depends on (descending into a nested
            Sequential or functional model that produces it). When that is a token layer
            with extra tokens (a class-token head, whose last patch tokens reach nothing),
            the input of the last ``MultiHeadAttention`` before it is taken instead.
        output: Which output of a multi-output model is explained (index or name), for the automatic search.
        token_grid: The token grid, when a token layer's cannot be inferred.

    Returns:
        The path, a tuple of layer names from the top-level model.

    Raises:
        ExplainError: The name or path does not exist, is ambiguous, goes into a subclassed model, its
            output is neither a feature map nor tokens, or a token grid that cannot be inferred; the
            message lists the candidate layers or says what to pass.
    """
    model_name = getattr(model, "name", "model")
    if not _is_traceable(model):
        raise ExplainError(_subclassed_message(model))
    input_rank = _input_rank(model)
    if target_layer is None:
        index = resolve_output(model, output)
        found = _auto_path(model, index, input_rank)
        if found is None:
            if feature_layer_candidates(model):
                raise ExplainError(
                    f"Cannot find a target layer automatically in model {model_name!r}: no layer with {_what(input_rank)} "
                    "output lies on the path to the explained output. Pass target_layer= (a name, or a tuple path "
                    f"into a nested model); {_candidates_text(model)}."
                )
            raise ExplainError(
                f"Model {model_name!r} has no layer a Grad-CAM-family method can read: expected {_what(input_rank)} "
                f"output on the path to the explained output, found {_found_text(model, index)} (last first). Use a "
                "pixel method instead: saliency, smoothgrad, integrated_gradients or occlusion."
            )
        if _output_rank(_get_by_path(model, found)) == 3 and _layout_of(model, found, token_grid).extra_tokens > 0:
            moved = _attention_input(model, found)
            if moved is not None and moved != found:
                logger.info(
                    "Model %r: %s ends in a class-token head, whose last patch tokens reach nothing; explaining the "
                    "input of its last attention, %s.",
                    model_name,
                    _format_path(found),
                    _format_path(moved),
                )
                found = moved
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
    if rank is not None and not _is_feature_rank(rank, input_rank):
        raise ExplainError(
            f"Target layer {_format_path(path)!r} in model {model_name!r} has a {rank}-D output {_output_shape(layer)}; "
            f"expected {_what(input_rank)}. {_candidates_text(model)}."
        )
    if rank == 3:
        token_layout(model, path, token_grid)  # a grid that cannot be inferred fails here, saying what to pass
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
    """``(input shape (H, W, C) or (D, H, W, C), output spec)`` of a built subclassed model."""
    keras = _keras()
    shapes = getattr(model, "_build_shapes_dict", None) or {}
    shape = next(iter(shapes.values()), None) if len(shapes) == 1 else None
    if shape is None or len(shape) not in (4, 5):
        raise ExplainError(
            f"Model {model.name!r} is a subclassed keras.Model without one known input shape; expected a model "
            "built on (batch, height, width, channels) images or (batch, depth, height, width, channels) volumes. "
            "Call it once on a batch, or wrap it: "
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
        model: A built Keras model with one input: images ``(batch, height, width, channels)`` or volumes
            ``(batch, depth, height, width, channels)``. Sequential and functional models (nested ones
            included) can be traced to any layer; a subclassed model can only be run whole
            (``target_path=None``: pixel and perturbation methods).
        target_path: The layer whose output is captured (a feature map, or a token sequence), or ``None``.
        head: What the output means (:data:`~neuroxai.models.Head`); ``None``: read from the last layer
            (:func:`detect_head`).
        output: Which output of a multi-output model (index or name); ``None`` for a one-output model.
        token_grid: The grid of a token target layer when it cannot be inferred (:class:`~neuroxai.models.TokenGrid`
            or ``(rows, cols)``).

    Calling it (``traced(x, capture=None)``) returns a :class:`ForwardResult`;
    it holds no state between calls and never modifies the model.

    Attributes:
        model: The Keras model.
        target_path: The captured layer's path (``None``: no feature map is captured).
        layout: How the captured layer lies on the input (:class:`~neuroxai.models.FeatureLayout`;
            ``None`` without a target layer).
        input_shape: ``(height, width, channels)`` or ``(depth, height, width, channels)`` of the model input
            (``None`` for a free size).
        units: The explained output's last dimension (``None`` when unknown).
        num_classes: Classes the head shows (2 for one unit; ``None`` when unknown).
        head: The head used.
        head_detected: Whether the head was read from the last layer (False: stated or assumed).
        output_index: Index of the explained output.
        score_source: ``"logits"`` when pre-activation scores are reached (or the output is logits),
            ``"probabilities"`` when a softmax/sigmoid cannot be bypassed, ``"output"`` when the last
            layer's meaning is unknown and the head assumed.
        objective: A callable target (``fn(ModelOutput) -> [B]``) whose value every call also computes
            (:attr:`ForwardResult.objective`); ``None`` by default (see :meth:`with_objective`).

    Raises:
        ExplainError: The model is not built, has not one image or volume input, a target path into a model
            that cannot be traced, an output that does not exist, a head that does not fit the output, or a
            token grid that cannot be inferred.
    """

    def __init__(
        self,
        model: Any,
        target_path: LayerPath | None,
        *,
        head: Head | None = None,
        output: int | str | None = None,
        token_grid: TokenGrid | Sequence[int] | None = None,
    ) -> None:
        _keras()
        self.model = model
        self.target_path = target_path
        self.objective: Callable[[ModelOutput], Any] | None = None
        if not getattr(model, "built", False):
            raise ExplainError(
                f"Model {model.name!r} is not built: expected a model with known input shape. Call it once on a "
                "batch or start it with keras.Input(shape=...)."
            )
        self._traceable = _is_traceable(model)
        if self._traceable:
            outputs = _output_tensors(model)
            if len(model.inputs) != 1 or len(model.inputs[0].shape) not in (4, 5):
                shapes = [tuple(i.shape) for i in model.inputs]
                raise ExplainError(
                    f"Model {model.name!r} has inputs {shapes}; expected one image input (batch, height, width, channels) "
                    "or one volume input (batch, depth, height, width, channels)."
                )
            self.output_index = resolve_output(model, output)
            self.input_shape: tuple[int | None, ...] = tuple(model.inputs[0].shape[1:])
            self.units: int | None = _units(outputs[self.output_index])
            chain = _output_chain(model, self.output_index)
            self.layout: FeatureLayout | None = None if target_path is None else _layout_of(model, target_path, token_grid)
        else:
            if target_path:
                raise ExplainError(_subclassed_message(model))
            self.input_shape, spec = _subclassed_io(model)
            self.layout = None
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

    @property
    def spatial_rank(self) -> int:
        """2 for an image model, 3 for a volume model."""
        return len(self.input_shape) - 1

    def to_grid(self, tensor: Any) -> Any:
        """The target layer's output (or its gradient) on its grid, ``[B, *grid, K]`` (:meth:`FeatureLayout.to_grid`)."""
        return tensor if self.layout is None else self.layout.to_grid(tensor)

    def with_objective(self, objective: Callable[[ModelOutput], Any] | None) -> TracedModel:
        """A copy of this traced model (same model, layer and head) whose calls also compute ``objective``.

        Args:
            objective: ``fn(ModelOutput) -> [B]`` on ``keras.ops`` (see :class:`ModelOutput`), or ``None``.

        Returns:
            A new :class:`TracedModel`; this one is unchanged.
        """
        twin = copy.copy(self)
        twin.objective = objective
        return twin

    @property
    def objective_key(self) -> Any:
        """What identifies :attr:`objective` in a compile-cache key: the callable when hashable, else its id."""
        fn = self.objective
        if fn is None:
            return None
        try:
            hash(fn)
        except TypeError:
            return ("id", id(fn))
        return fn

    def attention_layers(self) -> list[tuple[LayerPath, Any]]:
        """The ``MultiHeadAttention`` layers a call runs, ``(path, layer)`` in graph order (nested models included).

        Attention inside a custom layer or a subclassed model is not listed (it cannot be traced into).
        """
        if not self._traceable:
            return []
        keras = _keras()
        found: list[tuple[LayerPath, Any]] = []

        def walk(model: Any, prefix: LayerPath) -> None:
            for layer in _layers(model):
                if isinstance(layer, keras.layers.MultiHeadAttention):
                    found.append(((*prefix, layer.name), layer))
                elif _is_model(layer) and _is_traceable(layer):
                    walk(layer, (*prefix, layer.name))

        walk(self.model, ())
        return found

    # -- running ---------------------------------------------------------------------------------
    def __call__(
        self,
        x: Any,
        capture: Callable[[Any], Any] | None = None,
        *,
        training: bool = False,
        attention: AttentionCall | None = None,
    ) -> ForwardResult:
        """Run the model on ``x``; ``capture(features)`` may return a replacement tensor.

        Args:
            x: A batch of model inputs.
            capture: Called with the target layer's output; its return value replaces it downstream.
            training: Run layers in training mode (dropout on, batch statistics updated), as
                mask-guided training does; explanations run in inference mode (the default).
            attention: Runs every ``MultiHeadAttention`` op instead of the plain call (see
                :data:`AttentionCall`): attention-reading methods take the attention weights there.
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
        outputs = _run(
            self.model, x, self.target_path or (), on_feature, self._chain, on_output, training=training, on_attention=attention
        )
        raw = ops.cast(keras.tree.flatten(outputs)[self.output_index], "float32")
        if self.target_path and state["features"] is None:
            raise ExplainError(
                f"Target layer {self.target_path!r} of model {self.model.name!r} is not on the path from the input to "
                "the output; pick a layer the prediction depends on."
            )
        scores, probabilities = self._head_scores(raw, state["logits"])
        objective = None
        if self.objective is not None:
            objective = ops.cast(self.objective(ModelOutput(scores=scores, probabilities=probabilities)), "float32")
            if len(objective.shape) != 1:
                raise ExplainError(
                    f"A callable target must return one value per image, shape [batch]; "
                    f"{getattr(self.objective, '__name__', repr(self.objective))} returned shape {tuple(objective.shape)}."
                )
        return ForwardResult(features=state["features"], scores=scores, probabilities=probabilities, objective=objective)

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
    on_attention: AttentionCall | None = None,
) -> Any:
    """Run ``model`` on ``x`` op by op, intercepting the layer at ``path`` and the last op of ``chain``.

    ``chain`` is ``(nested model, ..., last layer)``: the nested models to descend into on the way to
    the output's last layer, whose activation ``on_output`` replaces (empty: nothing replaced). With
    ``on_attention``, every ``MultiHeadAttention`` op (nested models included) runs through it.
    """
    keras = _keras()

    def call(op: Any, a: Sequence[Any], k: dict[str, Any]) -> Any:
        if on_attention is not None and isinstance(op, keras.layers.MultiHeadAttention):
            return on_attention(op, lambda **extra: _call_op(op, a, {**k, **extra}, training), tuple(a), dict(k))
        return _call_op(op, a, k, training)

    def wrap(op: Any) -> Callable[..., Any]:
        if len(chain) == 1 and op is chain[0]:
            return on_output(op)
        on_path = bool(path) and getattr(op, "name", None) == path[0]
        if on_path and len(path) == 1:
            return lambda *a, **k: on_feature(call(op, a, k))
        into_chain = len(chain) > 1 and op is chain[0]
        into_attention = on_attention is not None and _is_model(op) and _is_traceable(op)
        if (on_path and len(path) > 1) or into_chain or into_attention:
            inner_path = path[1:] if on_path else ()
            inner_chain = chain[1:] if into_chain else ()
            return lambda *a, **k: _run(
                op,
                a[0] if len(a) == 1 else list(a),
                inner_path,
                on_feature,
                inner_chain,
                on_output,
                training=training,
                on_attention=on_attention,
            )
        return lambda *a, **k: call(op, a, k)

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
