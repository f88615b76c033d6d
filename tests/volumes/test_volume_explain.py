"""Explanation volumes: the heatmap on the scan's own grid and affine, its peak on the tumour, the montage."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from volume_helpers import AFFINE, EMPTY, SLICE, fixed_window, phantom_stack, to_source, write_phantom_nifti

from neuroxai.errors import ExplainError

pytestmark = pytest.mark.slow
GLIOMA, NOTUMOR = 0, 2


def _off_centre_glioma(seed: int = 11):
    """A volume of no-tumour slices and one glioma slice whose tumour sits well away from the centre."""
    for s in range(seed, seed + 50):
        labels = [EMPTY, NOTUMOR, NOTUMOR, GLIOMA, NOTUMOR, NOTUMOR, EMPTY, EMPTY]
        stack, masks = phantom_stack(labels, seed=s)
        rows, cols = np.nonzero(masks[3])
        c = (SLICE - 1) / 2
        if abs(rows.mean() - c) > 7 and abs(cols.mean() - c) > 7:  # a mirrored map could not land on it
            return stack, masks
    raise AssertionError("no off-centre phantom found")


@pytest.fixture(scope="module")
def glioma_volume(tmp_path_factory):
    from neuroxai.data import read_volume

    stack, masks = _off_centre_glioma()
    path = tmp_path_factory.mktemp("vol") / "case7.nii.gz"
    write_phantom_nifti(path, stack)
    return read_volume(path, window=fixed_window()), stack, masks


def _dilate(mask: np.ndarray, steps: int) -> np.ndarray:
    out = mask.copy()
    for _ in range(steps):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        out = grown
    return out


def test_heatmap_volume_has_the_inputs_grid_and_affine_and_peaks_on_the_tumour(predictor, glioma_volume, tmp_path):
    import nibabel as nib

    from neuroxai.explain import Explainer
    from neuroxai.volumes import explain_volume

    volume, stack, masks = glioma_volume
    assert np.array_equal(volume.slices_uint8(), np.rint(stack * 255).astype(np.uint8))  # the model sees the phantoms
    # one tumour slice: rule "top-k" with its evidence alone (rule "consistent" needs three adjacent slices)
    result = explain_volume(Explainer(predictor, "gradcam"), volume, rule="top-k", top_k=1)
    assert result.prediction.answer == "glioma" and result.target == "glioma"
    assert result.heatmap.shape == (8, SLICE, SLICE) and result.heatmap.dtype == np.float32
    assert not result.heatmap[[0, 6, 7]].any()  # skipped slices (no brain) stay zero
    assert 0 < result.heatmap.max() <= 1

    files = result.save(tmp_path / "out")
    img = nib.load(files.heatmap)
    assert files.heatmap.endswith("case7_heatmap.nii.gz")
    assert img.shape == (SLICE, 8, SLICE) and np.allclose(img.affine, AFFINE)  # the input's shape and affine
    data = np.asarray(img.dataobj)
    peak = np.unravel_index(int(np.argmax(data)), data.shape)
    tumour = to_source(np.stack([_dilate(m, 2) for m in masks]))  # the tumour where the input file has it
    assert tumour[peak], f"heatmap peak at source voxel {peak} is not on the tumour"
    assert peak[1] == 3  # source axis j is the slice axis: the glioma slice


def test_montage_shows_the_slices_that_carried_the_decision(predictor, glioma_volume, tmp_path):
    from neuroxai.explain import Explainer
    from neuroxai.volumes import explain_volume, predict_volume

    volume, _, _ = glioma_volume
    pred = predict_volume(predictor, volume, rule="top-k", top_k=1)
    assert pred.carried_by == (3,)  # the glioma slice carried the answer
    result = explain_volume(Explainer(predictor, "gradcam"), volume, prediction=pred)
    files = result.save(tmp_path, name="scan")
    assert files.montage is not None and files.montage.endswith("scan_montage.png")
    with Image.open(files.montage) as png:
        assert "volume answer glioma" in png.text["Title"] and "not a diagnosis" in png.text["Title"]
        one = np.asarray(png)
    two = result.montage(slices=(3, 4))
    assert two is not None and one.shape[1] == two.shape[1] and two.shape[0] > 1.8 * one.shape[0]  # a row per slice
    with pytest.raises(ExplainError, match="not classified"):
        result.montage(slices=(0,))


def test_target_weighting_and_a_foreign_prediction(predictor, glioma_volume, tmp_path):
    from neuroxai.explain import Explainer
    from neuroxai.volumes import explain_volume, predict_volume

    volume, _, _ = glioma_volume
    explainer = Explainer(predictor, "gradcam")
    plain = explain_volume(explainer, volume, target="notumor", weighting="none")
    assert plain.target == "notumor" and set(plain.explanation.target_names) == {"notumor"}
    brain = list(plain.prediction.slices)
    assert (plain.heatmap[brain].max(axis=(1, 2)) > 0.9).all()  # each map at its own scale (resized back to 48 px)
    weighted = explain_volume(explainer, volume, target=2)
    p = plain.prediction.probabilities[:, 2]
    assert np.allclose(weighted.heatmap[brain], plain.heatmap[brain] * p[:, None, None], atol=1e-5)  # map x p(target)

    other = predict_volume(predictor, volume)
    from dataclasses import replace

    with pytest.raises(ExplainError, match="not of"):
        explain_volume(explainer, volume, prediction=replace(other, source="elsewhere.nii.gz"))
    with pytest.raises(ExplainError, match="Unknown target"):
        explain_volume(explainer, volume, target="astrocytoma")
    with pytest.raises(ExplainError, match="weighting"):
        explain_volume(explainer, volume, weighting="sum")
