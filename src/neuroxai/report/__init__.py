"""Reports: one self-contained HTML page per run, and the figures in it.

- :func:`write_report` / :func:`render_report` / :func:`collect_report`: a run's ``report.html`` (model
  card, data audit, accuracy plain and de-duplicated, per-class results, confusion matrix, training
  curves, calibration, risk-coverage, explanation metrics and a gallery of explained test images),
  built from a typed :class:`ReportData`; sections whose data the run lacks say "not measured".
- :func:`plot_reliability`, :func:`plot_risk_coverage`: the calibration figures, drawn from the
  records of :mod:`neuroxai.runs` (:class:`~neuroxai.runs.CalibrationMetrics`,
  :class:`~neuroxai.runs.RiskCoverage`).
- :func:`plot_confusion_matrix`, :func:`plot_training_curves`: drawn by the run layer itself
  (:mod:`neuroxai.runs`), which writes them into run directories; re-exported here for users who draw
  them from their own numbers.
"""

from __future__ import annotations

from neuroxai.report._data import SECTIONS, GalleryItem, ReportData, collect_report
from neuroxai.report._figures import plot_reliability, plot_risk_coverage
from neuroxai.report._html import REPORT_FILE, render_report, write_report
from neuroxai.runs._figures import plot_confusion_matrix, plot_training_curves

__all__ = [
    "REPORT_FILE",
    "SECTIONS",
    "GalleryItem",
    "ReportData",
    "collect_report",
    "plot_confusion_matrix",
    "plot_reliability",
    "plot_risk_coverage",
    "plot_training_curves",
    "render_report",
    "write_report",
]
