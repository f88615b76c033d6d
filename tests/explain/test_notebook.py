"""Explanations in Jupyter (issue 29, item 4): ``_repr_html_`` / ``_repr_png_`` draw a bounded grid of titled overlays.

The example notebook itself (``examples/notebook.ipynb``) runs in ``tests/test_examples.py``.
"""

from __future__ import annotations

import base64
import io
import re

import matplotlib.pyplot as plt
import numpy as np
import pytest
from explain_models import images_for
from PIL import Image
from token_models import cnn3d, volumes

from neuroxai.explain import REPR_MAX_IMAGES, Explainer, Margin


@pytest.fixture(scope="module")
def explainer(tiny_models):
    return Explainer(tiny_models["functional_rgb"], "gradcam", class_names=["glioma", "meningioma", "notumor", "pituitary"])


def _png(page: str) -> Image.Image:
    (data,) = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    return Image.open(io.BytesIO(base64.b64decode(data)))


def test_an_explanation_shows_itself_as_a_titled_grid(explainer):
    figures = plt.get_fignums()
    exp = explainer.explain(images_for(explainer.model, 3), targets=[None, "notumor", Margin("glioma", "pituitary")])
    page = exp._repr_html_()
    assert page.startswith("<div class='neuroxai-explanation'>") and "<b>gradcam</b> &middot; 3 images" in page
    assert "layer <code>conv3</code>" in page and "gradients of logits" in page and "showing" not in page
    picture = _png(page)
    assert picture.width > 400 and picture.height > 150  # four panels wide at most, one row, a colour bar
    assert exp._repr_png_().startswith(b"\x89PNG")
    assert plt.get_fignums() == figures  # nothing left for a notebook's pyplot to show twice
    assert repr(exp) == "Explanation(method='gradcam', n=3, maps=(3, 32, 32), layer='conv3')"


def test_a_big_batch_shows_its_first_images_only(explainer):
    few = _png(explainer.explain(images_for(explainer.model, REPR_MAX_IMAGES))._repr_html_())
    exp = explainer.explain(images_for(explainer.model, 40, seed=1))
    page = exp._repr_html_()
    assert "40 images" in page and f"showing the first {REPR_MAX_IMAGES}" in page
    assert _png(page).size == few.size  # bounded: as large as the grid of REPR_MAX_IMAGES images
    assert len(page) < 1_000_000


def test_a_volume_explanation_shows_its_peak_slices():
    model = cnn3d()
    exp = Explainer(model, "gradcam").explain(volumes(2, seed=9))
    page = exp._repr_html_()
    assert "2 volumes" in page and _png(page).width > 200
    assert exp._panel_title(0, None, exp.peak_slice(0)).endswith(f"slice {exp.peak_slice(0)} of 16")


def test_an_empty_explanation_shows_its_summary_only(explainer):
    exp = explainer.explain(np.zeros((0, 32, 32, 3), np.float32))
    assert "0 images" in exp._repr_html_() and "<img" not in exp._repr_html_()
