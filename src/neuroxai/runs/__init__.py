"""Saved runs: a run directory on disk, loading it back, and predicting with it.

This layer sits between the models and everything that uses a trained model
(training writes runs; explaining, evaluating and the command line read
them), so explaining a saved model never needs the trainer.

- :func:`load` / :class:`Predictor`: a saved run (or a bare ``.keras`` file)
  back, loaded in Keras safe mode, doing its own preprocessing.
- :class:`RunDirectory`: the files of a run, written atomically, and the
  resume state of an interrupted one; :class:`RunSpec` (``neuroxai.json``),
  :class:`PhaseRecord`, :class:`ResumeState`.
- :func:`classification_metrics`, :func:`expected_calibration_error`,
  :func:`evaluate_model`: the metrics a run records, as
  :class:`ClassificationMetrics` / :class:`EvaluationReport` records.
"""

from __future__ import annotations

from neuroxai.runs._metrics import (
    ECE_BINS,
    ClassificationMetrics,
    ClassMetrics,
    EvaluationReport,
    classification_metrics,
    expected_calibration_error,
)
from neuroxai.runs._predictor import Predictor, evaluate_model, load, predict_array
from neuroxai.runs._run import (
    MODEL_FILE,
    RUN_FORMAT,
    RUN_FORMAT_VERSION,
    SPEC_FILE,
    PhaseRecord,
    ResumeState,
    RunDirectory,
    RunSpec,
    history_to_csv,
)

__all__ = [
    "ECE_BINS",
    "MODEL_FILE",
    "RUN_FORMAT",
    "RUN_FORMAT_VERSION",
    "SPEC_FILE",
    "ClassMetrics",
    "ClassificationMetrics",
    "EvaluationReport",
    "PhaseRecord",
    "Predictor",
    "ResumeState",
    "RunDirectory",
    "RunSpec",
    "classification_metrics",
    "evaluate_model",
    "expected_calibration_error",
    "history_to_csv",
    "load",
    "predict_array",
]
