"""A calibrated run end to end: fitted in Trainer.fit, stored in the spec, applied by load(); predict/evaluate/calibrate."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from neuroxai.cli import main
from numerics import forward_tol

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from neuroxai.data import write_phantoms

    return write_phantoms(tmp_path_factory.mktemp("calibrated") / "data", n_per_class=10, image_size=32, seed=5)


@pytest.fixture(scope="module")
def fitted(data_dir, tmp_path_factory):
    from neuroxai import Dataset, Trainer

    ds = Dataset(data_dir, val_fraction=0.4, seed=2, progress=False)  # 12 validation images: `calibrate` needs at least 10
    out = tmp_path_factory.mktemp("runs") / "run"
    trainer = Trainer("cnn", epochs=2, image_size=32, batch_size=8, progress=False, seed=2).fit(ds, out_dir=out)
    return trainer, ds, out


def test_fit_calibrates_on_the_validation_split_and_the_spec_keeps_it(fitted):
    from neuroxai.runs import RunDirectory

    trainer, ds, out = fitted
    cal = trainer.calibration_
    assert cal is not None and cal.split == "val" and cal.n == len(ds.labels("val"))
    assert cal.temperature > 0 and cal.nll_after <= cal.nll_before + 1e-9  # the fit never makes validation NLL worse
    assert len(cal.lac_scores) == cal.n
    assert RunDirectory(out).read_spec().calibration == cal
    saved = json.loads((out / "metrics.json").read_text())["calibration"]
    assert saved["temperature"] == cal.temperature and [c["method"] for c in saved["metrics"]["conformal"]] == ["lac", "aps"]


def test_load_applies_the_temperature_and_keeps_the_raw_probabilities(fitted, data_dir):
    import neuroxai
    from neuroxai.runs import apply_temperature

    trainer, _, out = fitted
    predictor = neuroxai.load(out)
    assert predictor.temperature == trainer.calibration_.temperature
    files = sorted(str(p) for p in (data_dir / "Testing").rglob("*.png") if "_mask" not in p.name)[:6]
    raw = predictor.predict(files, calibrated=False)
    calibrated = predictor.predict(files)
    # probabilities (<= 1): the predictor scales the logits in its graph, apply_temperature the log-probabilities
    np.testing.assert_allclose(calibrated, apply_temperature(raw, predictor.temperature), atol=forward_tol(1.0))
    np.testing.assert_array_equal(calibrated.argmax(axis=1), raw.argmax(axis=1))
    if abs(predictor.temperature - 1.0) > 1e-3:
        assert not np.allclose(calibrated, raw, atol=1e-6)
    # the trainer predicts the same, through its own pipeline and batches
    np.testing.assert_allclose(trainer.predict_proba(files), calibrated, atol=forward_tol(1.0))
    proba, sets = predictor.predict_sets(files, coverage=0.8)
    assert sets.dtype == bool and sets.shape == proba.shape
    tta = predictor.predict(files, tta=3)
    assert tta.shape == raw.shape and np.allclose(tta.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(tta, predictor.predict(files, tta=3))  # MC-dropout masks come from fixed seeds


def test_a_model_without_calibration_refuses_prediction_sets_with_the_fix(fitted, tmp_path):
    import neuroxai
    from neuroxai.errors import ModelError

    _, _, out = fitted
    bare = tmp_path / "bare.keras"
    bare.write_bytes((out / "model.keras").read_bytes())
    predictor = neuroxai.load(bare)
    assert predictor.calibration is None and predictor.temperature is None
    with pytest.raises(ModelError, match="neuroxai calibrate"):
        predictor.conformal_threshold(0.9)


def test_predict_writes_referral_and_prediction_set_columns(fitted, data_dir, capsys):
    import neuroxai

    _, _, out = fitted
    folder = data_dir / "Testing" / "glioma"
    capsys.readouterr()
    rc = main(
        ["predict", str(out), str(folder), "--refer-below", "0.9", "--coverage", "0.8", "--conformal", "aps", "--no-progress"]
    )
    assert rc == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    names = neuroxai.load(out).class_names
    assert rows and list(rows[0])[-2:] == ["referred", "set"]
    for row in rows:
        assert row["referred"] == ("yes" if float(row["confidence"]) < 0.9 else "no")  # refers only under P
        members = [m for m in row["set"].split("|") if m]
        assert set(members) <= set(names)
    capsys.readouterr()
    assert main(["predict", str(out), str(folder), "--tta", "2", "--no-progress"]) == 0
    assert "referred" not in capsys.readouterr().out.splitlines()[0]


def test_prediction_sets_are_refused_with_tta(fitted, data_dir, capsys):
    _, _, out = fitted
    capsys.readouterr()
    assert main(["predict", str(out), str(data_dir / "Testing"), "--coverage", "0.9", "--tta", "2", "--no-progress"]) != 0
    captured = capsys.readouterr()
    assert "--coverage cannot be combined with --tta" in captured.err and captured.out == ""


def test_calibrate_adds_calibration_to_a_run_trained_without_it(fitted, data_dir, tmp_path, capsys):
    import shutil

    from neuroxai.runs import RunDirectory

    trainer, _, out = fitted
    old = tmp_path / "old-run"
    shutil.copytree(out, old)
    spec = json.loads((old / "neuroxai.json").read_text())
    del spec["calibration"], spec["ood"]
    (old / "neuroxai.json").write_text(json.dumps(spec))
    metrics = json.loads((old / "metrics.json").read_text())
    del metrics["calibration"]
    (old / "metrics.json").write_text(json.dumps(metrics))

    capsys.readouterr()
    assert main(["evaluate", str(old), "--data", str(data_dir), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "fitted one on" in captured.err and "ECE" in captured.out and "LAC sets" in captured.out
    assert RunDirectory(old).read_spec().calibration is None  # evaluate fits in memory only

    assert main(["calibrate", str(old), "--data", str(data_dir), "--no-progress"]) == 0
    stored = RunDirectory(old).read_spec().calibration
    assert stored is not None and stored.temperature == pytest.approx(trainer.calibration_.temperature, rel=1e-6)
    assert json.loads((old / "metrics.json").read_text())["calibration"]["temperature"] == stored.temperature
    ood = RunDirectory(old).read_spec().ood  # and the out-of-distribution score, fitted as Trainer.fit fits it
    assert ood is not None and ood.n_fit == trainer.ood_.n_fit and ood.means == trainer.ood_.means
    assert ood.threshold == pytest.approx(trainer.ood_.threshold, rel=1e-5)  # the same images through the same model
    assert "Out-of-distribution score fitted on" in capsys.readouterr().out


def test_fit_stores_an_out_of_distribution_score_and_load_applies_it(fitted, data_dir):
    import neuroxai
    from neuroxai.runs import RunDirectory

    trainer, ds, out = fitted
    ood = trainer.ood_
    assert ood is not None and ood.split == "val" and ood.n_fit == len(ds.labels("train"))
    assert ood.n_threshold == len(ds.labels("val")) and ood.flagged <= ood.flag_rate
    assert RunDirectory(out).read_spec().ood == ood
    predictor = neuroxai.load(out)
    files = sorted(str(p) for p in (data_dir / "Testing").rglob("*.png") if "_mask" not in p.name)
    x = predictor.preprocess(files)
    proba, scores = predictor.predict_with_ood(x)
    # the feature model is a second compiled graph over the same weights: float32 outputs agree to rounding
    np.testing.assert_allclose(proba, predictor.predict_batch(x), atol=1e-6)
    np.testing.assert_array_equal(scores, predictor.ood_scores(files))
    noise = np.random.default_rng(0).random((len(files), *predictor.input_shape)).astype(np.float32)
    _, noise_scores = predictor.predict_with_ood(noise)
    # images of no brain at all lie far outside the phantoms' features: every one above every phantom
    assert noise_scores.min() > scores.max() and predictor.ood.flags(noise_scores).all()


def test_predict_marks_images_unlike_the_training_data(fitted, data_dir, tmp_path, capsys):
    from PIL import Image

    _, _, out = fitted
    folder = tmp_path / "mixed"
    folder.mkdir()
    for path in sorted((data_dir / "Testing" / "glioma").glob("*.png"))[:2]:
        if "_mask" not in path.name:
            (folder / path.name).write_bytes(path.read_bytes())
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(folder / "photo.png")
    capsys.readouterr()
    assert main(["predict", str(out), str(folder), "--no-progress"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert list(rows[0])[-2:] == ["ood_score", "ood"]  # after the class probabilities
    by_name = {r["path"].rsplit("/", 1)[-1]: r for r in rows}
    assert by_name["photo.png"]["ood"] == "yes" and float(by_name["photo.png"]["ood_score"]) > 1
    assert all(r["ood"] == "no" for n, r in by_name.items() if n != "photo.png")


def test_a_run_without_a_score_says_how_to_get_one(fitted, tmp_path):
    import neuroxai
    from neuroxai.errors import ModelError

    _, _, out = fitted
    bare = tmp_path / "bare.keras"
    bare.write_bytes((out / "model.keras").read_bytes())
    predictor = neuroxai.load(bare)
    assert predictor.ood is None and predictor.predict_with_ood(np.zeros((1, *predictor.input_shape), np.float32))[1] is None
    with pytest.raises(ModelError, match="neuroxai calibrate"):
        predictor.ood_scores(np.zeros((1, *predictor.input_shape), np.float32))
