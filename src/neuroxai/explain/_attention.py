"""Attention rollout (Abnar and Zuidema, 2020) and its gradient-weighted variant (Chefer et al., 2021).

For transformers whose blocks are Keras ``MultiHeadAttention`` layers over one token sequence (ViT, DeiT
and kin). Each layer's attention ``A`` (``[B, heads, T, T]``) is read where the layer runs (the layer is
called with ``return_attention_scores=True``; the model is never changed) and the layers are chained:

- ``attention_rollout``: ``A`` fused over heads (mean, max or min), the residual path added
  (``0.5 A + 0.5 I``, rows renormalised) and the layers multiplied, ``R = A_L ... A_1``. It says where
  information flows; it does not depend on the class explained.
- ``grad_rollout``: each head weighted by the gradient of the class score with respect to its attention,
  ``Ā = mean_heads(relu(dS/dA * A))``, accumulated as ``R = R + Ā R`` (Chefer et al., "Generic
  attention-model explainability", ICCV 2021): class-specific.

A token's relevance is the class token's row of ``R`` (models with extra tokens: the first one is taken
as the class token) or the mean row (models that pool the tokens); the patch tokens are put on their grid
(:class:`~neuroxai.models.FeatureLayout`, from the target token layer) and upsampled like any map. The
gradient is taken through a zero offset added where each attention forms its output
(:func:`neuroxai.explain._backend.attention_gradients`), the same way on TensorFlow, JAX and PyTorch.

Attention that these methods cannot read is refused with one clear line: none in the traced graph
(inside a custom layer), attention within windows (Swin: ``attention_axes`` other than the token axis)
or over another token count than the model's tokens, cross-attention, gated attention.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

from neuroxai._keras_backend import EXPLAIN_BACKENDS
from neuroxai.errors import ExplainError
from neuroxai.explain import _backend
from neuroxai.explain._base import CompileCache, ExplainMethod, _image_size, _numpy, normalize_maps

if TYPE_CHECKING:  # pragma: no cover
    from neuroxai.explain._base import BatchResult
    from neuroxai.models._graph import TracedModel

__all__ = ["AttentionMethod", "AttentionRollout", "GradientRollout"]

Tensor = Any

_FUSIONS = ("mean", "max", "min")


def _attend(
    layer: Any, call: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], hook: Callable[[Tensor], Any]
) -> Any:
    """Run one ``MultiHeadAttention`` op, hand its attention to ``hook`` and add the zero offset ``hook`` returns.

    The offset ``D`` (shaped like the attention, ``[B, heads, T, S]``) enters the output the way the attention
    does: ``output_dense(D V) - output_dense(0)``, ``V`` the projected values; the output is linear in the
    attention, so the gradient w.r.t. ``D`` at zero is the gradient w.r.t. the attention.
    """
    from keras import ops

    wanted = bool(kwargs.get("return_attention_scores", False))
    try:
        output, scores = call(return_attention_scores=True)
    except ValueError as exc:  # Keras refuses attention scores with flash attention on
        raise ExplainError(
            f"Cannot read the attention of layer {layer.name!r}: {exc} Turn flash attention off "
            "(keras.config.disable_flash_attention()) to explain with attention rollout."
        ) from exc
    offset = hook(scores)
    if offset is not None:
        bound = inspect.signature(layer.call).bind(*args, **kwargs)
        value = layer.value_dense(bound.arguments["value"])  # [B, S, heads, dim]
        side = ops.einsum("bnts,bsnh->btnh", ops.cast(offset, value.dtype), value)
        output = output + (layer.output_dense(side) - layer.output_dense(ops.zeros_like(side)))
    return (output, scores) if wanted else output


class AttentionMethod(ExplainMethod):
    """Base of the methods that read a transformer's attention (attention rollout and kin).

    Subclasses override :meth:`fuse` (one layer's attention, and its gradient when :attr:`uses_gradients`,
    to a token-to-token matrix) and, where the default residual rollout does not fit, :meth:`propagate`.
    The base reads every ``MultiHeadAttention`` of the traced graph in one compiled forward pass (and one
    backward pass for gradients), chains the layers, and maps the patch tokens' relevance onto the input
    through the target token layer's grid. Written on ``keras.ops``: runs on every backend.

    The target layer (automatic by default) is the model's last token layer; it only places the tokens on
    the image (its grid and extra tokens), its values are not used.
    """

    uses_layer = True
    backends = EXPLAIN_BACKENDS
    supports_objectives = True
    needs_attention = True
    #: Whether :meth:`fuse` reads the gradient of the target score with respect to each attention.
    uses_gradients: ClassVar[bool] = False

    def fuse(self, attention: Tensor, gradients: Tensor | None) -> Tensor:
        """One layer's contribution ``[B, T, T]`` from its attention ``[B, heads, T, T]`` (and gradient, same shape)."""
        raise NotImplementedError

    def propagate(self, rollout: Tensor, fused: Tensor) -> Tensor:
        """The rollout after one more layer (default: Abnar and Zuidema's, ``normalize(0.5 A + 0.5 I) @ R``)."""
        from keras import ops

        t = int(fused.shape[-1])
        mixed = 0.5 * fused + 0.5 * ops.eye(t, dtype="float32")[None]
        mixed = mixed / ops.maximum(ops.sum(mixed, axis=-1, keepdims=True), 1e-12)
        return ops.matmul(mixed, rollout)

    def check_model(self, traced: TracedModel) -> None:
        """Refuse a model without readable global self-attention over its tokens (one clear line)."""
        name = traced.model.name
        found = traced.attention_layers()
        if not found:
            raise ExplainError(
                f"Method {self.name!r} reads MultiHeadAttention layers, and model {name!r} has none that can be traced "
                "(attention inside a custom layer or a subclassed model cannot be read). Use the Grad-CAM family, "
                "which reads the last token layer of any transformer, or a pixel method."
            )
        layout = traced.layout
        if layout is None or layout.kind != "tokens":
            raise ExplainError(
                f"Method {self.name!r} maps attention over tokens onto the image through a token layer; the target layer "
                f"of model {name!r} is {traced.target_path!r} ({'no layer' if layout is None else layout.describe()}). "
                "Pass target_layer= a layer with a (batch, tokens, channels) output."
            )
        for path, layer in found:
            where = f"Attention layer {'/'.join(path)!r} of model {name!r}"
            shapes = _attention_input_shapes(layer)
            if shapes is None:
                continue  # never called symbolically (unusual): checked when it runs
            query, value = shapes
            axes = getattr(layer, "_attention_axes", None)
            if len(query) != 3 or (axes is not None and tuple(axes) not in ((1,), (-2,))):
                raise ExplainError(
                    f"{where} attends within windows or over other axes (query {query}, attention_axes {axes}); "
                    f"{self.name!r} needs global self-attention over the token sequence (ViT-style). For Swin-style "
                    "models use the Grad-CAM family at the last token layer."
                )
            if query[1] != value[1] or (layout.tokens is not None and query[1] is not None and query[1] != layout.tokens):
                raise ExplainError(
                    f"{where} attends from {query[1]} to {value[1]} tokens; {self.name!r} needs self-attention over the "
                    f"model's {layout.tokens} tokens in every layer (no cross-attention, no token merging)."
                )
            if self.uses_gradients and getattr(layer, "_use_gate", False):
                raise ExplainError(f"{where} is gated (use_gate=True); {self.name!r} reads plain attention only.")

    def _relevance(self, traced: TracedModel, rollout: Tensor) -> Tensor:
        """Per token ``[B, T]``: the class token's row of the rollout, or the mean row when there is none."""
        from keras import ops

        layout = traced.layout
        assert layout is not None  # checked by check_model
        if layout.extra_tokens:
            row = 0 if layout.extra_position == "first" else int(layout.tokens or 0) - int(layout.extra_tokens)
            return rollout[:, row, :]
        return ops.mean(rollout, axis=1)

    def _step(self, traced: TracedModel, x: Tensor, targets: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        from keras import ops

        if self.uses_gradients:
            result, resolved, attentions, grads = _backend.attention_gradients(traced, x, targets, _attend)
        else:
            result, attentions = _backend.attention_weights(traced, x, _attend)
            resolved = _backend.resolve_targets(result.probabilities, targets)
            grads = [None] * len(attentions)
        if not attentions:
            raise ExplainError(f"Model {traced.model.name!r} ran no MultiHeadAttention layer on the path to its output.")
        t = int(attentions[0].shape[-1])
        rollout = ops.broadcast_to(ops.eye(t, dtype="float32")[None], (ops.shape(x)[0], t, t))
        for attention, gradient in zip(attentions, grads):
            rollout = self.propagate(rollout, ops.cast(self.fuse(ops.cast(attention, "float32"), gradient), "float32"))
        tokens = self._relevance(traced, rollout)[:, :, None]  # [B, T, 1]
        raw = traced.to_grid(tokens)[..., 0]  # [B, *grid]
        maps = normalize_maps(raw, _image_size(x))
        return maps, ops.cast(result.probabilities, "float32"), resolved

    def explain_batch(
        self, traced: TracedModel, x: Tensor, targets: Tensor, *, cache: CompileCache, batch_size: int
    ) -> BatchResult:
        return _numpy(cache.function(traced, self, "step", self._step)(x, targets))


def _attention_input_shapes(layer: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]] | None:
    """``(query shape, value shape)`` of the layer's first call in the model's graph, or ``None``."""
    for node in getattr(layer, "_inbound_nodes", ()):
        arguments = getattr(node, "arguments", None)
        if arguments is None:
            continue
        try:
            bound = inspect.signature(layer.call).bind(*arguments.args, **arguments.kwargs)
        except TypeError:
            continue
        query, value = bound.arguments.get("query"), bound.arguments.get("value")
        if query is not None and value is not None:
            return tuple(query.shape), tuple(value.shape)
    return None


