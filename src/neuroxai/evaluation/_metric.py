"""The base class of explanation metrics and what a metric is given.

An :class:`ExplanationMetric` instance holds its own settings (it is a frozen
dataclass: ``Faithfulness(steps=20)``), declares what it needs in
:attr:`~ExplanationMetric.requires` and turns a :class:`MetricInputs` into a
typed result record. :func:`neuroxai.evaluation.evaluate_explanations` runs
a metric once per explanation method, or once per model when it needs no
explainer (``requires`` names neither ``"maps"`` nor ``"explain_fn"``).
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from neuroxai._records import Record
from neuroxai.errors import DataError, ExplainError

__all__ = ["REQUIREMENTS", "ExplainFn", "ExplanationMetric", "MetricInputs", "Requirement"]

#: ``explain_fn(model, images, targets) -> maps [N, H, W]``: any explainer, as a callable.
ExplainFn = Callable[[Any, np.ndarray, np.ndarray], Any]

#: What a metric can need besides images, targets and probabilities (always given).
Requirement = Literal["model", "maps", "explain_fn", "masks", "labels"]

#: Every :data:`Requirement`, in the order messages list them.
REQUIREMENTS: tuple[Requirement, ...] = ("model", "maps", "explain_fn", "masks", "labels")

_WHY: dict[str, str] = {
    "model": "a Keras model",
    "maps": "explanation maps",
    "explain_fn": "an explainer it can call again",
    "masks": "tumour masks (pass masks=...)",
    "labels": "true labels (pass labels=...)",
}


@dataclass(frozen=True, eq=False)
class MetricInputs:
    """What a metric is given: the model, the images, and for per-method metrics the maps.

    Attributes:
        model: The Keras model (``None`` when not available).
        images: Model inputs ``[N, H, W, C]``, float32.
        targets: The class each map explains, int64 ``[N]``.
        probabilities: The model's class probabilities on ``images``, float64 ``[N, K]``
            (computed once per report and shared by every metric).
        class_names: ``K`` class names.
        masks: Tumour masks, bool ``[N, H, W]`` (``None`` when not given).
        labels: True classes, int64 ``[N]`` (``None`` when not given).
        method: The explanation method's name (``None`` for explainer-free metrics).
        maps: The method's maps, float64 ``[N, H, W]`` (``None`` for explainer-free metrics).
        explain_fn: ``explain_fn(model, images, targets) -> maps``, the method as a callable
            (``None`` for explainer-free metrics).
        batch_size: Forward-pass batch size the caller asked for.
        seed: Seed for anything random.
        progress: Whether to show progress bars.
    """

    model: Any
    images: np.ndarray
    targets: np.ndarray
    probabilities: np.ndarray
    class_names: tuple[str, ...]
    masks: np.ndarray | None = None
    labels: np.ndarray | None = None
    method: str | None = None
    maps: np.ndarray | None = None
    explain_fn: ExplainFn | None = None
    batch_size: int = 64
    seed: int = 0
    progress: bool = False

    def available(self) -> frozenset[Requirement]:
        """The :data:`Requirement` s these inputs meet."""
        have: dict[Requirement, object] = {
            "model": self.model,
            "maps": self.maps,
            "explain_fn": self.explain_fn,
            "masks": self.masks,
            "labels": self.labels,
        }
        return frozenset(k for k, v in have.items() if v is not None)

    def require_maps(self) -> np.ndarray:
        """The maps; raises :class:`~neuroxai.errors.ExplainError` when there are none."""
        if self.maps is None:
            raise ExplainError("This metric needs explanation maps; it was given none (it ran as an explainer-free metric).")
        return self.maps

    def require_masks(self) -> np.ndarray:
        """The masks; raises :class:`~neuroxai.errors.DataError` when there are none."""
        if self.masks is None:
            raise DataError("This metric needs tumour masks; pass masks=[N, H, W] (Dataset.arrays(..., with_masks=True)).")
        return self.masks

    def require_labels(self) -> np.ndarray:
        """The labels; raises :class:`~neuroxai.errors.DataError` when there are none."""
        if self.labels is None:
            raise DataError("This metric needs the true class of each image; pass labels=[N].")
        return self.labels

    def require_explain_fn(self) -> ExplainFn:
        """The explainer callable; raises :class:`~neuroxai.errors.ExplainError` when there is none."""
        if self.explain_fn is None:
            raise ExplainError("This metric needs an explainer to call again; it was given none.")
        return self.explain_fn


class ExplanationMetric(abc.ABC):
    """Base class of explanation metrics: settings in the instance, one typed result per call.

    Subclasses are frozen dataclasses whose fields are the metric's settings,
    set the class attributes and implement :meth:`compute`. Register them with
    a plugin (hook ``neuroxai_register_metrics``) to make them available by
    name in :func:`~neuroxai.evaluation.evaluate_explanations` and
    ``neuroxai evaluate-xai --metric NAME``; a configured instance can also be
    passed directly (``metrics=[MyMetric(cut=0.3)]``).

    Class attributes a subclass sets: ``name``, the metric's name (results
    are stored under it); ``requires``, what :meth:`compute` needs (a set of
    ``Requirement`` names; a metric that needs neither ``"maps"`` nor
    ``"explain_fn"`` is explainer-free and runs once per report instead of
    once per method); ``result_type``, the :class:`~neuroxai._records.Record`
    subclass :meth:`compute` returns (used to read saved reports back); and
    ``description``, one line for listings and the docs.

    Example:
        >>> from dataclasses import dataclass
        >>> from neuroxai._records import Record
        >>> @dataclass(frozen=True)
        ... class SparsityResult(Record):
        ...     n_images: int
        ...     mean: float
        >>> @dataclass(frozen=True)
        ... class Sparsity(ExplanationMetric):
        ...     name = "sparsity"
        ...     requires = frozenset({"maps"})
        ...     result_type = SparsityResult
        ...     cut: float = 0.5
        ...     def compute(self, inputs):
        ...         maps = inputs.require_maps()
        ...         return SparsityResult(len(maps), float((maps < self.cut).mean()))
        >>> Sparsity(cut=0.3).settings()
        {'cut': 0.3}
    """

    name: ClassVar[str] = ""
    requires: ClassVar[frozenset[Requirement]] = frozenset({"maps"})
    result_type: ClassVar[type[Record]] = Record
    description: ClassVar[str] = ""

    @property
    def explainer_free(self) -> bool:
        """True when the metric needs no explanation (it measures the model only)."""
        return not ({"maps", "explain_fn"} & self.requires)

    @property
    def metric_name(self) -> str:
        """:attr:`name`, or the lower-cased class name when it is empty."""
        return self.name or type(self).__name__.lower()

    def settings(self) -> dict[str, Any]:
        """The instance's settings (its dataclass fields) as a plain dict."""
        obj: Any = self
        if dataclasses.is_dataclass(obj):
            return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        return {}

    def missing(self, available: frozenset[Requirement]) -> tuple[Requirement, ...]:
        """The requirements ``available`` lacks, in :data:`REQUIREMENTS` order."""
        return tuple(r for r in REQUIREMENTS if r in self.requires and r not in available)

    def why_not(self, available: frozenset[Requirement]) -> str | None:
        """Why the metric cannot run with ``available`` (``None`` when it can)."""
        lacking = self.missing(available)
        if not lacking:
            return None
        return f"{self.metric_name} needs " + ", ".join(_WHY[r] for r in lacking)

    @abc.abstractmethod
    def compute(self, inputs: MetricInputs) -> Record:
        """Measure and return a result record (an instance of :attr:`result_type`).

        Args:
            inputs: The model, images, targets, shared probabilities and, for
                per-method metrics, the maps and the explainer.

        Returns:
            The result record.

        Raises:
            NeuroxaiError: The metric cannot be computed for these inputs; the report
                records it and goes on. Any other exception is a bug and propagates.
        """

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.settings().items())
        return f"{type(self).__name__}({args})"
