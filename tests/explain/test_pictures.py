"""Pictures a person reads: the scan at its own resolution beside the overlay, titled, with a colour bar."""

from __future__ import annotations

import numpy as np
import pytest
from explain_models import SIZE, images_for
from PIL import Image

from neuroxai.errors import ExplainError
from neuroxai.explain import Explainer, Explanation, scale_map

NAMES = ("glioma", "notumor", "pituitary")


@pytest.fixture(scope="module")
def explanation(tiny_models):
    model = tiny_models["sequential_gray"]
    return Explainer(model, "gradcam", class_names=list(NAMES)).explain(images_for(model, 2))


def _flat_top_map_explanation() -> Explanation:
    """One image whose map sits between 0.8 and 1 (a ramp): divided by its maximum it would be all red."""
    ramp = np.linspace(0.8, 1.0, SIZE, dtype=np.float32)[None, :].repeat(SIZE, axis=0)
    return Explanation(
        maps=ramp[None],
        probabilities=np.array([[0.1, 0.7, 0.2]], np.float32),
        predicted=np.array([1]),
        targets=np.array([1]),
        class_names=NAMES,
        layer="conv",
        method="gradcam",
        images=np.random.default_rng(0).random((1, SIZE, SIZE, 1)).astype(np.float32),
    )


def test_picture_follows_the_scan_not_the_model(explanation, tmp_path):
    rng = np.random.default_rng(1)
    scans = [(rng.random((300, 260)) * 255).astype(np.uint8), (rng.random((512, 384, 3)) * 255).astype(np.uint8)]
    paths = explanation.save(tmp_path, originals=scans)
    for scan, path in zip(scans, paths):
        width, height = Image.open(path).size
        h, w = scan.shape[:2]
        # two panels at the scan's own size side by side, plus a title band and a colour bar
        assert 2 * w <= width <= 2 * w + 120 and h <= height <= h + 100, (path.name, width, height, scan.shape)
    assert SIZE < 100  # the model saw 32 px images: the pictures are not at its size


def test_small_scans_are_enlarged_by_a_whole_factor(explanation, tmp_path):
    (path,) = explanation.save(tmp_path, names=["a", "b"], originals=[np.zeros((40, 48), np.uint8), None])[:1]
    width, height = Image.open(path).size
    k = 6  # ceil(256 / 48): pixel for pixel, large enough for the text
    assert 2 * 48 * k <= width <= 2 * 48 * k + 120 and 40 * k <= height <= 40 * k + 100


def test_title_names_predicted_class_probability_and_truth(explanation, tmp_path):
    paths = explanation.save(tmp_path, true_labels=["glioma", 2])
    for i, path in enumerate(paths):
        title = Image.open(path).text["Title"]
        pred = explanation.predicted_names[i]
        p = float(explanation.probabilities[i, explanation.predicted[i]])
        assert f"predicted: {pred} (p = {p:.3f})" in title
        truth = ("glioma", "pituitary")[i]
        assert f"true: {truth}" in title and (("wrong" in title) == (truth != pred))
        top = np.asarray(Image.open(path).convert("L"))[:40]
        assert top.min() < 100  # the title is drawn, not only stored
    assert "true:" not in explanation.title(0)


def test_minmax_scaling_spans_the_colour_range_and_keeps_the_raw_map():
    exp = _flat_top_map_explanation()
    raw = exp.maps.copy()
    heat = exp.overlay(0, alpha=1.0, cmap="gray")[..., 0]
    assert heat.min() <= 1 and heat.max() >= 254  # 0.8 -> black, 1.0 -> white
    by_max = exp.overlay(0, alpha=1.0, cmap="gray", scaling="max")[..., 0]
    assert by_max.min() >= 200  # what dividing by the maximum did: the whole frame near the top colour
    np.testing.assert_array_equal(exp.maps, raw)  # the method's own values stay available
    np.testing.assert_allclose(scale_map(raw[0]).min(), 0.0)
    np.testing.assert_allclose(scale_map(raw[0]).max(), 1.0)


def test_scale_map_edge_cases():
    assert not scale_map(np.full((4, 4), 0.5)).any()  # a constant map carries no ranking: all zero
    assert not scale_map(np.zeros((2, 4, 4)), "max").any()  # an all-zero map stays zero
    m = scale_map(np.array([[np.nan, 1.0], [2.0, 3.0]]))
    assert np.isfinite(m).all() and m.max() == 1.0
    with pytest.raises(ExplainError, match="Unknown map scaling"):
        scale_map(np.zeros((2, 2)), "log")


def test_mask_is_outlined_at_the_scan_size(explanation, tmp_path):
    scan = np.full((300, 300), 90, np.uint8)
    scan[::7] = 200
    mask = np.zeros((SIZE, SIZE), bool)  # a model-size mask is resized to the scan
    mask[8:20, 10:22] = True
    with_mask = explanation.picture(0, original=scan, mask=mask)
    without = explanation.picture(0, original=scan)
    green = np.all(with_mask == (0, 255, 0), axis=-1)
    assert green.sum() > 100 and not np.all(without == (0, 255, 0), axis=-1).any()


def test_per_image_lists_must_match(explanation, tmp_path):
    with pytest.raises(ExplainError, match="originals has 1"):
        explanation.save(tmp_path, originals=[np.zeros((8, 8))])
    with pytest.raises(ExplainError, match="Unknown class"):
        explanation.save(tmp_path, true_labels=["x", 0])
    with pytest.raises(ExplainError, match="Could not read the original scan"):
        explanation.picture(0, original=tmp_path / "missing.png")
