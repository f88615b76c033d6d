"""Saved runs: a run directory on disk, loading it back, and predicting with it.

This layer sits between the models and everything that uses a trained model
(training writes runs; explaining, evaluating and the command line read
them), so explaining a saved model never needs the trainer.

- :func:`load` / :class:`Predictor`: a saved run (or a bare ``.keras`` file)
  back, loaded in Keras safe mode, doing its own preprocessing.
- :class:`RunDirectory`: the files of a run (locked while a process writes
  it, final files committed together), and the resume state of an
  interrupted one; :class:`RunSpec` (``neuroxai.json``),
  :class:`PhaseRecord`, :class:`ResumeState`.
- :func:`classification_metrics`, :func:`expected_calibration_error`,
  :func:`evaluate_model`: the metrics a run records, as
  :class:`ClassificationMetrics` / :class:`EvaluationReport` records.
- Calibration and what a clinic can act on: :class:`Calibration` (a
  temperature and conformal scores fitted on the validation split, stored in
  the spec, applied by :class:`Predictor`), :func:`fit_calibration`,
  :func:`calibrate`, :func:`evaluate_calibration` (ECE, classwise ECE, Brier,
  reliability bins, risk-coverage and AURC, conformal sets:
  :class:`CalibrationReport`), :func:`refer`, :func:`prediction_sets`, and
  :func:`tta_probabilities` (test-time augmentation and MC-dropout).
- What the model does not know: :class:`OODDetector` (a Mahalanobis score in the penultimate
  features, fitted on the training split with a threshold chosen on the validation split, stored in
  the spec), :func:`fit_ood`, :func:`fit_ood_detector`; ``Predictor.ood_scores`` and
  ``Predictor.predict_with_ood`` apply it.
- :func:`pretrained`: a model shipped with neuroxai or a plugin, by name (checksums verified).
"""

from __future__ import annotations

from neuroxai.runs._calibration import (
    CONFORMAL_METHODS,
    DEFAULT_CONFORMAL,
    Calibration,
    CalibrationMetrics,
    CalibrationReport,
    ConformalMetrics,
    CoveragePoint,
    ReliabilityBins,
    RiskCoverage,
    UncertaintyMetrics,
    all_classified_right,
    brier_score,
    calibrate,
    calibration_metrics,
    classwise_ece,
    conformal_metrics,
    conformal_scores,
    conformal_threshold,
    coverage_threshold,
    evaluate_calibration,
    fit_temperature,
    log_probabilities,
    prediction_sets,
    refer,
    reliability_bins,
    risk_coverage,
)
from neuroxai.runs._metrics import (
    ECE_BINS,
    ClassificationMetrics,
    ClassMetrics,
    EvaluationReport,
    classification_metrics,
    expected_calibration_error,
)
from neuroxai.runs._ood import (
    DEFAULT_FLAG_RATE,
    FEATURE_LAYER,
    OODDetector,
    feature_model,
    features_and_outputs,
    fit_ood,
    fit_ood_detector,
)
from neuroxai.runs._predictor import Predictor, evaluate_model, load, predict_array, pretrained
from neuroxai.runs._run import (
    MODEL_FILE,
    RUN_FORMAT,
    RUN_FORMAT_VERSION,
    SPEC_FILE,
    PhaseRecord,
    ResumeState,
    RunDirectory,
    RunSpec,
    data_inputs,
    history_to_csv,
)
from neuroxai.runs._uncertainty import MIN_CALIBRATION_SAMPLES, apply_temperature, fit_calibration, tta_probabilities

__all__ = [
    "CONFORMAL_METHODS",
    "DEFAULT_CONFORMAL",
    "DEFAULT_FLAG_RATE",
    "ECE_BINS",
    "FEATURE_LAYER",
    "MIN_CALIBRATION_SAMPLES",
    "MODEL_FILE",
    "RUN_FORMAT",
    "RUN_FORMAT_VERSION",
    "SPEC_FILE",
    "Calibration",
    "CalibrationMetrics",
    "CalibrationReport",
    "ClassMetrics",
    "ClassificationMetrics",
    "ConformalMetrics",
    "CoveragePoint",
    "EvaluationReport",
    "OODDetector",
    "PhaseRecord",
    "Predictor",
    "ReliabilityBins",
    "ResumeState",
    "RiskCoverage",
    "RunDirectory",
    "RunSpec",
    "UncertaintyMetrics",
    "all_classified_right",
    "apply_temperature",
    "brier_score",
    "calibrate",
    "calibration_metrics",
    "classification_metrics",
    "classwise_ece",
    "conformal_metrics",
    "conformal_scores",
    "conformal_threshold",
    "coverage_threshold",
    "data_inputs",
    "evaluate_calibration",
    "evaluate_model",
    "expected_calibration_error",
    "feature_model",
    "features_and_outputs",
    "fit_calibration",
    "fit_ood",
    "fit_ood_detector",
    "fit_temperature",
    "history_to_csv",
    "load",
    "log_probabilities",
    "predict_array",
    "prediction_sets",
    "pretrained",
    "refer",
    "reliability_bins",
    "risk_coverage",
    "tta_probabilities",
]
