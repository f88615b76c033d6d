"""One call that measures one or more explanation methods: :func:`evaluate_explanations`, and its :class:`XAIReport`."""

from __future__ import annotations

import dataclasses
import logging
import os
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from neuroxai._records import Record
from neuroxai.errors import DataError, ExplainError, NeuroxaiError, UnknownMetricError
from neuroxai.evaluation._metric import ExplainFn, ExplanationMetric, MetricInputs, Requirement
from neuroxai.evaluation.faithfulness import FaithfulnessResult
from neuroxai.evaluation.localization import LocalizationResult
from neuroxai.evaluation.reliance import TumourRelianceResult
from neuroxai.evaluation.sanity import SanityResult

__all__ = [
    "REPR_MAX_FIGURES",
    "EvaluationSettings",
    "MethodSummary",
    "MetricFailure",
    "NamedExplainFn",
    "RawResult",
    "XAIReport",
    "evaluate_explanations",
    "named_explain_fn",
    "resolve_metrics",
]

logger = logging.getLogger(__name__)

#: Most figures an :class:`XAIReport` draws when it shows itself in a notebook (in :meth:`XAIReport.figures` order).
REPR_MAX_FIGURES = 5

XR = TypeVar("XR", bound="XAIReport")
RR = TypeVar("RR", bound="RawResult")

# Built-in metric name -> the report field and result type it fills.
_TYPED: dict[str, tuple[str, type[Record]]] = {
    "localization": ("localization", LocalizationResult),
    "faithfulness": ("faithfulness", FaithfulnessResult),
    "sanity": ("sanity", SanityResult),
    "reliance": ("reliance", TumourRelianceResult),
}


