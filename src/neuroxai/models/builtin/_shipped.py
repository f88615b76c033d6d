"""Digests of the weights neuroxai ships: written by ``benchmarks/pretrained.py --stage ship``; do not edit."""

from __future__ import annotations

__all__ = ["SHIPPED"]

#: ``(name, summary, {file: SHA-256})`` of each pretrained model under ``neuroxai/models/pretrained/``.
SHIPPED: tuple[tuple[str, str, dict[str, str]], ...] = ()
