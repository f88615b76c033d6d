"""The run report as one self-contained HTML page: :func:`render_report` and :func:`write_report`.

The page is rendered with Jinja2 (autoescaping on) from ``templates/report.html.j2``; every figure is
embedded as a ``data:`` URI, so the file opens from disk, needs no network and runs no script.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from neuroxai.report._data import SECTIONS, ReportData, collect_report
from neuroxai.report._figures import data_uri, figure_data_uri, plot_reliability, plot_risk_coverage

if TYPE_CHECKING:  # pragma: no cover
    from neuroxai.data import Dataset
    from neuroxai.runs import CalibrationReport, UncertaintyMetrics

__all__ = ["REPORT_FILE", "render_report", "write_report"]

logger = logging.getLogger(__name__)

#: The report's file name inside a run directory.
REPORT_FILE = "report.html"

#: Captions of the explanation metrics' figures (:meth:`neuroxai.evaluation.XAIReport.figures`).
_XAI_CAPTIONS = {
    "localization": "Pointing game per class: the method beside a uniform map (chance) and a centre prior.",
    "localization_energy": "Share of the map's energy inside the tumour mask, beside the same references.",
    "deletion_insertion": "Deletion (lower is better) and insertion (higher is better) curves beside a random map.",
    "randomization": "Randomization sanity check: similarity to the trained model's maps as layers are randomized "
    "(a map that stays similar does not depend on what the model learnt).",
    "reliance": "Tumour reliance: drop of the true class's probability when the tumour is blurred, beside an equal "
    "area elsewhere.",
}


def _num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    return f"{float(value):.{digits}g}" if abs(float(value)) < 1e-3 and value != 0 else f"{float(value):.{digits}f}"


def _pct(value: Any, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{100.0 * float(value):.{digits}f}%"


def _setting(value: Any) -> str:
    if isinstance(value, float):
        return _num(value, 6).rstrip("0").rstrip(".") if value else "0"
    if isinstance(value, (list, tuple)):
        return ", ".join(_setting(v) for v in value) or "none"
    if isinstance(value, dict):
        return "; ".join(f"{k}={_setting(v)}" for k, v in value.items()) or "none"
    return "none" if value is None else str(value)


def _version() -> str:
    """neuroxai's version (read from the package metadata: the report layer sits below the package root)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("neuroxai")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
        return "0.0.0+unknown"


def _visible(value: Any) -> Any:
    """Text as shown in the report: invisible control and formatting characters escaped (``\\u202e``).

    HTML escaping does not neutralise a right-to-left override (U+202E) in a class or file name, which would
    reverse the text after it on the page; line breaks and tabs are kept.
    """
    if not isinstance(value, str) or value.isprintable():
        return value
    return "".join(ch if ch.isprintable() or ch in "\n\t" else ch.encode("unicode_escape").decode("ascii") for ch in value)


def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("neuroxai.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_visible,  # every {{ value }}: class and file names cannot reverse or hide the text around them
    )
    env.filters["num"] = _num
    env.filters["pct"] = _pct
    env.filters["setting"] = _setting
    env.filters["uri"] = data_uri
    return env


def _figures(data: ReportData) -> tuple[dict[str, str], dict[str, str]]:
    """The report's own figures and the explanation metrics' figures, as ``data:`` URIs."""
    from neuroxai.runs._figures import plot_confusion_matrix, plot_training_curves

    figs: dict[str, str] = {}
    if data.evaluation is not None:
        m = data.evaluation.headline()
        if m.n:
            figs["confusion"] = figure_data_uri(
                plot_confusion_matrix(m.confusion_matrix, data.evaluation.class_names, normalize=True)
            )
    if data.history.get("loss"):
        figs["training"] = figure_data_uri(plot_training_curves(data.history, title="Training"))
    if data.calibration is not None:
        c = data.calibration
        head = c.headline()
        which = "de-duplicated" if c.dedup is not None else "test"
        diagrams = [(f"{which}, model", head.before)]
        if head.after is not None:
            diagrams.append((f"{which}, T = {c.temperature:.3g}", head.after))
        figs["reliability"] = figure_data_uri(plot_reliability(diagrams))
        figs["risk"] = figure_data_uri(plot_risk_coverage([(label, m.risk_coverage) for label, m in _calibration_sets(c)]))
    xai_figs: dict[str, str] = {}
    if data.xai is not None:
        for name, fig in data.xai.figures().items():
            xai_figs[name] = figure_data_uri(fig)
    return figs, xai_figs


def _calibration_sets(c: CalibrationReport) -> list[tuple[str, UncertaintyMetrics]]:
    return [("test, every image", c.metrics), *([("test, de-duplicated", c.dedup)] if c.dedup is not None else [])]


def render_report(data: ReportData) -> str:
    """The report page of ``data`` as HTML text (self-contained: figures embedded, no script, no network).

    Args:
        data: What to show (:func:`~neuroxai.report.collect_report`).

    Returns:
        The HTML document.

    Example:
        >>> html = render_report(collect_report("demo-run"))  # doctest: +SKIP
        >>> html.startswith("<!DOCTYPE html>")  # doctest: +SKIP
        True
    """
    figs, xai_figs = _figures(data)
    metric_sets = []
    headline_label = ""
    if data.evaluation is not None:
        e = data.evaluation
        metric_sets.append((f"{e.split}, every image", e.metrics))
        if e.dedup is not None:
            metric_sets.append((f"{e.split}, de-duplicated", e.dedup))
        headline_label = metric_sets[-1][0]
    calibration_sets = _calibration_sets(data.calibration) if data.calibration is not None else []
    missing = dict(data.missing)
    for section, _ in SECTIONS:  # a section without data always says why
        missing.setdefault(section, "the run does not have it")
    template = _environment().get_template("report.html.j2")
    html: str = template.render(
        d=dataclasses.replace(data, missing=missing),
        version=_version(),
        sections=SECTIONS,
        figs=figs,
        xai_figs=xai_figs,
        xai_captions=_XAI_CAPTIONS,
        xai_summary=data.xai.summary() if data.xai is not None else {},
        metric_sets=metric_sets,
        headline_label=headline_label,
        calibration_sets=calibration_sets,
        gallery_outlined=any(g.outlined for g in data.gallery),
    )
    return html


def write_report(
    run_dir: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    dataset: Dataset | None = None,
    data: str | os.PathLike[str] | None = None,
    gallery: int = 2,
    method: str = "gradcam",
    batch_size: int = 32,
    progress: bool = False,
) -> Path:
    """Write a run's self-contained ``report.html`` (atomically).

    Args:
        run_dir: The run directory.
        out: The HTML file (default ``RUN_DIR/report.html``).
        dataset: The run's data (default: re-read from ``data`` or the source the run recorded).
        data: A data folder or manifest to read instead of the recorded source.
        gallery: Right and wrong test images to explain per class (0: none).
        method: Explanation method of the gallery.
        batch_size: Batch size of predictions and explanations.
        progress: Show progress bars while reading data.

    Returns:
        The path written.

    Raises:
        ModelError: ``run_dir`` is not a run directory.

    Example:
        >>> write_report("demo-run")  # doctest: +SKIP
        PosixPath('demo-run/report.html')
    """
    from neuroxai._io import write_text

    report = collect_report(
        run_dir, dataset=dataset, data=data, gallery=gallery, method=method, batch_size=batch_size, progress=progress
    )
    path = Path(out) if out is not None else Path(run_dir) / REPORT_FILE
    write_text(path, render_report(report))
    logger.info("Wrote %s", path)
    return path
