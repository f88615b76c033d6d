"""An explanation metric and a command-line subcommand, to show the two other kinds of plugin."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from neuroxai.evaluation import ExplanationMetric, MetricInputs
from neuroxai.plugins import Record


@dataclass(frozen=True)
class FocusResult(Record):
    """How concentrated the maps are: the share of each map's mass in its top ``top`` fraction of pixels."""

    n_images: int
    top: float
    mean: float
    per_image: tuple[float, ...]


@dataclass(frozen=True)
class Focus(ExplanationMetric):
    """Share of a map's mass in its brightest ``top`` fraction of pixels (1.0: all of it there)."""

    name: ClassVar[str] = "focus"
    requires: ClassVar[frozenset] = frozenset({"maps"})
    result_type: ClassVar[type[Record]] = FocusResult
    description: ClassVar[str] = "share of each map's mass in its top 5% of pixels (example plugin)"

    top: float = 0.05

    def compute(self, inputs: MetricInputs) -> FocusResult:
        maps = np.clip(inputs.require_maps(), 0.0, None).reshape(len(inputs.images), -1)
        k = max(1, round(self.top * maps.shape[1]))
        top_mass = -np.sort(-maps, axis=1)[:, :k].sum(axis=1)
        share = np.where(maps.sum(axis=1) > 0, top_mass / np.maximum(maps.sum(axis=1), 1e-12), 0.0)
        return FocusResult(len(maps), self.top, float(share.mean()) if len(share) else 0.0, tuple(float(v) for v in share))


def configure_info(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``neuroxai tinyresnet-info``."""
    parser.add_argument("--base-filters", type=int, default=16, help="channels of the first stage (default: 16)")


def run_info(args: argparse.Namespace) -> int:
    """Print the tinyresnet's layers and parameter count."""
    from neuroxai import ModelRegistry

    model = ModelRegistry().create("tinyresnet", num_classes=4, base_filters=args.base_filters)
    print(f"tinyresnet with base_filters={args.base_filters}: {model.count_params():,} parameters, {len(model.layers)} layers")
    return 0
