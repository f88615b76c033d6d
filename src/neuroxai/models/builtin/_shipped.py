"""Digests of the weights neuroxai ships: written by ``benchmarks/pretrained.py --stage ship``; do not edit."""

from __future__ import annotations

__all__ = ["SHIPPED"]

#: ``(name, summary, {file: SHA-256})`` of each pretrained model under ``neuroxai/models/pretrained/``.
SHIPPED: tuple[tuple[str, str, dict[str, str]], ...] = (
    (
        "cnn-mri4-v1",
        "Four-class brain MRI slice classifier (glioma, meningioma, no tumour, pituitary) whose Grad-CAM points at the tumour",
        {
            "model.keras": "0ba16041544142639bdd97bcabbd6e822529ae86379b6836bad4b585a425e842",
            "neuroxai.json": "8b826cfdd18dca8307723dca9f35147873b5703ead70e6731abbdf2e4fcefbd4",
            "model_card.json": "65971be4c5672175cca7b17753ade05c7fa904d43f2e49895d0f5ff6df911b73",
        },
    ),
)
