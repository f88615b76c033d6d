"""Trained weights that travel with a package: named, checksummed, with a model card.

A *pretrained model* is a saved run directory (``model.keras``, ``neuroxai.json``, ``model_card.json``) that a
package ships as package data, registered under a name, in the style users know from ``keras.applications`` and
timm. neuroxai ships its own (the built-in plugin, :mod:`neuroxai.models.builtin`); a third-party plugin ships more
through the hook ``neuroxai_register_pretrained(registry)``.

Every file is checked against the SHA-256 digest written in the *code* that registers it (not in a file beside the
weights, which whatever damaged the weights could have changed too), each time the model is opened: a truncated,
damaged or swapped file is refused with the file named. Loading is the same safe loading as any run
(:func:`neuroxai.load`: Keras safe mode, no code runs from the file).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuroxai._records import Record
from neuroxai.errors import ModelError, UnknownNameError
from neuroxai.plugins import PluginInfo, Registry

__all__ = [
    "CARD_FILE",
    "ModelCard",
    "PretrainedModel",
    "PretrainedRegistry",
    "UnknownPretrainedError",
    "file_sha256",
    "list_pretrained",
    "pretrained_model",
]

#: The model card beside the weights.
CARD_FILE = "model_card.json"


class UnknownPretrainedError(UnknownNameError, ModelError):
    """A name is not among the pretrained models."""


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class ModelCard(Record):
    """The facts a user needs before trusting a pretrained model (``model_card.json``; the docs page says the same).

    Attributes:
        name: The pretrained model's name.
        summary: One line: what it is.
        model: Architecture (a registered model name) and its options.
        classes: Output classes, in order.
        input: The input contract: shape, channels, pixel range, preprocessing.
        intended_use: What it is for, and what it is not for.
        training_data: Each source with its licence, attribution and what was used.
        results: Headline figures, each ``{"value": ..., "split": ..., "command": ...}``.
        limitations: Known failure modes.
        trained: Date, library version and the command that reproduces the weights.
        licence: Licence of the weights.
    """

    name: str
    summary: str
    model: dict[str, Any]
    classes: tuple[str, ...]
    input: dict[str, Any]
    intended_use: str
    training_data: tuple[dict[str, Any], ...]
    results: dict[str, Any] = field(default_factory=dict)
    limitations: tuple[str, ...] = ()
    trained: dict[str, Any] = field(default_factory=dict)
    licence: str = ""


@dataclass(frozen=True)
class PretrainedModel(Record):
    """A registered pretrained model: where its run directory is and what each file must hash to.

    Attributes:
        name: The name users pass to :func:`neuroxai.pretrained` and ``--pretrained``.
        folder: The run directory (``model.keras``, ``neuroxai.json``, :data:`CARD_FILE`).
        sha256: ``{file name: hex SHA-256}`` for every file in ``folder`` that is read.
        summary: One line for listings.
        source: The distribution that ships it (``"neuroxai"`` for built-ins).
    """

    name: str
    folder: str
    sha256: dict[str, str]
    summary: str
    source: str = "neuroxai"

    def verified_folder(self) -> Path:
        """The folder, after checking every listed file against its digest.

        Raises:
            ModelError: A file is missing or does not match its digest.
        """
        root = Path(self.folder)
        for name, expected in self.sha256.items():
            path = root / name
            if not path.is_file():
                raise ModelError(
                    f"Pretrained model {self.name!r}: {path} is missing; the installation of {self.source} is incomplete: "
                    "reinstall it."
                )
            got = file_sha256(path)
            if got != expected:
                raise ModelError(
                    f"Pretrained model {self.name!r}: {path} does not match its checksum (SHA-256 {got[:16]}..., expected "
                    f"{expected[:16]}...); the file is damaged or was replaced: reinstall {self.source}."
                )
        return root

    def card(self) -> ModelCard:
        """The model card (after the checksum check).

        Raises:
            ModelError: A file fails its checksum, or the card is not a valid model card.
        """
        path = self.verified_folder() / CARD_FILE
        try:
            return ModelCard.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError, KeyError) as exc:
            raise ModelError(f"Pretrained model {self.name!r}: {path} is not a valid model card ({exc}).") from exc


class PretrainedRegistry(Registry[PretrainedModel]):
    """Pretrained models by name: neuroxai's own and those of installed plugins.

    Filled through the hook ``neuroxai_register_pretrained(registry)``; see
    :class:`~neuroxai.plugins.Registry` for ``autoload`` and ``plugins``.

    Example:
        >>> PretrainedRegistry().names()  # doctest: +SKIP
        ['cnn-mri4-v1']
    """

    kind = "pretrained model"
    hook = "neuroxai_register_pretrained"
    error = ModelError
    unknown_error = UnknownPretrainedError

    def _builtin_plugin(self) -> object:
        from neuroxai.models import builtin

        return builtin

    def _check(self, name: str, item: object, origin: PluginInfo | None) -> PretrainedModel:
        who = f" (from {origin.describe().lower()})" if origin else ""
        if not isinstance(item, PretrainedModel):
            raise ModelError(f"registry.register expects a neuroxai.models.PretrainedModel, got {type(item).__name__}{who}.")
        missing = [f for f in ("model.keras", "neuroxai.json") if f not in item.sha256]
        if missing:
            raise ModelError(
                f"Pretrained model {name!r}{who} lists no checksum for {', '.join(missing)}; every file read needs one."
            )
        return item

    def _source(self, name: str, item: PretrainedModel) -> str:
        return item.source

    def register(self, item: PretrainedModel, override: bool = False) -> PretrainedModel:
        """Add ``item`` under ``item.name``.

        Raises:
            ModelError: Not a :class:`PretrainedModel`, a checksum missing for ``model.keras`` or ``neuroxai.json``,
                or the name is taken and ``override`` is false.
        """
        return self._add(str(getattr(item, "name", "?")), item, override=override)


def list_pretrained(pattern: str = "*") -> list[str]:
    """Names of the pretrained models (shipped with neuroxai or an installed plugin).

    Args:
        pattern: Shell-style filter (``"cnn*"``), case-insensitive.

    Returns:
        Sorted names.

    Example:
        >>> import neuroxai
        >>> neuroxai.list_pretrained()  # doctest: +SKIP
        ['cnn-mri4-v1']
    """
    return PretrainedRegistry().names(pattern)


def pretrained_model(name: str) -> PretrainedModel:
    """The registered :class:`PretrainedModel` called ``name``.

    Raises:
        UnknownPretrainedError: No such name (the message lists the available ones).
    """
    return PretrainedRegistry().get(name)