class NamedExplainFn:
    """``explain_fn(model, images, targets) -> maps`` for a registered :class:`neuroxai.Explainer` method.

    The explainer built for a model is kept for the next call on the same model
    object (it reads the model's weights at call time, so it stays right while
    the sanity check randomizes a clone's weights in place); a new model object
    gets a new explainer. :meth:`explain` also returns the model's
    probabilities, which :func:`evaluate_explanations` reuses instead of
    predicting again.

    Args:
        method: Method name (``"gradcam"``, ``"gradcam++"``, ``"saliency"`` ...).
        target_layer: Target layer for CAM methods (``None``: the explainer's default).
        batch_size: Explainer batch size.
        **options: Method options.
    """

    def __init__(self, method: str, *, target_layer: Any = None, batch_size: int = 32, **options: Any) -> None:
        self.method = str(method)
        self.target_layer = target_layer
        self.batch_size = int(batch_size)
        self.options = dict(options)
        self.__name__ = self.method
        self._model: weakref.ref[Any] | None = None
        self._explainer: Any = None

    def explainer(self, model: Any) -> Any:
        """The :class:`neuroxai.Explainer` for ``model`` (built once per model object)."""
        from neuroxai.explain import Explainer

        if self._model is None or self._model() is not model:
            self._explainer = Explainer(
                model, self.method, target_layer=self.target_layer, batch_size=self.batch_size, **self.options
            )
            self._model = weakref.ref(model)
        return self._explainer

    def explain(self, model: Any, images: np.ndarray, targets: np.ndarray | None) -> Any:
        """The :class:`neuroxai.explain.Explanation` (maps, probabilities, targets); ``targets=None`` explains the predicted class."""
        return self.explainer(model).explain(images, targets)

    def __call__(self, model: Any, images: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """The maps ``[N, H, W]``."""
        maps: np.ndarray = self.explain(model, images, targets).maps
        return maps

    def __repr__(self) -> str:
        return f"named_explain_fn({self.method!r}, target_layer={self.target_layer!r})"


def named_explain_fn(method: str, *, target_layer: Any = None, batch_size: int = 32, **options: Any) -> NamedExplainFn:
    """An ``explain_fn(model, images, targets) -> maps`` for a registered :class:`neuroxai.Explainer` method.

    Use it in ``methods=`` to choose a target layer or method options:
    ``methods={"gradcam@conv2": named_explain_fn("gradcam", target_layer="conv2")}``.

    Args:
        method: Method name (``"gradcam"``, ``"gradcam++"``, ``"saliency"`` ...).
        target_layer: Target layer for CAM methods (``None``: the explainer's default).
        batch_size: Explainer batch size.
        **options: Method options.

    Returns:
        A :class:`NamedExplainFn`; its ``__name__`` is ``method``.

    Example:
        >>> fn = named_explain_fn("gradcam")
        >>> fn.__name__
        'gradcam'
        >>> maps = fn(model, images, labels)  # doctest: +SKIP
    """
    return NamedExplainFn(method, target_layer=target_layer, batch_size=batch_size, **options)


@dataclass(frozen=True)
class MetricFailure(Record):
    """A method or metric that could not be evaluated (the others still were).

    Attributes:
        method: The explanation method (``None`` for an explainer-free metric).
        metric: The metric (``None`` when explaining itself failed).
        error: The error, as ``"ErrorType: message"``.
    """

    method: str | None
    metric: str | None
    error: str

    def describe(self) -> str:
        """``"gradcam / sanity: ExplainError: ..."``."""
        where = " / ".join(w for w in (self.method, self.metric) if w is not None)
        return f"{where}: {self.error}"


@dataclass(frozen=True)
class EvaluationSettings(Record):
    """What :func:`evaluate_explanations` was asked to do.

    Attributes:
        n_images: Images evaluated.
        targets: ``"label"``, ``"predicted"`` or ``"given"`` (an array was passed).
        accuracy: Accuracy of the model on the images (``None`` without labels).
        seed: Seed of random maps, placements and weight randomization.
        batch_size: Forward-pass batch size.
        image_shape: ``(H, W, C)``.
        metrics: Each metric that ran (or was skipped), with its settings.
        source: Where the images came from (data, split, run directory), as the caller recorded it.
    """

    n_images: int
    targets: str
    accuracy: float | None
    seed: int
    batch_size: int
    image_shape: tuple[int, ...]
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MethodSummary(Record):
    """Headline numbers of one method (``None`` for what was not measured).

    Attributes:
        method: The method's name.
        pointing_game: Overall pointing game; ``_uniform`` and ``_center_prior`` are the references.
        energy: Overall share of the map's mass in the mask, with its references.
        iou: Overall IoU, with its references.
        n_localized: Images scored for localization.
        n_excluded_no_mask: Images left out of localization (empty mask).
        deletion_auc: Deletion AUC (lower is better); ``deletion_auc_random`` for the random map.
        insertion_auc: Insertion AUC (higher is better); ``insertion_auc_random`` for the random map.
        sanity_passed: The randomization check's verdict.
        sanity_spearman: Mean absolute Spearman correlation after full randomization.
        sanity_ssim: Mean SSIM after full randomization.
        other: Scalar fields of plugin metrics' results, as ``"metric.field"``.
    """

    method: str
    pointing_game: float | None = None
    pointing_game_uniform: float | None = None
    pointing_game_center_prior: float | None = None
    energy: float | None = None
    energy_uniform: float | None = None
    energy_center_prior: float | None = None
    iou: float | None = None
    iou_uniform: float | None = None
    iou_center_prior: float | None = None
    n_localized: int | None = None
    n_excluded_no_mask: int | None = None
    deletion_auc: float | None = None
    deletion_auc_random: float | None = None
    insertion_auc: float | None = None
    insertion_auc_random: float | None = None
    sanity_passed: bool | None = None
    sanity_spearman: float | None = None
    sanity_ssim: float | None = None
    other: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RawResult(Record):
    """A plugin metric's result read back from a file where that plugin is not installed.

    Attributes:
        data: The result as it was written.
    """

    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The data as written (so a report round-trips unchanged)."""
        return dict(self.data)

    @classmethod
    def from_dict(cls: type[RR], data: Mapping[str, Any]) -> RR:
        """Keep ``data`` as it is."""
        return cls(dict(data))


def _scalars(result: Record) -> dict[str, Any]:
    out: dict[str, Any] = {}
    obj: Any = result
    source = obj.data if isinstance(obj, RawResult) else {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    for k, v in source.items():
        if isinstance(v, (bool, int, float, np.integer, np.floating)) or v is None:
            out[k] = v.item() if isinstance(v, np.generic) else v
    return out


@dataclass(frozen=True)
class XAIReport(Record):
    """What :func:`evaluate_explanations` measured.

    Attributes:
        methods: Method names, in the order given.
        class_names: Class names for the label ids.
        settings: What was asked (:class:`EvaluationSettings`).
        localization: ``{method: LocalizationResult}`` (empty when not measured).
        faithfulness: ``{method: FaithfulnessResult}``.
        sanity: ``{method: SanityResult}``.
        reliance: The model's :class:`~neuroxai.evaluation.TumourRelianceResult` (explainer-free; ``None``
            when not measured).
        plugin_results: Other metrics' results per method: ``{metric: {method: record}}``.
        plugin_model_results: Other explainer-free metrics' results: ``{metric: record}``.
        skipped: ``{metric: why}`` for metrics that did not apply (no masks, no labels ...).
        errors: Methods and metrics that failed with a :class:`~neuroxai.errors.NeuroxaiError`
            (the others were still evaluated).

    Example:
        >>> report = evaluate_explanations(model, x, masks, y, "gradcam")  # doctest: +SKIP
        >>> report.summary()["gradcam"].sanity_passed  # doctest: +SKIP
        True
        >>> report.reliance.ratio  # doctest: +SKIP
        >>> report.save("runs/cnn")  # doctest: +SKIP
    """

    methods: tuple[str, ...]
    class_names: tuple[str, ...]
    settings: EvaluationSettings
    localization: dict[str, LocalizationResult] = field(default_factory=dict)
    faithfulness: dict[str, FaithfulnessResult] = field(default_factory=dict)
    sanity: dict[str, SanityResult] = field(default_factory=dict)
    reliance: TumourRelianceResult | None = None
    plugin_results: dict[str, dict[str, Record]] = field(default_factory=dict)
    plugin_model_results: dict[str, Record] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    errors: tuple[MetricFailure, ...] = ()

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of everything measured, with the headline ``summary`` per method."""
        out = super().to_dict()
        out["summary"] = {m: s.to_dict() for m, s in self.summary().items()}
        return out

    @classmethod
    def from_dict(cls: type[XR], data: Mapping[str, Any]) -> XR:
        """Read back a report written by :meth:`to_dict` (plugin results as their plugin's records when
        the plugin is installed, else as :class:`RawResult`).

        Raises:
            DataError: ``data`` is not a report.
        """
        if not isinstance(data, Mapping):
            raise DataError(f"Expected a JSON object for XAIReport; got {type(data).__name__}.")
        core = {k: v for k, v in data.items() if k not in ("plugin_results", "plugin_model_results", "summary")}
        report = super().from_dict(core)  # every field but the plugin results, typed by annotation
        per_method = data.get("plugin_results") or {}
        model_level = data.get("plugin_model_results") or {}
        if not per_method and not model_level:
            return report
        types = _result_types([*per_method, *model_level])
        rebuilt = {metric: {m: types[metric].from_dict(r) for m, r in rows.items()} for metric, rows in per_method.items()}
        rebuilt_model = {metric: types[metric].from_dict(r) for metric, r in model_level.items()}
        return dataclasses.replace(report, plugin_results=rebuilt, plugin_model_results=rebuilt_model)

    def with_source(self: XR, **source: str) -> XR:
        """A copy whose ``settings.source`` also records ``source`` (e.g. ``data=..., split=...``)."""
        settings = dataclasses.replace(self.settings, source={**self.settings.source, **{k: str(v) for k, v in source.items()}})
        return dataclasses.replace(self, settings=settings)

    # ------------------------------------------------------------------ reading
    def result(self, metric: str, method: str | None = None) -> Record | None:
        """The result of ``metric`` for ``method`` (``None`` for an explainer-free metric), or ``None``."""
        typed = _TYPED.get(metric)
        if typed is not None:
            value = getattr(self, typed[0])
            if isinstance(value, dict):
                got: Record | None = value.get(method) if method is not None else None
                return got
            single: Record | None = value if method is None else None  # reliance: a record or None
            return single
        if method is None:
            return self.plugin_model_results.get(metric)
        return self.plugin_results.get(metric, {}).get(method)

    def summary(self) -> dict[str, MethodSummary]:
        """Headline numbers per method: overall pointing game, energy and IoU (with references),
        deletion/insertion AUC (with random), the sanity verdict, and plugin metrics' scalar fields.

        Returns:
            ``{method: MethodSummary}`` in method order.
        """
        out: dict[str, MethodSummary] = {}
        for m in self.methods:
            kw: dict[str, Any] = {}
            loc = self.localization.get(m)
            if loc is not None:
                ov = loc.overall
                for metric in ("pointing_game", "energy", "iou"):
                    kw[metric] = getattr(ov.method, metric)
                    kw[f"{metric}_uniform"] = getattr(ov.uniform, metric)
                    kw[f"{metric}_center_prior"] = getattr(ov.center_prior, metric)
                kw["n_localized"] = ov.n_scored
                kw["n_excluded_no_mask"] = ov.n_excluded_no_mask
            f = self.faithfulness.get(m)
            if f is not None:
                kw.update(
                    deletion_auc=f.method.deletion.auc,
                    deletion_auc_random=f.random.deletion.auc,
                    insertion_auc=f.method.insertion.auc,
                    insertion_auc_random=f.random.insertion.auc,
                )
            s = self.sanity.get(m)
            if s is not None:
                kw.update(sanity_passed=s.passed, sanity_spearman=s.final.spearman, sanity_ssim=s.final.ssim)
            other: dict[str, Any] = {}
            for metric, rows in self.plugin_results.items():
                if m in rows:
                    other.update({f"{metric}.{k}": v for k, v in _scalars(rows[m]).items()})
            out[m] = MethodSummary(method=m, other=other, **kw)
        return out

    def format(self) -> str:
        """A short plain-text table: the summary per method, the explainer-free metrics, skips and errors."""

        def fmt(v: Any) -> str:
            if v is None:
                return "-"
            if isinstance(v, bool):
                return "pass" if v else "FAIL"
            return f"{v:.3f}" if isinstance(v, float) else str(v)

        lines: list[str] = []
        for m, row in self.summary().items():
            lines.append(f"{m}:")
            for f in dataclasses.fields(row):
                v = getattr(row, f.name)
                if f.name in ("method", "other") or v is None:
                    continue
                lines.append(f"  {f.name:<28} {fmt(v)}")
            for k, v in row.other.items():
                lines.append(f"  {k:<28} {fmt(v)}")
        if self.reliance is not None:
            r = self.reliance
            lines.append("tumour reliance (model, no explainer):")
            lines.append(f"  {'n_scored':<28} {r.n_scored} (no mask {r.n_excluded_no_mask}, no control place {r.n_unplaced})")
            for label, s in [("overall", r.overall), *r.per_class.items()]:
                if s.n == 0:
                    continue
                lines.append(
                    f"  {label:<28} tumour drop {fmt(s.tumour_drop)}, control drop {fmt(s.control_drop)}, "
                    f"ratio {fmt(s.ratio)} (n={s.n})"
                )
        for metric, rec in self.plugin_model_results.items():
            lines.append(f"{metric} (model, no explainer):")
            lines.extend(f"  {k:<28} {fmt(v)}" for k, v in _scalars(rec).items())
        for metric, why in self.skipped.items():
            lines.append(f"{metric}: skipped: {why}")
        lines.extend(f"error: {e.describe()}" for e in self.errors)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """The notebook view: the headline table per method (with its references), the explainer-free metrics,
        skips and errors, then the figures (at most :data:`REPR_MAX_FIGURES`, small PNGs)."""
        import base64
        import html
        import io

        def cell(value: Any, *refs: Any) -> str:
            def fmt(v: Any) -> str:
                if v is None:
                    return "-"
                if isinstance(v, bool):
                    return "pass" if v else "<b>FAIL</b>"
                return f"{v:.3f}" if isinstance(v, float) else html.escape(str(v))

            shown = fmt(value)
            known = [fmt(r) for r in refs if r is not None]
            return f"<td>{shown}" + (f" <small>({' / '.join(known)})</small>" if known else "") + "</td>"

        head = (
            "<tr><th>method</th><th>pointing game <small>(uniform / centre)</small></th><th>energy</th><th>IoU</th>"
            "<th>deletion AUC <small>(random)</small></th><th>insertion AUC <small>(random)</small></th><th>sanity</th></tr>"
        )
        rows = []
        for m, r in self.summary().items():
            rows.append(
                f"<tr><td><code>{html.escape(m)}</code></td>"
                + cell(r.pointing_game, r.pointing_game_uniform, r.pointing_game_center_prior)
                + cell(r.energy, r.energy_uniform, r.energy_center_prior)
                + cell(r.iou, r.iou_uniform, r.iou_center_prior)
                + cell(r.deletion_auc, r.deletion_auc_random)
                + cell(r.insertion_auc, r.insertion_auc_random)
                + cell(r.sanity_passed)
                + "</tr>"
            )
        notes = []
        if self.reliance is not None and self.reliance.n_scored:
            o = self.reliance.overall
            notes.append(
                f"tumour reliance (model, no explainer): ratio {o.ratio:.2f} (tumour drop {o.tumour_drop:.3f}, control drop "
                f"{o.control_drop:.3f}, n={o.n})"
                if o.ratio is not None and o.tumour_drop is not None and o.control_drop is not None
                else "tumour reliance: not enough images"
            )
        notes.extend(f"{metric}: skipped: {why}" for metric, why in self.skipped.items())
        notes.extend(f"error: {e.describe()}" for e in self.errors)
        parts = [
            "<div class='neuroxai-xai-report'>",
            f"<div><b>Explanation metrics</b> of {len(self.methods)} method(s), classes {html.escape(', '.join(self.class_names))}</div>",
            f"<table>{head}{''.join(rows)}</table>",
        ]
        parts.extend(f"<div><small>{html.escape(n)}</small></div>" for n in notes)
        for name, fig in list(self.figures().items())[:REPR_MAX_FIGURES]:
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=72)
            png = base64.b64encode(buf.getvalue()).decode("ascii")
            parts.append(f"<img src='data:image/png;base64,{png}' alt='{html.escape(name)}' style='max-width:100%'/>")
        parts.append("</div>")
        return "".join(parts)

    def figures(self) -> dict[str, Any]:
        """Matplotlib figures: ``localization``, ``localization_energy``, ``deletion_insertion``,
        ``randomization`` and ``reliance`` (those measured).

        Returns:
            ``{name: matplotlib.figure.Figure}``.
        """
        from neuroxai.evaluation import plots

        figs: dict[str, Any] = {}
        if self.localization:
            figs["localization"] = plots.plot_localization(self.localization, metric="pointing_game")
            figs["localization_energy"] = plots.plot_localization(self.localization, metric="energy")
        if self.faithfulness:
            figs["deletion_insertion"] = plots.plot_deletion_insertion(self.faithfulness)
        if self.sanity:
            figs["randomization"] = plots.plot_randomization(self.sanity)
        if self.reliance is not None and self.reliance.n_scored:
            figs["reliance"] = plots.plot_reliance(self.reliance)
        return figs

    def save(self, out_dir: str | os.PathLike[str], *, json_name: str = "xai_metrics.json") -> list[Path]:
        """Write ``xai_metrics.json`` and one PNG per figure (``xai_<name>.png``) atomically.

        Args:
            out_dir: Destination folder (created).
            json_name: Name of the JSON file.

        Returns:
            The paths written.
        """
        from neuroxai._io import save_figure, write_json

        out = Path(out_dir)
        paths = [write_json(out / json_name, self.to_dict())]
        for name, fig in self.figures().items():
            paths.append(save_figure(fig, out / f"xai_{name}.png"))
        return paths


