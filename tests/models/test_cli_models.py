"""``neuroxai models`` in-process (autoload is off in the test session)."""

from __future__ import annotations

import json

from neuroxai.cli import main


def test_models_text_table(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:5] == ["NAME", "SOURCE", "INPUT", "RANGE", "PARAMS"]
    cnn = next(line for line in out if line.startswith("cnn "))
    assert "neuroxai" in cnn and "128x128x1" in cnn and "0..1" in cnn and "184,900" in cnn and "features" in cnn
    eff = next(line for line in out if line.startswith("efficientnetb0"))
    assert "224x224x3" in eff and "0..255" in eff and "top_activation" in eff


def test_models_json_pattern_and_no_params(capsys):
    assert main(["models", "eff*", "--format", "json", "--no-params"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["efficientnetb0"]
    assert rows[0]["source"] == "neuroxai" and rows[0]["input_shape"] == [224, 224, 3] and rows[0]["params"] is None


def test_models_no_match_and_plugins(capsys):
    assert main(["models", "resnet*"]) == 0
    assert "No model matches 'resnet*'. Available: cnn, efficientnetb0" in capsys.readouterr().out
    assert main(["models", "--plugins", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    builtin = next(r for r in rows if r["info"]["name"] == "neuroxai.models.builtin")
    assert builtin["models"] == ["cnn", "efficientnetb0"] and builtin["info"]["builtin"] is True
