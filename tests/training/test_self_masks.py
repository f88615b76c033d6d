"""Fine-tuning on data without masks: masks from the model's own maps keep its evidence where it was."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

_EVALUATION = str(Path(__file__).resolve().parents[1] / "evaluation")
if _EVALUATION not in sys.path:  # the blob phantoms and quick CNN of the evaluation tests
    sys.path.append(_EVALUATION)

from xai_helpers import CLASS_NAMES, SIZE, make_phantoms, train_cnn  # noqa: E402

from neuroxai.errors import DataError, OutputError  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def unmasked(tmp_path_factory):
    """Blob phantoms as class folders without masks, their true masks (kept aside), and a CNN trained on them."""
    root = tmp_path_factory.mktemp("self-masks") / "data"
    x, y, masks = make_phantoms(24, seed=4)
    truth = {}
    for i, (img, label) in enumerate(zip(x, y)):
        path = root / CLASS_NAMES[label] / f"s{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.rint(img[..., 0] * 255).astype(np.uint8)).save(path)
        truth[str(path)] = masks[i]
    return root, truth, train_cnn(x, y, epochs=12)


def test_tumour_images_the_model_gets_right_get_its_own_map_as_mask(unmasked, tmp_path):
    from neuroxai import Dataset, Explainer
    from neuroxai.runs import Predictor
    from neuroxai.training import self_masks

    root, truth, model = unmasked
    ds = Dataset(root, seed=3, progress=False)
    assert not ds.has_masks
    predictor = Predictor(model, CLASS_NAMES, (SIZE, SIZE, 1), (0.0, 1.0))
    data, summary = self_masks(ds, Explainer(predictor, "gradcam"), tmp_path / "self", progress=False)

    assert summary.images == len(ds) and summary.no_tumour == 24  # every image listed; notumor never masked
    assert summary.masks + summary.not_confident == 48 and summary.masks >= 40  # the CNN gets most blobs right
    assert data.has_masks and data.counts() == ds.counts()  # the same images in the same splits
    inside, chance = [], []
    for split in ("train", "val", "test"):
        for path, mask, label in zip(data.paths(split), data.mask_paths(split), data.labels(split)):
            if CLASS_NAMES[int(label)] == "notumor":
                assert mask is None
            if mask is not None:
                own = np.asarray(Image.open(mask)) > 0
                assert own.shape == truth[path].shape and own.any()
                inside.append(float((own & truth[path]).sum() / own.sum()))
                chance.append(float(truth[path].mean()))  # what a mask placed at random would hold
    # the model's own maps sit on the blobs: its masks hold far more tumour than a mask placed at random (a coarse
    # map thresholded at half its range is larger than the small blobs, so not all of it is tumour)
    assert np.mean(inside) > 5 * np.mean(chance), (
        f"self-made masks: {np.mean(inside):.2f} on the tumour, chance {np.mean(chance):.3f}"
    )


def test_guided_fine_tuning_runs_on_the_self_made_masks(unmasked, tmp_path):
    from neuroxai import Dataset, Explainer, Trainer
    from neuroxai.runs import Predictor
    from neuroxai.training import MaskGuidance, self_masks

    root, _, model = unmasked
    predictor = Predictor(model, CLASS_NAMES, (SIZE, SIZE, 1), (0.0, 1.0))
    data, _ = self_masks(Dataset(root, progress=False), Explainer(predictor, "gradcam"), tmp_path / "self", progress=False)
    trainer = Trainer(model, input_range=(0.0, 1.0), epochs=1, guidance=MaskGuidance("cam", weight=2.0), progress=False)
    trainer.fit(data)
    assert "guidance_loss" in trainer.history_ and np.isfinite(trainer.history_["guidance_loss"][0])


def test_bad_settings_and_outputs_are_refused(unmasked, tmp_path):
    from neuroxai import Dataset, Explainer
    from neuroxai.runs import Predictor
    from neuroxai.training import self_masks

    root, _, model = unmasked
    ds = Dataset(root, progress=False)
    explainer = Explainer(Predictor(model, CLASS_NAMES, (SIZE, SIZE, 1), (0.0, 1.0)), "gradcam")
    with pytest.raises(DataError, match="threshold"):
        self_masks(ds, explainer, tmp_path / "a", threshold=1.0, progress=False)
    with pytest.raises(OutputError):
        self_masks(ds, explainer, root / "masks-here", progress=False)  # never inside the data
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("someone's file")
    with pytest.raises(OutputError):
        self_masks(ds, explainer, foreign, progress=False)
    other = Explainer(Predictor(model, ("a", "b", "c"), (SIZE, SIZE, 1), (0.0, 1.0)), "gradcam")
    with pytest.raises(DataError, match="does not know the classes"):
        self_masks(ds, other, tmp_path / "b", progress=False)