def _result_types(names: Iterable[str]) -> dict[str, type[Record]]:
    from neuroxai.evaluation._registry import MetricRegistry

    wanted = list(dict.fromkeys(names))
    registry = MetricRegistry()
    out: dict[str, type[Record]] = {}
    for name in wanted:
        try:
            cls = registry.get(name).result_type
        except UnknownMetricError:
            cls = RawResult
        out[name] = cls if dataclasses.is_dataclass(cls) else RawResult
    return out


# ---------------------------------------------------------------------------------------------- inputs


def _resolve_methods(methods: Any, target_layer: Any, batch_size: int) -> dict[str, ExplainFn]:
    if isinstance(methods, (str, bytes)) or callable(methods):
        methods = [methods]
    if isinstance(methods, Mapping):
        items = list(methods.items())
    else:
        items = []
        for i, m in enumerate(methods):
            name = m if isinstance(m, str) else getattr(m, "__name__", None) or f"method{i}"
            items.append((str(name), m))
    out: dict[str, ExplainFn] = {}
    for name, m in items:
        if isinstance(m, str):
            m = named_explain_fn(m, target_layer=target_layer, batch_size=batch_size)
        elif not callable(m):
            raise ExplainError(
                f"Method {name!r} must be a method name or an explain_fn(model, images, targets) callable; got {m!r}."
            )
        if name in out:
            raise ExplainError(f"Method {name!r} given twice; give each method a distinct name (pass a dict).")
        out[name] = m
    return out


