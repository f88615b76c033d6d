"""neuroxai-tinyresnet: an example third-party neuroxai plugin adding the model ``tinyresnet``."""

from __future__ import annotations

from neuroxai_tinyresnet.model import build_tinyresnet

__all__ = ["build_tinyresnet"]
__version__ = "0.1.0"
