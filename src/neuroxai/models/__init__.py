"""Models: the registry of buildable models and their specs.

* :class:`ModelRegistry`: built-in and plugin models by name; ``create`` builds one.
* :class:`ModelSpec`: frozen metadata plus a factory returning an uncompiled
  ``keras.Model`` with ``logits`` and ``probabilities`` layers.
* :class:`PretrainedRegistry`, :func:`list_pretrained`, :class:`PretrainedModel`, :class:`ModelCard`: trained
  weights shipped with neuroxai or a plugin, by name, checksummed, with a model card (load one with
  :func:`neuroxai.pretrained`).
* :class:`TransferSpec`: which layers two-phase fine-tuning freezes and unfreezes.
* :func:`structure_only` / :func:`is_structure_only`: build for inspection only
  (factories skip weight downloads).
* :class:`TracedModel`, :func:`resolve_target_layer`, :func:`feature_layer_candidates`:
  reach any Keras model's feature map or token sequence (nested backbones too) and
  pre-softmax scores in one forward pass; explanations and mask-guided training build on it.
* :class:`FeatureLayout`, :class:`TokenGrid`, :func:`token_layout`: where a target layer's
  output lies on the input (a 2-D or 3-D feature map, or transformer tokens on a grid).
* :class:`ModelOutput`: what a callable explanation target receives.
* :data:`Head`, :func:`detect_head`, :func:`output_probabilities`: what a model outputs (softmax
  probabilities, logits, independent sigmoids, one sigmoid unit) and its class probabilities.

Example:
    >>> from neuroxai.models import ModelRegistry
    >>> registry = ModelRegistry()
    >>> model = registry.create("cnn", num_classes=4)
"""

from __future__ import annotations

from neuroxai.models._graph import (
    AttentionCall,
    ForwardResult,
    LayerPath,
    ModelOutput,
    ScoreSource,
    TracedModel,
    detect_head,
    feature_layer_candidates,
    resolve_output,
    resolve_target_layer,
    token_layout,
)
from neuroxai.models._heads import HEADS, Head, check_head, head_classes, output_probabilities
from neuroxai.models._layout import (
    MAX_EXTRA_TOKENS,
    MAX_INFERRED_EXTRA,
    ExtraPosition,
    FeatureKind,
    FeatureLayout,
    TokenGrid,
    check_token_grid,
)
from neuroxai.models._pretrained import (
    CARD_FILE,
    ModelCard,
    PretrainedModel,
    PretrainedRegistry,
    UnknownPretrainedError,
    file_sha256,
    list_pretrained,
    pretrained_model,
)
from neuroxai.models._registry import ModelDescription, ModelRegistry, PluginSummary, is_structure_only, structure_only
from neuroxai.models._spec import ModelSpec, TransferSpec, validate_input_range, validate_input_shape

__all__ = [
    "CARD_FILE",
    "HEADS",
    "MAX_EXTRA_TOKENS",
    "MAX_INFERRED_EXTRA",
    "AttentionCall",
    "ExtraPosition",
    "FeatureKind",
    "FeatureLayout",
    "ForwardResult",
    "Head",
    "LayerPath",
    "ModelCard",
    "ModelDescription",
    "ModelOutput",
    "ModelRegistry",
    "ModelSpec",
    "PluginSummary",
    "PretrainedModel",
    "PretrainedRegistry",
    "ScoreSource",
    "TokenGrid",
    "TracedModel",
    "TransferSpec",
    "UnknownPretrainedError",
    "check_head",
    "check_token_grid",
    "detect_head",
    "feature_layer_candidates",
    "file_sha256",
    "head_classes",
    "is_structure_only",
    "list_pretrained",
    "output_probabilities",
    "pretrained_model",
    "resolve_output",
    "resolve_target_layer",
    "structure_only",
    "token_layout",
    "validate_input_range",
    "validate_input_shape",
]