def resolve_metrics(metrics: Any = None, *, autoload: bool | None = None) -> tuple[ExplanationMetric, ...]:
    """Metric instances from names and/or configured instances (``None``: every registered metric).

    Args:
        metrics: ``None``, a name, an :class:`~neuroxai.evaluation.ExplanationMetric` instance, or a
            sequence of them. Names are looked up in the :class:`~neuroxai.evaluation.MetricRegistry`
            and get default settings.
        autoload: Include installed plugins' metrics (default: unless ``NEUROXAI_DISABLE_PLUGIN_AUTOLOAD=1``).

    Returns:
        The instances, in the order given (registry order for ``None``).

    Raises:
        UnknownMetricError: An unknown name (close names are suggested).
        ExplainError: Something that is neither a name nor a metric instance, or a metric given twice.

    Example:
        >>> [m.metric_name for m in resolve_metrics(["localization", "faithfulness"], autoload=False)]
        ['localization', 'faithfulness']
    """
    from neuroxai.evaluation._registry import MetricRegistry

    registry: MetricRegistry | None = None

    def reg() -> MetricRegistry:
        nonlocal registry
        if registry is None:
            registry = MetricRegistry(autoload)
        return registry

    if metrics is None:
        items: list[Any] = [reg().create(n) for n in _builtin_first(reg().names())]
    elif isinstance(metrics, (str, ExplanationMetric)):
        items = [metrics]
    else:
        items = list(metrics)
    out: list[ExplanationMetric] = []
    seen: set[str] = set()
    for item in items:
        if isinstance(item, str):
            metric = reg().create(item)
        elif isinstance(item, ExplanationMetric):
            metric = item
        elif isinstance(item, type) and issubclass(item, ExplanationMetric):
            metric = item()
        else:
            raise ExplainError(f"metrics must hold metric names or ExplanationMetric instances; got {item!r}.")
        key = metric.metric_name.lower()
        if key in seen:
            raise ExplainError(f"Metric {metric.metric_name!r} given twice; pass each metric once (configure it once).")
        seen.add(key)
        out.append(metric)
    return tuple(out)


