"""The README's real-data figures are the published ones (read from the benchmarks' JSON; nothing is trained here)."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def test_the_readme_quotes_the_published_results():
    """The README's real-data figures are the ones in the benchmarks' JSON (not run here: read from the files)."""
    text = README.read_text(encoding="utf-8")
    result = json.loads((ROOT / "docs" / "results" / "pretrained" / "pretrained.json").read_text())["test"]
    quoted = [
        f"{100 * result['kaggle_test_accuracy']:.2f}%",
        f"{100 * result['kaggle_test_accuracy_dedup']:.2f}% ({result['kaggle_test_images'][1]})",
        f"{100 * result['figshare_test_accuracy_3_classes']:.2f}%",
        f"{result['gradcam_pointing_game']:.3f}",
        f"{100 * result['gradcam_pointing_game']:.1f}% of the slices",
        f"centre prior {result['center_prior_pointing_game']:.3f}",
        f"{100 * result['gradcam_energy']:.1f}% of its mass",
        f"{result['tumour_reliance_ratio']:.1f} times",
        f"pointing game {result['by_size']['small']['pointing_game']:.3f} on the smallest third",
    ]
    missing = [q for q in quoted if q not in text]
    assert not missing, f"the README does not quote these published figures: {missing}"
