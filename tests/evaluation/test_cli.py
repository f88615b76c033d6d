"""`neuroxai evaluate-xai` end to end on a hand-built run directory."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def _run(argv: list[str]) -> int:
    """Parse and run only our subcommand."""
    from neuroxai.cli import _evaluate_xai

    parser = argparse.ArgumentParser(prog="neuroxai")
    sub = parser.add_subparsers(dest="command")
    for command in _evaluate_xai.COMMANDS:
        command.add_to(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def _write_run(run_dir, model, class_names):
    from neuroxai._io import write_json

    run_dir.mkdir(parents=True, exist_ok=True)
    model.save(run_dir / "model.keras")
    write_json(
        run_dir / "neuroxai.json",
        {
            "model": "tiny_cnn",
            "class_names": list(class_names),
            "input_shape": list(model.input_shape[1:]),
            "input_range": [0.0, 1.0],
            "target_layer": "last_conv",
        },
    )


def _write_folder(root, images, labels, masks, class_names):
    from PIL import Image

    for i, (img, lab, m) in enumerate(zip(images, labels, masks)):
        d = root / "Testing" / class_names[lab]
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray((img[..., 0] * 255).round().astype(np.uint8)).save(d / f"img{i:03d}.png")
        Image.fromarray(m.astype(np.uint8) * 255).save(d / f"img{i:03d}_mask.png")
    for i, name in enumerate(class_names):  # a few training images so the layout is complete
        d = root / "Training" / name
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray((images[i, ..., 0] * 255).astype(np.uint8)).save(d / f"train{i}.png")


def test_evaluate_xai_on_a_data_folder(tmp_path, trained_cnn, phantom_data, capsys):
    from xai_helpers import CLASS_NAMES

    from neuroxai.evaluation import XAIReport

    _, (x, y, m) = phantom_data
    run_dir = tmp_path / "run"
    _write_run(run_dir, trained_cnn, CLASS_NAMES)
    _write_folder(tmp_path / "data", x, y, m, CLASS_NAMES)
    rc = _run(
        ["evaluate-xai", str(run_dir), "--data", str(tmp_path / "data"), "--steps", "5", "--n-sanity", "8", "--no-progress"]
    )
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "pointing_game" in out and "sanity_passed" in out and "tumour reliance" in out
    report = XAIReport.from_dict(json.loads((run_dir / "xai_metrics.json").read_text()))
    s = report.summary()["gradcam"]
    assert report.settings.n_images == len(x) and report.settings.source["split"] == "test"
    assert s.n_excluded_no_mask == 12
    assert s.pointing_game >= 0.9 and s.sanity_passed is True
    assert report.faithfulness["gradcam"].steps == 5 and report.sanity["gradcam"].n_images == 8
    assert report.reliance is not None and report.reliance.n_scored > 0
    for name in ("localization", "deletion_insertion", "randomization", "reliance"):
        assert (run_dir / f"xai_{name}.png").stat().st_size > 0


def test_evaluate_xai_on_phantoms_json_and_out(tmp_path, capsys):
    from xai_helpers import build_cnn

    from neuroxai.data import PHANTOM_CLASSES

    model = build_cnn((32, 32, 1), num_classes=4)
    _write_run(tmp_path / "run", model, PHANTOM_CLASSES)
    out_dir = tmp_path / "metrics"
    rc = _run(
        [
            "evaluate-xai",
            str(tmp_path / "run"),
            "--phantoms",
            "12",
            "--n",
            "6",
            "--steps",
            "4",
            "--no-sanity",
            "--method",
            "gradcam",
            "--method",
            "saliency",
            "--out",
            str(out_dir),
            "--format",
            "json",
            "--no-progress",
        ]
    )
    result = json.loads(capsys.readouterr().out)
    assert rc == 0, result["errors"]
    assert result["methods"] == ["gradcam", "saliency"]
    assert result["settings"]["n_images"] == 6
    assert result["sanity"] == {} and set(result["faithfulness"]) == {"gradcam", "saliency"}
    assert (out_dir / "xai_metrics.json").is_file() and not (tmp_path / "run" / "xai_metrics.json").exists()


def test_evaluate_xai_metric_option_picks_metrics(tmp_path, trained_cnn, phantom_data, capsys):
    from xai_helpers import CLASS_NAMES

    from neuroxai.errors import UnknownMetricError

    _, (x, y, m) = phantom_data
    _write_run(tmp_path / "run", trained_cnn, CLASS_NAMES)
    _write_folder(tmp_path / "data", x, y, m, CLASS_NAMES)
    argv = ["evaluate-xai", str(tmp_path / "run"), "--data", str(tmp_path / "data"), "--format", "json", "--no-progress"]
    assert _run([*argv, "--metric", "reliance", "--metric", "localization"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["localization"]) == {"gradcam"} and result["reliance"]["n_scored"] > 0
    assert result["faithfulness"] == {} and result["sanity"] == {}
    assert set(result["settings"]["metrics"]) == {"reliance", "localization"}
    with pytest.raises(UnknownMetricError, match="Did you mean 'reliance'"):
        _run([*argv, "--metric", "relianc"])


def test_evaluate_xai_unknown_classes_is_a_clean_error(tmp_path, trained_cnn, phantom_data):
    from neuroxai.errors import DataError

    _, (x, y, m) = phantom_data
    _write_run(tmp_path / "run", trained_cnn, ["a", "b", "c"])
    _write_folder(tmp_path / "data", x[:6], y[:6], m[:6], ("glioma", "meningioma", "notumor"))
    with pytest.raises(DataError, match="does not know"):
        _run(["evaluate-xai", str(tmp_path / "run"), "--data", str(tmp_path / "data")])


def test_registered_in_the_neuroxai_command():
    from neuroxai import cli

    parser = cli.build_parser()
    args = parser.parse_args(
        ["evaluate-xai", "run", "--phantoms", "4", "--method", "gradcam", "--method", "saliency", "--metric", "reliance"]
    )
    assert args.method == ["gradcam", "saliency"] and args.phantoms == 4 and callable(args.func)
    assert args.metric == ["reliance"]