def _builtin_first(names: Sequence[str]) -> list[str]:
    order = list(_TYPED)
    return sorted(names, key=lambda n: (order.index(n) if n in order else len(order), n))


def _predict(model: Any, x: np.ndarray, batch_size: int) -> np.ndarray:
    from neuroxai.evaluation.faithfulness import _as_probabilities

    out = model.predict(x, batch_size=batch_size, verbose=0) if len(x) else np.zeros((0, 1))
    if isinstance(out, (list, tuple)):
        out = out[0]
    return _as_probabilities(np.asarray(out, np.float64))


def _jsonable_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in settings.items():
        ok = (
            v is None
            or isinstance(v, (str, int, float, bool))
            or (isinstance(v, (list, tuple)) and all(isinstance(i, (str, int, float, bool)) for i in v))
        )
        out[k] = v if ok else repr(v)
    return out


def _failure(method: str | None, metric: str | None, exc: NeuroxaiError) -> MetricFailure:
    failure = MetricFailure(method=method, metric=metric, error=f"{type(exc).__name__}: {exc}")
    logger.warning("Could not evaluate %s", failure.describe())
    return failure


# ---------------------------------------------------------------------------------------------- the call


def evaluate_explanations(
    model: Any,
    images: Any,
    masks: Any | None = None,
    labels: Any | None = None,
    methods: Any = "gradcam",
    *,
    metrics: Any = None,
    class_names: Sequence[str] | None = None,
    targets: str | Any = "label",
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = False,
) -> XAIReport:
    """Measure explanation methods (localization, faithfulness, sanity ...) and the model's tumour reliance.

    The model predicts the images once: the probabilities of the first method's explanation (or
    one forward pass) are shared by every metric. Per-method metrics run on each method's maps;
    explainer-free metrics (tumour reliance) run once.

    Args:
        model: A ``keras.Model`` returning class probabilities, or a predictor from
            :func:`neuroxai.load` (its ``.model``, ``.class_names`` and ``.target_layer`` are used).
        images: Model inputs ``[N, H, W, C]``, already scaled to the model's input range.
        masks: Tumour masks ``[N, H, W]`` (needed by localization and reliance).
        labels: True class per image ``[N]`` (needed by reliance, per-class results and ``targets="label"``).
        methods: A method name, an ``explain_fn(model, images, targets) -> maps`` callable, a list of
            them, or a ``{name: name_or_callable}`` dict (:func:`named_explain_fn` picks a target layer).
            May be empty when only explainer-free metrics are wanted.
        metrics: Metric names and/or configured instances (``Faithfulness(steps=10)``); default: every
            registered metric whose needs (masks, labels) are met.
        class_names: Class names (default: the predictor's, else ``"0"``, ``"1"`` ...).
        targets: Which class each map explains: ``"label"`` (the true class, default),
            ``"predicted"``, or an array ``[N]``.
        batch_size: Batch size of explainers and forward passes.
        seed: Seed of random maps, tie-breaking, control placement and weight randomization.
        progress: Show progress bars.

    Returns:
        An :class:`XAIReport`. A method or metric that raises a :class:`~neuroxai.errors.NeuroxaiError`
        is recorded in ``report.errors`` and the others are still evaluated; any other exception
        propagates (it is a bug). Metrics whose needs are not met are listed in ``report.skipped``.

    Raises:
        DataError: Inconsistent shapes, or ``targets="label"`` without labels.
        ExplainError: No usable method or metric, or a method or metric given twice.
        UnknownMetricError: An unknown metric name.
        BackendError: The Keras backend is none of TensorFlow, JAX and PyTorch.

    Example:
        >>> from neuroxai.evaluation import Faithfulness, evaluate_explanations
        >>> report = evaluate_explanations(model, x, masks, y, ["gradcam", "saliency"],
        ...                                metrics=["localization", Faithfulness(steps=10), "reliance"],
        ...                                class_names=names)  # doctest: +SKIP
        >>> report.summary()["gradcam"].pointing_game, report.reliance.ratio  # doctest: +SKIP
        >>> report.save("runs/demo")  # doctest: +SKIP
    """
    from neuroxai.evaluation._checks import require_model_backend

    require_model_backend("evaluate_explanations")
    predictor = None
    if not hasattr(model, "get_weights") and getattr(model, "model", None) is not None:
        predictor, model = model, model.model
    target_layer = getattr(predictor, "target_layer", None) if predictor is not None else None
    if predictor is not None and class_names is None:
        class_names = getattr(predictor, "class_names", None)

    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise DataError(f"Expected images [N, H, W, C]; got shape {x.shape}.")
    n = len(x)
    y = None if labels is None else np.asarray(labels, dtype=np.int64).reshape(-1)
    if y is not None and len(y) != n:
        raise DataError(f"Expected one label per image ({n}); got {len(y)}.")
    mk = None
    if masks is not None:
        from neuroxai.evaluation._checks import as_masks

        mk = as_masks(masks, x.shape[:3])

    t: np.ndarray | None
    if isinstance(targets, str):
        if targets == "label":
            if y is None:
                raise DataError("targets='label' needs labels; pass labels=... or targets='predicted'.")
            t = y
        elif targets == "predicted":
            t = None  # known once the model has predicted
        else:
            raise DataError(f"Unknown targets {targets!r}; expected 'label', 'predicted' or an array of class indices.")
    else:
        t = np.asarray(targets, dtype=np.int64).reshape(-1)
        if len(t) != n:
            raise DataError(f"Expected one target per image ({n}); got {len(t)}.")

    fns = _resolve_methods(methods, target_layer, batch_size)
    chosen = resolve_metrics(metrics)
    explicit = metrics is not None
    have: set[Requirement] = {"model", "maps", "explain_fn"}
    if mk is not None:
        have.add("masks")
    if y is not None:
        have.add("labels")
    skipped: dict[str, str] = {}
    per_method: list[ExplanationMetric] = []
    model_level: list[ExplanationMetric] = []
    for metric in chosen:
        why = metric.why_not(frozenset(have))
        if why is not None:
            skipped[metric.metric_name] = why
        elif metric.explainer_free:
            model_level.append(metric)
        elif fns:
            per_method.append(metric)
        elif explicit:
            skipped[metric.metric_name] = f"{metric.metric_name} measures explanations and no method was given"
    if not fns and not model_level:
        raise ExplainError(
            "Nothing to evaluate: pass a method name such as 'gradcam' or an explain_fn, "
            "or an explainer-free metric (e.g. metrics=['reliance'] with masks and labels)."
        )

    state = _State(model, x, t, class_names, batch_size)
    errors: list[MetricFailure] = []
    results: dict[str, dict[str, Record]] = {}
    model_results: dict[str, Record] = {}

    def inputs(**kw: Any) -> MetricInputs:
        probs, tt = state.require()
        return MetricInputs(
            model=model,
            images=x,
            targets=tt,
            probabilities=probs,
            class_names=state.names,
            masks=mk,
            labels=y,
            batch_size=int(batch_size),
            seed=int(seed),
            progress=progress,
            **kw,
        )

    for name, fn in fns.items():
        if not isinstance(fn, NamedExplainFn) or state.targets is None:
            state.predict()  # a callable needs the targets (and returns no probabilities)
        logger.info("Explaining %d images with %s", n, name)
        try:
            if isinstance(fn, NamedExplainFn):
                explanation = fn.explain(model, x, state.targets)
                maps = np.asarray(explanation.maps, dtype=np.float64)
                probs_seen: np.ndarray | None = np.asarray(explanation.probabilities, dtype=np.float64)
            else:
                maps, probs_seen = _maps(fn(model, x, state.require()[1]), x.shape[:3], name), None
        except NeuroxaiError as exc:
            errors.append(_failure(name, None, exc))
            continue
        if probs_seen is not None:
            state.reuse(probs_seen)  # the explainer's forward pass is the prediction
        method_inputs = inputs(method=name, maps=maps, explain_fn=fn)
        for metric in per_method:
            logger.info("Measuring %s of %s", metric.metric_name, name)
            try:
                results.setdefault(metric.metric_name, {})[name] = metric.compute(method_inputs)
            except NeuroxaiError as exc:
                errors.append(_failure(name, metric.metric_name, exc))
    probs, _ = state.predict()
    for metric in model_level:
        logger.info("Measuring %s of the model", metric.metric_name)
        try:
            model_results[metric.metric_name] = metric.compute(inputs())
        except NeuroxaiError as exc:
            errors.append(_failure(None, metric.metric_name, exc))

    typed: dict[str, Any] = {}
    plugin: dict[str, dict[str, Record]] = {}
    for metric_name, rows in results.items():
        slot = _TYPED.get(metric_name)
        if slot is not None and all(isinstance(r, slot[1]) for r in rows.values()):
            typed[slot[0]] = rows
        else:
            plugin[metric_name] = rows
    plugin_model: dict[str, Record] = {}
    for metric_name, rec in model_results.items():
        slot = _TYPED.get(metric_name)
        if slot is not None and isinstance(rec, slot[1]):
            typed[slot[0]] = rec
        else:
            plugin_model[metric_name] = rec
    settings = EvaluationSettings(
        n_images=n,
        targets=targets if isinstance(targets, str) else "given",
        accuracy=float((probs.argmax(axis=1) == y).mean()) if y is not None and n else None,
        seed=int(seed),
        batch_size=int(batch_size),
        image_shape=tuple(int(s) for s in x.shape[1:]),
        metrics={m.metric_name: _jsonable_settings(m.settings()) for m in chosen},
    )
    return XAIReport(
        methods=tuple(fns),
        class_names=state.names,
        settings=settings,
        plugin_results=plugin,
        plugin_model_results=plugin_model,
        skipped=skipped,
        errors=tuple(errors),
        **typed,
    )


