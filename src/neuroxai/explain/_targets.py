"""What an explanation explains: a class, the predicted class, or a callable on the model's output.

:meth:`neuroxai.Explainer.explain` takes ``targets`` as

- ``None``: each image's predicted class;
- a class index or name: that class for every image;
- a callable ``fn(output) -> [B]`` on the model's output (:class:`~neuroxai.models.ModelOutput`:
  ``scores``, the pre-softmax logits, and ``probabilities``), written with ``keras.ops``: the methods
  explain its value instead of a class score. The helpers below are such callables, with a readable
  name (shown in titles) and value equality (so a new helper equal to an old one reuses its compiled
  functions): :class:`ClassScore` (a logit), :class:`ClassProbability` (a probability, through the
  softmax) and :class:`Margin` ("why glioma rather than meningioma": one logit minus another);
- a list with one of the above per image (``None`` inside it: that image's predicted class).

Gradient methods differentiate the callable's value; gradient-free methods (occlusion, Score-CAM)
watch it fall when a patch is covered, as they watch a class's probability otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from neuroxai.errors import ExplainError

if TYPE_CHECKING:  # pragma: no cover
    from neuroxai.models._graph import ModelOutput

__all__ = ["ClassProbability", "ClassScore", "Margin", "Objective", "objective_name"]

#: Which of the model's numbers a helper reads: the pre-softmax ``"scores"`` (logits) or the ``"probabilities"``.
Use = Literal["scores", "probabilities"]


def _index(value: int | str, class_names: Sequence[str], what: str) -> int:
    """A class given by index or name as its index, checked against ``class_names``."""
    if isinstance(value, str):
        if value in class_names:
            return list(class_names).index(value)
        raise ExplainError(f"Unknown class {value!r} in {what}; expected one of {list(class_names)} or an index.")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(class_names):
        raise ExplainError(f"Class {value!r} in {what} is out of range; the model has {len(class_names)} classes.")
    return int(value)


def _name(value: int | str, class_names: Sequence[str] | None) -> str:
    if isinstance(value, int) and class_names is not None and 0 <= value < len(class_names):
        return str(class_names[value])
    return str(value)


@dataclass(frozen=True)
class Objective:
    """Base of the target helpers: a frozen, named callable on :class:`~neuroxai.models.ModelOutput`.

    Subclasses hold classes by index or name (:meth:`resolve` turns names into indices once the class names
    are known) and implement ``__call__``, on ``keras.ops``, returning one value per image. Any other
    callable works as a target too; a subclass adds a name for titles and equality by value.
    """

    #: The model's class names once resolved (names in titles; not part of equality).
    class_names: tuple[str, ...] | None = field(default=None, kw_only=True, repr=False, compare=False)

    @property
    def name(self) -> str:
        """How the target is shown in titles and :attr:`~neuroxai.explain.Explanation.target_names`."""
        raise NotImplementedError

    def resolve(self, class_names: Sequence[str]) -> Objective:
        """This objective with its classes as indices into ``class_names`` (checked).

        Raises:
            ExplainError: An unknown class name or an index out of range.
        """
        raise NotImplementedError

    def __call__(self, output: ModelOutput) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class ClassScore(Objective):
    """One class's pre-softmax score (logit): what an index target explains, by name.

    Example:
        >>> explainer.explain(images, targets=ClassScore("glioma"))  # doctest: +SKIP
    """

    cls: int | str

    @property
    def name(self) -> str:
        return f"score({_name(self.cls, self.class_names)})"

    def resolve(self, class_names: Sequence[str]) -> ClassScore:
        return replace(self, cls=_index(self.cls, class_names, "ClassScore"), class_names=tuple(class_names))

    def __call__(self, output: ModelOutput) -> Any:
        return output.scores[:, int(self.cls)]


@dataclass(frozen=True)
class ClassProbability(Objective):
    """One class's probability (through the softmax, which can saturate): rather than its logit.

    Example:
        >>> explainer.explain(images, targets=ClassProbability("glioma"))  # doctest: +SKIP
    """

    cls: int | str

    @property
    def name(self) -> str:
        return f"p({_name(self.cls, self.class_names)})"

    def resolve(self, class_names: Sequence[str]) -> ClassProbability:
        return replace(self, cls=_index(self.cls, class_names, "ClassProbability"), class_names=tuple(class_names))

    def __call__(self, output: ModelOutput) -> Any:
        return output.probabilities[:, int(self.cls)]


@dataclass(frozen=True)
class Margin(Objective):
    """Why one class rather than another: ``score(of) - score(over)`` (logits by default).

    A map of the margin shows evidence for ``of`` that is not also evidence for ``over``: "why glioma
    rather than meningioma".

    Args:
        of: The class argued for (index or name).
        over: The class argued against.
        use: ``"scores"`` (pre-softmax logits, default) or ``"probabilities"``.

    Example:
        >>> explainer.explain(images, targets=Margin("glioma", "meningioma"))  # doctest: +SKIP
    """

    of: int | str
    over: int | str
    use: Use = "scores"

    def __post_init__(self) -> None:
        if self.use not in ("scores", "probabilities"):
            raise ExplainError(f"Margin(use=...) must be 'scores' or 'probabilities'; got {self.use!r}.")

    @property
    def name(self) -> str:
        a, b = _name(self.of, self.class_names), _name(self.over, self.class_names)
        return f"{a} - {b}" if self.use == "scores" else f"p({a}) - p({b})"

    def resolve(self, class_names: Sequence[str]) -> Margin:
        of, over = _index(self.of, class_names, "Margin"), _index(self.over, class_names, "Margin")
        if of == over:
            raise ExplainError(f"Margin of a class over itself ({self.of!r}) is zero everywhere; pick two different classes.")
        return replace(self, of=of, over=over, class_names=tuple(class_names))

    def __call__(self, output: ModelOutput) -> Any:
        values = output.scores if self.use == "scores" else output.probabilities
        return values[:, int(self.of)] - values[:, int(self.over)]


def objective_name(target: Any) -> str:
    """How a callable target is shown: a helper's :attr:`Objective.name`, else the function's name."""
    if isinstance(target, Objective):
        return target.name
    return str(getattr(target, "__name__", None) or type(target).__name__)