class AttentionRollout(AttentionMethod):
    """Attention rollout (Abnar and Zuidema, "Quantifying attention flow in transformers", ACL 2020).

    Where information flows from the patch tokens to the class token (or to all tokens, for a pooled head),
    through every attention layer and its residual path. Class-agnostic: the same map for every target.

    Options:
        head_fusion: How a layer's heads combine: ``"mean"`` (default), ``"max"`` or ``"min"``.
        discard_ratio: Fraction of each layer's lowest attention weights zeroed before chaining, in [0, 1) (default 0.0).

    Example:
        >>> Explainer(vit, "attention_rollout").explain(images)  # doctest: +SKIP
    """

    name = "attention_rollout"
    defaults: ClassVar[Mapping[str, Any]] = MappingProxyType({"head_fusion": "mean", "discard_ratio": 0.0})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        if self.options["head_fusion"] not in _FUSIONS:
            raise ExplainError(
                f"Option 'head_fusion' of method {self.name!r} must be one of {', '.join(_FUSIONS)}; got {self.options['head_fusion']!r}."
            )
        ratio = self.options["discard_ratio"]
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0.0 <= float(ratio) < 1.0:
            raise ExplainError(f"Option 'discard_ratio' of method {self.name!r} must be a number in [0, 1); got {ratio!r}.")

    def fuse(self, attention: Tensor, gradients: Tensor | None) -> Tensor:
        from keras import ops

        how = self.options["head_fusion"]
        fused = (
            ops.mean(attention, axis=1)
            if how == "mean"
            else ops.max(attention, axis=1)
            if how == "max"
            else ops.min(attention, axis=1)
        )
        ratio = float(self.options["discard_ratio"])
        if ratio <= 0.0:
            return fused
        t = int(fused.shape[-1])
        drop = int(ratio * t * t)
        if drop < 1:
            return fused
        flat = ops.reshape(fused, (-1, t * t))
        cut = -ops.top_k(-flat, k=drop)[0][:, -1:]  # the drop-th smallest weight per image
        kept = ops.where(flat > cut, flat, ops.zeros_like(flat))
        return ops.reshape(kept, (-1, t, t))


class GradientRollout(AttentionMethod):
    """Gradient-weighted attention rollout (Chefer, Gur and Wolf, "Generic attention-model explainability
    for interpreting bi-modal and encoder-decoder transformers", ICCV 2021).

    Each layer's heads are weighted by the gradient of the explained score with respect to their attention
    (``mean_heads(relu(dS/dA * A))``) and accumulated through the residual path (``R = R + Ā R``):
    class-specific, and for a callable target, specific to it.

    Example:
        >>> Explainer(vit, "grad_rollout").explain(images, targets="glioma")  # doctest: +SKIP
    """

    name = "grad_rollout"
    uses_gradients = True

    def fuse(self, attention: Tensor, gradients: Tensor | None) -> Tensor:
        from keras import ops

        weighted = attention if gradients is None else ops.relu(ops.cast(gradients, "float32") * attention)
        return ops.mean(weighted, axis=1)

    def propagate(self, rollout: Tensor, fused: Tensor) -> Tensor:
        from keras import ops

        return rollout + ops.matmul(fused, rollout)