class _State:
    """The probabilities and targets of one evaluation: predicted at most once, or taken from an explanation."""

    def __init__(self, model: Any, x: np.ndarray, targets: np.ndarray | None, class_names: Any, batch_size: int) -> None:
        self.model = model
        self.x = x
        self.targets = targets
        self.class_names = class_names
        self.batch_size = batch_size
        self.probabilities: np.ndarray | None = None
        self.names: tuple[str, ...] = ()

    def reuse(self, probabilities: np.ndarray) -> None:
        if self.probabilities is None:
            self._set(probabilities)

    def predict(self) -> tuple[np.ndarray, np.ndarray]:
        if self.probabilities is None:
            self._set(_predict(self.model, self.x, self.batch_size))
        return self.require()

    def _set(self, probabilities: np.ndarray) -> None:
        self.names = _class_names(self.class_names, probabilities)
        self.probabilities = probabilities
        if self.targets is None:
            self.targets = probabilities.argmax(axis=1).astype(np.int64)

    def require(self) -> tuple[np.ndarray, np.ndarray]:
        if self.probabilities is None or self.targets is None:
            raise ExplainError("Internal error: the model's probabilities were needed before the model predicted.")
        return self.probabilities, self.targets


def _class_names(class_names: Sequence[str] | None, probs: np.ndarray) -> tuple[str, ...]:
    k = probs.shape[1]
    if class_names is None:
        return tuple(str(i) for i in range(k))
    names = tuple(str(c) for c in class_names)
    if len(names) != k:
        raise DataError(f"Expected {k} class names (one per model output); got {len(names)}: {list(names)}.")
    return names


def _maps(maps: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    from neuroxai.evaluation._checks import as_maps

    arr = np.asarray(maps, dtype=np.float64)
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.shape != tuple(shape):
        raise ExplainError(
            f"explain_fn {name!r} returned maps of shape {arr.shape}; expected {tuple(shape)} (one map per image)."
        )
    return as_maps(arr, f"maps of {name!r}")
