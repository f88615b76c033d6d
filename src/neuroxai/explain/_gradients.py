"""Pixel-level gradient methods: saliency, SmoothGrad and integrated gradients.

Each overrides only which copies of the batch to differentiate
(:meth:`~neuroxai.explain.GradientMethod.samples`) and how their gradients
combine (:meth:`~neuroxai.explain.GradientMethod.combine`). All samples of a
batch are tiled into one tensor and differentiated in one compiled call. The
hooks are written on ``keras.ops`` and run on TensorFlow, JAX and PyTorch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from neuroxai.errors import ExplainError
from neuroxai.explain import _backend
from neuroxai.explain._base import GradientMethod, check_positive_int

__all__ = ["IntegratedGradients", "Saliency", "SmoothGrad"]


class Saliency(GradientMethod):
    """Vanilla gradient saliency (Simonyan et al., 2014): ``max_c |d score / d x|``."""

    name = "saliency"


class SmoothGrad(GradientMethod):
    """SmoothGrad (Smilkov et al., 2017): saliency averaged over noisy copies of each image.

    Options:
        samples: Number of noisy copies per image (default 16).
        noise: Noise standard deviation as a fraction of each image's value range (default 0.15).
        seed: Seed of the (stateless, so deterministic) noise (default 0; each backend draws its own noise).
    """

    name = "smoothgrad"
    defaults: ClassVar[Mapping[str, Any]] = {"samples": 16, "noise": 0.15, "seed": 0}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        check_positive_int(self.name, "samples", self.options["samples"])
        noise = self.options["noise"]
        if not isinstance(noise, (int, float)) or noise < 0:
            raise ExplainError(f"Option 'noise' of method 'smoothgrad' must be a number >= 0; got {noise!r}.")

    def samples_per_image(self) -> int:
        return int(self.options["samples"])

    def samples(self, x: Any) -> Any:
        from keras import ops

        n = int(self.options["samples"])
        axes = tuple(range(1, len(x.shape)))  # every axis but the batch: images and volumes
        lo = ops.min(x, axis=axes, keepdims=True)
        hi = ops.max(x, axis=axes, keepdims=True)
        sigma = float(self.options["noise"]) * ops.maximum(hi - lo, 1e-6)
        noise = _backend.standard_normal((n, *ops.shape(x)), int(self.options["seed"]))
        return x[None] + noise * sigma[None]


class IntegratedGradients(GradientMethod):
    """Integrated gradients (Sundararajan et al., 2017), midpoint Riemann sum over ``steps`` alphas.

    The map is ``sum_c |(x - baseline) * mean_alpha grad|``.

    Options:
        steps: Interpolation steps between the baseline and the image (default 32).
        baseline: Constant baseline value in the model's input range (default 0.0, a black image).
    """

    name = "integrated_gradients"
    defaults: ClassVar[Mapping[str, Any]] = {"steps": 32, "baseline": 0.0}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        check_positive_int(self.name, "steps", self.options["steps"])
        if not isinstance(self.options["baseline"], (int, float)):
            raise ExplainError(
                f"Option 'baseline' of method 'integrated_gradients' must be a number; got {self.options['baseline']!r}."
            )

    def samples_per_image(self) -> int:
        return int(self.options["steps"])

    def samples(self, x: Any) -> Any:
        from keras import ops

        steps = int(self.options["steps"])
        alphas = (ops.arange(steps, dtype="float32") + 0.5) / steps
        alphas = ops.reshape(alphas, (steps, *([1] * len(x.shape))))  # [S, 1, ..., 1]: images and volumes
        base = ops.full_like(x, float(self.options["baseline"]))
        return base[None] + alphas * (x - base)[None]

    def combine(self, x: Any, samples: Any, gradients: Any) -> Any:
        from keras import ops

        base = float(self.options["baseline"])
        attribution = (x - base) * ops.mean(gradients, axis=0)
        return ops.sum(ops.abs(attribution), axis=-1)
