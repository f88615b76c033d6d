"""The training plan: which phases run, for how many epochs, at which learning rate, with what frozen.

A plan is worked out from the model's spec and the trainer's settings before
anything is built, so bad settings fail at once with a clear message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from neuroxai._records import Record
from neuroxai.errors import ModelError

if TYPE_CHECKING:  # pragma: no cover
    import keras

    from neuroxai.models import ModelSpec

__all__ = ["DEFAULT_HEAD_FRACTION", "PlannedPhase", "TrainingPlan", "make_plan"]

#: Share of the epochs spent training the head when a transfer spec does not say.
DEFAULT_HEAD_FRACTION = 0.5


@dataclass(frozen=True)
class PlannedPhase(Record):
    """One phase of a plan.

    Attributes:
        name: ``"single"`` (everything trains), ``"head"`` (backbone frozen) or
            ``"fine_tune"`` (the transfer spec's top backbone layers train too).
        epochs: Epochs in the phase.
        learning_rate: Its starting learning rate.
    """

    name: str
    epochs: int
    learning_rate: float


@dataclass(frozen=True)
class TrainingPlan(Record):
    """The phases a :class:`~neuroxai.Trainer` runs, in order.

    Attributes:
        phases: One or two :class:`PlannedPhase`.
    """

    phases: tuple[PlannedPhase, ...]

    @property
    def epochs(self) -> int:
        """Epochs of all phases together."""
        return sum(p.epochs for p in self.phases)

    def set_trainable(self, spec: ModelSpec, model: keras.Model, phase: PlannedPhase) -> tuple[int, int]:
        """Freeze and unfreeze ``model``'s layers for ``phase``; returns ``(trainable, frozen)`` layer counts.

        Compile the model afterwards (Keras reads ``trainable`` at compile time).
        """
        if phase.name == "single":  # the layers train as the factory built them
            return sum(1 for layer in model.layers if layer.trainable), sum(1 for layer in model.layers if not layer.trainable)
        if spec.transfer is None:  # pragma: no cover - make_plan only plans phases for transfer specs
            raise ModelError(f"Phase {phase.name!r} needs a transfer spec; model '{spec.name}' has none.")
        counts = spec.transfer.set_phase(model, phase.name)
        return counts["trainable"], counts["frozen"]


def make_plan(
    spec: ModelSpec,
    *,
    epochs: int,
    learning_rate: float,
    two_phase: bool | None,
    fine_tune_epochs: int | None,
    fine_tune_lr_factor: float | None,
    model_options: dict[str, Any] | None,
) -> TrainingPlan:
    """Work out the phases for ``spec`` and the trainer's settings.

    Two phases when the spec has a transfer recipe and ``two_phase`` is not
    ``False``, except when the backbone is trained from scratch
    (``model_options={"weights": None}``: frozen random layers would never
    learn). Phase 2 gets ``fine_tune_epochs`` of the epochs (default: what the
    spec's ``head_epochs_fraction`` leaves, else half) at the learning rate
    times ``fine_tune_lr_factor`` (default: the spec's).

    Raises:
        ModelError: ``two_phase=True`` for a spec without a transfer recipe, a
            phase left without epochs, or a factor outside (0, 1].
    """
    transfer = spec.transfer
    if two_phase is None:
        options = model_options or {}
        from_scratch = "weights" in options and options["weights"] is None
        two = transfer is not None and not from_scratch
    else:
        two = bool(two_phase)
    if not two:
        return TrainingPlan((PlannedPhase("single", int(epochs), float(learning_rate)),))
    if transfer is None:
        raise ModelError(
            f"two_phase=True needs a model whose ModelSpec has a transfer=TransferSpec(...); "
            f"model '{spec.name}' has none. Use two_phase=False or add a TransferSpec."
        )
    if fine_tune_epochs is not None:
        ft = int(fine_tune_epochs)
    else:
        frac = transfer.head_epochs_fraction or DEFAULT_HEAD_FRACTION
        ft = int(epochs) - max(1, round(int(epochs) * frac))
    head = int(epochs) - ft
    if head < 1 or ft < 1:
        raise ModelError(
            f"Two-phase training needs at least one epoch in each phase; epochs={epochs} with "
            f"fine_tune_epochs={ft}. Raise epochs, set fine_tune_epochs between 1 and epochs-1, or use two_phase=False."
        )
    factor = float(fine_tune_lr_factor if fine_tune_lr_factor is not None else transfer.fine_tune_lr_factor)
    if not 0.0 < factor <= 1.0:
        raise ModelError(f"Expected fine_tune_lr_factor in (0, 1], got {factor!r}.")
    return TrainingPlan(
        (PlannedPhase("head", head, float(learning_rate)), PlannedPhase("fine_tune", ft, float(learning_rate) * factor))
    )
