"""Pretrained models: shipped weights by name, checksums verified on every load, a model card, clear errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import neuroxai
from neuroxai.cli import main
from neuroxai.errors import ModelError
from neuroxai.models import (
    CARD_FILE,
    ModelCard,
    PretrainedModel,
    PretrainedRegistry,
    UnknownPretrainedError,
    file_sha256,
    list_pretrained,
)
from neuroxai.models import builtin as builtin_models

CARD = {
    "name": "tiny-test-v1",
    "summary": "a four-class test model (random weights)",
    "model": {"name": "tiny"},
    "classes": ["glioma", "meningioma", "notumor", "pituitary"],
    "input": {"shape": [16, 16, 1], "range": [0.0, 1.0]},
    "intended_use": "tests only; not for clinical use",
    "training_data": [{"name": "none", "licence": "CC0-1.0"}],
    "licence": "MIT",
}


def _commit_tiny_run(folder) -> None:
    """A finished run of a small untrained four-class model at 16 px (what a release ships, in miniature)."""
    import keras

    from neuroxai.runs import RunDirectory, RunSpec

    inputs = keras.Input((16, 16, 1), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dense(4, name="logits")(x)
    model = keras.Model(inputs, keras.layers.Activation("softmax", name="probabilities")(x), name="tiny")
    spec = RunSpec(model="tiny", class_names=tuple(CARD["classes"]), input_shape=(16, 16, 1), input_range=(0.0, 1.0))
    RunDirectory(folder).commit(model, spec, {"epoch": [1], "loss": [1.0]}, None)


@pytest.fixture()
def shipped(tmp_path, monkeypatch):
    """A run directory registered as a built-in pretrained model, as a release ships one (digests in the code)."""
    root = tmp_path / "pretrained"
    folder = root / "tiny-test-v1"
    _commit_tiny_run(folder)
    (folder / CARD_FILE).write_text(json.dumps(CARD))
    digests = {name: file_sha256(folder / name) for name in ("model.keras", "neuroxai.json", CARD_FILE)}
    monkeypatch.setattr(builtin_models, "PRETRAINED_DIR", root)
    monkeypatch.setattr(builtin_models, "BUILTIN_PRETRAINED", (("tiny-test-v1", CARD["summary"], digests),))
    return folder


def test_a_shipped_model_loads_by_name_like_a_run_directory(shipped):
    assert "tiny-test-v1" in list_pretrained() and list_pretrained("tiny*") == ["tiny-test-v1"]
    model = neuroxai.pretrained("tiny-test-v1")
    same = neuroxai.load(shipped)
    assert model.class_names == same.class_names == tuple(CARD["classes"]) and model.input_shape == (16, 16, 1)
    x = np.random.default_rng(0).random((3, 16, 16, 1)).astype(np.float32)
    np.testing.assert_array_equal(model.predict_batch(x), same.predict_batch(x))  # the same weights, the same graph
    explanation = neuroxai.Explainer(model, "gradcam").explain(x)
    assert explanation.maps.shape == (3, 16, 16)
    card = PretrainedRegistry().get("TINY-test-v1").card()  # names match case-insensitively
    assert isinstance(card, ModelCard) and card.classes == tuple(CARD["classes"]) and "not for clinical use" in card.intended_use


def test_unknown_names_list_the_available_ones(shipped):
    with pytest.raises(UnknownPretrainedError, match=r"Unknown pretrained model 'tiny-tset-v1'.*Available: .*tiny-test-v1"):
        neuroxai.pretrained("tiny-tset-v1")
    with pytest.raises(KeyError):  # an UnknownNameError is a KeyError too
        neuroxai.pretrained("nothing-like-it")


@pytest.mark.parametrize("damage", ["flip", "truncate", "remove", "card"])
def test_a_damaged_file_is_refused_before_loading(shipped, damage):
    target = shipped / (CARD_FILE if damage == "card" else "model.keras")
    if damage == "flip":
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0xFF
        target.write_bytes(bytes(data))
    elif damage == "truncate":
        target.write_bytes(target.read_bytes()[:100])
    elif damage == "remove":
        target.unlink()
    else:
        target.write_text(json.dumps({**CARD, "intended_use": "anything"}))
    expected = "is missing" if damage == "remove" else "does not match its checksum"
    with pytest.raises(ModelError, match=expected) as info:
        neuroxai.pretrained("tiny-test-v1")
    assert target.name in str(info.value) and "reinstall" in str(info.value)


def test_a_registration_without_checksums_is_refused():
    registry = PretrainedRegistry(populate=False)
    with pytest.raises(ModelError, match="no checksum for model.keras"):
        registry.register(PretrainedModel(name="x", folder=".", sha256={"neuroxai.json": "0"}, summary="x"))
    with pytest.raises(ModelError, match="expects a neuroxai.models.PretrainedModel"):
        registry.register("x")  # type: ignore[arg-type]


def test_a_plugin_ships_its_own_pretrained_model(shipped, tmp_path):
    from neuroxai import hookimpl

    folder = tmp_path / "plugin-weights"
    shutil.copytree(shipped, folder)
    digests = {name: file_sha256(folder / name) for name in ("model.keras", "neuroxai.json")}

    class Plugin:
        @hookimpl
        def neuroxai_register_pretrained(self, registry):
            registry.register(PretrainedModel(name="plugin-net", folder=str(folder), sha256=digests, summary="from a plugin"))

    registry = PretrainedRegistry(plugins=[Plugin()])
    assert {"plugin-net", "tiny-test-v1"} <= set(registry.names())
    assert registry.get("plugin-net").verified_folder() == folder


def test_the_command_line_takes_a_pretrained_name_where_it_takes_a_run(shipped, tmp_path, capsys, monkeypatch):
    from PIL import Image

    image = tmp_path / "scan.png"
    Image.fromarray(np.full((20, 20), 128, np.uint8)).save(image)
    installed = sorted((p.name, p.stat().st_mtime_ns) for p in shipped.iterdir())
    assert main(["models", "--pretrained"]) == 0
    assert "tiny-test-v1" in capsys.readouterr().out
    assert main(["predict", "--pretrained", "tiny-test-v1", str(image), "--no-progress"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].startswith("path,predicted") and rows[1].startswith(str(image))
    out = tmp_path / "explained"
    assert main(["explain", "--pretrained", "tiny-test-v1", str(image), "--out", str(out), "--no-progress"]) == 0
    assert (out / "scan.png").is_file() and (out / "predictions.csv").is_file()
    assert sorted((p.name, p.stat().st_mtime_ns) for p in shipped.iterdir()) == installed  # the package is read only
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["evaluate-xai", "--pretrained", "tiny-test-v1", "--phantoms", "8", "--metric", "localization"]) == 0
    assert (tmp_path / "tiny-test-v1-xai" / "xai_metrics.json").is_file()  # beside the user, not in the package
    assert sorted((p.name, p.stat().st_mtime_ns) for p in shipped.iterdir()) == installed

    assert main(["predict", "--pretrained", "nope", str(image)]) == 2
    assert "Unknown pretrained model 'nope'" in capsys.readouterr().err
    assert main(["report", str(shipped), "--pretrained", "tiny-test-v1"]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["predict", str(image)]) == 2  # a run directory and no input, or an input and no model
    assert "at least one input" in capsys.readouterr().err


@pytest.mark.parametrize("name", list_pretrained())
def test_every_shipped_model_is_whole_documented_and_small(name):
    item = PretrainedRegistry().get(name)
    assert set(item.sha256) >= {"model.keras", "neuroxai.json", CARD_FILE}
    folder = item.verified_folder()
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    assert size <= 5 * 1024 * 1024, f"{name}: {size} bytes, over the 5 MB budget for weights in the wheel"
    card = item.card()
    assert card.name == name and "not for clinical use" in card.intended_use.lower()
    assert all(d.get("licence") and d.get("attribution") for d in card.training_data)
    assert card.trained.get("command") and card.results
    predictor = neuroxai.pretrained(name)
    assert list(predictor.class_names) == list(card.classes) and predictor.ood is not None and predictor.calibration is not None
