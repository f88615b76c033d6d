"""One call that measures one or more explanation methods: :func:`evaluate_explanations`."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neuroxai.errors import DataError, ExplainError

__all__ = ["XAIReport", "evaluate_explanations", "named_explain_fn"]

ExplainFn = Callable[[Any, np.ndarray, np.ndarray], Any]


def named_explain_fn(method: str, *, target_layer: Any = None, batch_size: int = 32, **options: Any) -> ExplainFn:
    """An ``explain_fn(model, images, targets) -> maps`` for a registered :class:`neuroxai.Explainer` method.

    The explainer built for a model is kept for the next call on the same model
    object (it reads the model's weights at call time, so it stays right while
    the sanity check randomizes a clone's weights in place); a new model object
    gets a new explainer.

    Args:
        method: Method name (``"gradcam"``, ``"gradcam++"``, ``"saliency"`` ...).
        target_layer: Target layer for CAM methods (``None``: the explainer's default).
        batch_size: Explainer batch size.
        **options: Method options.

    Returns:
        The callable; its ``__name__`` is ``method``.

    Example:
        >>> fn = named_explain_fn("gradcam")
        >>> maps = fn(model, images, labels)  # doctest: +SKIP
    """

    import weakref

    cache: dict[str, Any] = {}

    def explain_fn(model: Any, images: np.ndarray, targets: np.ndarray) -> np.ndarray:
        from neuroxai.explain import Explainer

        ref = cache.get("model")
        if ref is None or ref() is not model:
            cache["explainer"] = Explainer(model, method, target_layer=target_layer, batch_size=batch_size, **options)
            cache["model"] = weakref.ref(model)
        return cache["explainer"].explain(images, targets).maps

    explain_fn.__name__ = str(method)
    return explain_fn


@dataclass
class XAIReport:
    """What :func:`evaluate_explanations` measured, per method.

    Attributes:
        methods: Method names, in the order given.
        class_names: Class names for the label ids.
        localization: ``{method: localization_report(...) dict}`` (empty when skipped).
        faithfulness: ``{method: faithfulness_report(...) dict}`` (empty when skipped).
        sanity: ``{method: cascading_randomization(...) dict}`` (empty when skipped).
        settings: The settings used (targets, steps, seeds, counts).
        errors: ``{method: message}`` for methods that could not be evaluated (the others still are).

    Example:
        >>> report = evaluate_explanations(model, x, masks, y, "gradcam")  # doctest: +SKIP
        >>> report.summary()["gradcam"]["sanity_passed"]  # doctest: +SKIP
        True
        >>> report.save("runs/cnn")  # doctest: +SKIP
    """

    methods: list[str]
    class_names: list[str]
    localization: dict[str, dict[str, Any]] = field(default_factory=dict)
    faithfulness: dict[str, dict[str, Any]] = field(default_factory=dict)
    sanity: dict[str, dict[str, Any]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (plain Python types) of everything measured.

        Returns:
            ``{"methods", "class_names", "settings", "summary", "localization", "faithfulness", "sanity", "errors"}``.
        """
        from neuroxai._io import _jsonable

        return _jsonable(
            {
                "methods": list(self.methods),
                "class_names": list(self.class_names),
                "settings": self.settings,
                "summary": self.summary(),
                "localization": self.localization,
                "faithfulness": self.faithfulness,
                "sanity": self.sanity,
                "errors": self.errors,
            }
        )

    def summary(self) -> dict[str, dict[str, Any]]:
        """Headline numbers per method: overall pointing game and energy (with references),
        deletion/insertion AUC (with random) and the sanity verdict.

        Returns:
            ``{method: {name: value}}``.
        """
        out: dict[str, dict[str, Any]] = {}
        for m in self.methods:
            row: dict[str, Any] = {}
            loc = self.localization.get(m)
            if loc:
                for ref in ("method", "uniform", "center_prior"):
                    for metric in ("pointing_game", "energy", "iou"):
                        key = metric if ref == "method" else f"{metric}_{ref}"
                        row[key] = loc["overall"][ref][metric]
                row["n_localized"] = loc["n_scored"]
                row["n_excluded_no_mask"] = loc["n_excluded_no_mask"]
            f = self.faithfulness.get(m)
            if f:
                for kind in ("deletion", "insertion"):
                    row[f"{kind}_auc"] = f["method"][kind]["auc"]
                    row[f"{kind}_auc_random"] = f["random"][kind]["auc"]
            s = self.sanity.get(m)
            if s:
                row["sanity_passed"] = s["passed"]
                row["sanity_spearman"] = s["final"]["spearman"]
                row["sanity_ssim"] = s["final"]["ssim"]
            out[m] = row
        return out

    def format(self) -> str:
        """A short plain-text table of :meth:`summary`."""

        def fmt(v: Any) -> str:
            if v is None:
                return "-"
            if isinstance(v, bool):
                return "pass" if v else "FAIL"
            return f"{v:.3f}" if isinstance(v, float) else str(v)

        lines = []
        for m, row in self.summary().items():
            lines.append(f"{m}:")
            for k, v in row.items():
                lines.append(f"  {k:<28} {fmt(v)}")
        for m, msg in self.errors.items():
            lines.append(f"{m}: error: {msg}")
        return "\n".join(lines)

    def figures(self) -> dict[str, Any]:
        """Matplotlib figures: ``localization``, ``deletion_insertion`` and ``randomization`` (when measured).

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
    if not out:
        raise ExplainError("No methods to evaluate; pass a method name such as 'gradcam' or an explain_fn.")
    return out


def _predict(model: Any, x: np.ndarray, batch_size: int) -> np.ndarray:
    from neuroxai.evaluation.faithfulness import _as_probabilities

    out = model.predict(x, batch_size=batch_size, verbose=0) if len(x) else np.zeros((0, 1))
    if isinstance(out, (list, tuple)):
        out = out[0]
    return _as_probabilities(np.asarray(out, np.float64))


def evaluate_explanations(
    model: Any,
    images: Any,
    masks: Any | None = None,
    labels: Any | None = None,
    methods: Any = "gradcam",
    *,
    class_names: Sequence[str] | None = None,
    targets: str | Any = "label",
    localization: bool = True,
    faithfulness: bool = True,
    sanity: bool = True,
    steps: int = 20,
    n_faithfulness: int | None = None,
    n_sanity: int = 16,
    tolerance: float = 15.0,
    threshold: float = 0.5,
    top_k: float | None = None,
    deletion_baseline: str | float = "zero",
    insertion_baseline: str | float = "blur",
    sanity_threshold: float = 0.5,
    target_layer: Any = None,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = False,
) -> XAIReport:
    """Measure explanation methods: localization, faithfulness and sanity, in one call.

    Args:
        model: A ``keras.Model`` returning class probabilities, or a predictor from
            :func:`neuroxai.load` (its ``.model``, ``.class_names`` and ``.target_layer`` are used).
        images: Model inputs ``[N, H, W, C]``, already scaled to the model's input range.
        masks: Tumour masks ``[N, H, W]`` (needed for localization; ``None`` skips it).
        labels: True class per image ``[N]`` (needed for per-class results and ``targets="label"``).
        methods: A method name, an ``explain_fn(model, images, targets) -> maps`` callable, a list of
            them, or a ``{name: name_or_callable}`` dict.
        class_names: Class names (default: the predictor's, else ``"0"``, ``"1"`` ...).
        targets: Which class each map explains: ``"label"`` (the true class, default),
            ``"predicted"``, or an array ``[N]``.
        localization: Compute localization metrics (needs ``masks``).
        faithfulness: Compute deletion/insertion curves.
        sanity: Run the cascading randomization check.
        steps: Deletion/insertion steps.
        n_faithfulness: Use only the first this many images for deletion/insertion (default all).
        n_sanity: Images used by the sanity check (it explains them once per layer).
        tolerance: Pointing-game tolerance in pixels at 224 px.
        threshold: IoU/Dice binarisation threshold (fraction of each map's range).
        top_k: Binarise IoU/Dice to this fraction of top pixels instead.
        deletion_baseline: Fill for deleted pixels (``"zero"``, ``"mean"``, ``"blur"`` or a number).
        insertion_baseline: Image insertion starts from.
        sanity_threshold: Similarity below which the sanity check passes.
        target_layer: Target layer for named CAM methods.
        batch_size: Batch size of explainers (deletion/insertion uses at least 256 perturbed images per call).
        seed: Seed of random maps, tie-breaking and weight randomization.
        progress: Show progress bars.

    Returns:
        An :class:`XAIReport`. A method that raises is recorded in ``report.errors`` and the
        others are still evaluated.

    Raises:
        DataError: Inconsistent shapes, or ``targets="label"`` without labels.
        ExplainError: No usable method.

    Example:
        >>> from neuroxai.evaluation import evaluate_explanations
        >>> report = evaluate_explanations(model, x, masks, y, ["gradcam", "saliency"],
        ...                                class_names=names)  # doctest: +SKIP
        >>> report.summary()["gradcam"]["pointing_game"]  # doctest: +SKIP
        >>> report.save("runs/demo")  # doctest: +SKIP
    """
    from neuroxai.evaluation.faithfulness import faithfulness_report
    from neuroxai.evaluation.localization import localization_report
    from neuroxai.evaluation.sanity import cascading_randomization

    predictor = None
    if not hasattr(model, "get_weights") and getattr(model, "model", None) is not None:
        predictor, model = model, model.model
    if predictor is not None:
        class_names = class_names or getattr(predictor, "class_names", None)
        target_layer = target_layer if target_layer is not None else getattr(predictor, "target_layer", None)

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

    probs = _predict(model, x, batch_size)
    if class_names is None:
        class_names = [str(i) for i in range(probs.shape[1])]
    class_names = [str(c) for c in class_names]
    if isinstance(targets, str):
        if targets == "label":
            if y is None:
                raise DataError("targets='label' needs labels; pass labels=... or targets='predicted'.")
            t = y
        elif targets == "predicted":
            t = probs.argmax(axis=1)
        else:
            raise DataError(f"Unknown targets {targets!r}; expected 'label', 'predicted' or an array of class indices.")
    else:
        t = np.asarray(targets, dtype=np.int64).reshape(-1)
        if len(t) != n:
            raise DataError(f"Expected one target per image ({n}); got {len(t)}.")

    fns = _resolve_methods(methods, target_layer, batch_size)
    report = XAIReport(methods=list(fns), class_names=class_names)
    nf = n if n_faithfulness is None else min(n, int(n_faithfulness))
    ns = min(n, int(n_sanity))
    report.settings = {
        "n_images": n,
        "targets": targets if isinstance(targets, str) else "given",
        "accuracy": None if y is None else float((probs.argmax(axis=1) == y).mean()) if n else None,
        "n_faithfulness": nf if faithfulness else 0,
        "n_sanity": ns if sanity else 0,
        "seed": int(seed),
        "image_shape": list(x.shape[1:]),
    }
    for name, fn in fns.items():
        try:
            maps = np.asarray(fn(model, x, t), dtype=np.float64)
            if maps.ndim == 4 and maps.shape[-1] == 1:
                maps = maps[..., 0]
            if maps.shape != x.shape[:3]:
                raise ExplainError(f"explain_fn returned maps of shape {maps.shape}; expected {x.shape[:3]}.")
            if localization and mk is not None:
                report.localization[name] = localization_report(
                    maps, mk, y, class_names=class_names, tolerance=tolerance, threshold=threshold, top_k=top_k
                )
            if faithfulness and nf:
                report.faithfulness[name] = faithfulness_report(
                    model,
                    x[:nf],
                    maps[:nf],
                    t[:nf],
                    steps=steps,
                    deletion_baseline=deletion_baseline,
                    insertion_baseline=insertion_baseline,
                    batch_size=max(256, batch_size, 2 * (steps + 1)),
                    seed=seed,
                    progress=progress,
                )
            if sanity and ns:
                report.sanity[name] = cascading_randomization(
                    model, x[:ns], t[:ns], fn, seed=seed, threshold=sanity_threshold, progress=progress
                )
        except Exception as exc:  # one broken method must not lose the others' results
            report.errors[name] = f"{type(exc).__name__}: {exc}"
    return report
