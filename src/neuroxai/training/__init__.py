"""Training: the Trainer, its plan, callbacks and the Keras workarounds it needs.

- :class:`Trainer`: fit a registry model (or your own Keras model) on a
  :class:`~neuroxai.data.Dataset`, with two-phase fine-tuning for transfer
  models, early stopping, learning-rate schedules, checkpoints, resume after
  an interruption and ``tf.distribute`` strategies; evaluate it; write a run
  directory (:class:`~neuroxai.runs.RunDirectory`).
- :class:`TrainingPlan` / :class:`PlannedPhase` / :func:`make_plan`: the
  phases a fit runs, worked out before anything is built.
- :class:`MaskGuidance`: mask-guided training, an
  explanation loss beside cross-entropy that keeps the model's evidence on
  the tumour (``Trainer(guidance="cam")``); :func:`self_masks`: masks from a
  model's own maps, so fine-tuning it on data without masks keeps its
  explanations (:class:`SelfMaskSummary`).

Saved runs, predictors and classification metrics live one layer below, in
:mod:`neuroxai.runs`; the names most used with a trainer are re-exported here
(:func:`load`, :class:`Predictor`, :func:`evaluate_model`,
:func:`classification_metrics`, :func:`expected_calibration_error`).
"""

from __future__ import annotations

from neuroxai.runs import ECE_BINS, Predictor, classification_metrics, evaluate_model, expected_calibration_error, load
from neuroxai.training._guidance import GUIDANCE_KINDS, MaskGuidance
from neuroxai.training._plan import PlannedPhase, TrainingPlan, make_plan
from neuroxai.training._self_masks import SELF_MASK_THRESHOLD, SelfMaskSummary, self_masks
from neuroxai.training._trainer import LR_SCHEDULES, NOT_FITTED_MESSAGE, Trainer

__all__ = [
    "ECE_BINS",
    "GUIDANCE_KINDS",
    "LR_SCHEDULES",
    "NOT_FITTED_MESSAGE",
    "SELF_MASK_THRESHOLD",
    "MaskGuidance",
    "PlannedPhase",
    "Predictor",
    "SelfMaskSummary",
    "Trainer",
    "TrainingPlan",
    "classification_metrics",
    "evaluate_model",
    "expected_calibration_error",
    "load",
    "make_plan",
    "self_masks",
]
