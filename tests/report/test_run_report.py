"""`neuroxai report`: one self-contained HTML page per run; sections without data say "not measured"."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil

from PIL import Image
from report_runs import SCAN

from neuroxai.cli import main
from neuroxai.report import SECTIONS, collect_report, render_report


def _section(html: str, name: str) -> str:
    start = html.index(f'<section id="{name}">')
    return html[start : html.index("</section>", start)]


def _images(html: str) -> list[str]:
    return re.findall(r'<img src="([^"]*)"', html)


def test_report_of_a_run_without_explanation_metrics_says_not_measured(tiny_runs, tmp_path, capsys):
    _, bare, _ = tiny_runs
    out = tmp_path / "bare.html"
    assert main(["report", str(bare), "--out", str(out), "--gallery", "1"]) == 0
    html = out.read_text(encoding="utf-8")
    assert "explanations: not measured" in capsys.readouterr().out
    for section, _ in SECTIONS:
        assert f'<section id="{section}">' in html
    assert "Not measured" in _section(html, "explanations") and "evaluate-xai" in _section(html, "explanations")
    assert "Not measured" not in _section(html, "accuracy") and "Not measured" not in _section(html, "confusion")
    assert "<script" not in html.lower()
    assert all(src.startswith("data:image/") for src in _images(html))  # self-contained: nothing fetched


def test_full_report_has_every_section_and_a_gallery_at_the_scans_resolution(tiny_runs):
    full, _, _ = tiny_runs
    data = collect_report(full, gallery=1)
    assert set(data.missing) == set()  # everything measured (the run has no temperature: said in the section)
    assert {g.true_class for g in data.gallery} == set(data.spec.class_names)  # every class
    assert {g.correct for g in data.gallery} == {True, False}  # right and wrong (an untrained model)
    assert all(g.scan_size == (SCAN, SCAN) and g.source.endswith(".png") for g in data.gallery)
    assert sum(g.outlined for g in data.gallery) >= 1  # tumour outlines where a mask exists
    picture = Image.open(io.BytesIO(data.gallery[0].picture))
    assert picture.width >= 2 * 256  # the 64 px scan enlarged 4x pixel for pixel, not the 32 px model input
    html = render_report(data)
    assert "Not measured" not in html
    assert "pointing game" in _section(html, "explanations") and "Zhang et al." in html
    assert "Temperature T = " in _section(html, "calibration")  # fitted on the validation split
    assert "Conformal prediction sets" in _section(html, "risk-coverage")
    for src in _images(html):  # every embedded image decodes
        head, payload = src.split(",", 1)
        assert head.endswith(";base64")
        Image.open(io.BytesIO(base64.b64decode(payload))).load()


def test_report_without_the_runs_data_still_renders(tiny_runs, tmp_path):
    _, bare, _ = tiny_runs
    data = collect_report(bare, data=tmp_path / "moved-away")
    assert set(data.missing) == {"explanations", "gallery"} and "moved-away" in data.missing["gallery"]
    assert data.calibration_source == "metrics.json"  # calibration needs no images: the run recorded it
    html = render_report(data)
    assert "Not measured" in _section(html, "gallery") and "Not measured" not in _section(html, "risk-coverage")


def test_calibration_of_an_older_run_is_measured_from_the_test_images(tiny_runs, tmp_path):
    _, bare, _ = tiny_runs
    old = tmp_path / "old-run"
    shutil.copytree(bare, old)
    metrics = json.loads((old / "metrics.json").read_text())
    del metrics["calibration"]  # written before runs recorded calibration
    (old / "metrics.json").write_text(json.dumps(metrics))
    data = collect_report(old, gallery=0)
    assert data.calibration is not None and "predicted for this report" in data.calibration_source
    assert data.calibration.metrics.n == sum(data.spec.data.counts["test"].values())
    assert "gallery" in data.missing
    assert collect_report(old, gallery=0, data=tmp_path / "gone").missing["calibration"].startswith("needs the test images")


def test_report_errors(tiny_runs, tmp_path, capsys):
    _, bare, _ = tiny_runs
    assert main(["report", str(tmp_path)]) == 2
    assert "is not a run directory" in capsys.readouterr().err
    other = tmp_path / "notes.html"
    other.write_text("my notes")
    assert main(["report", str(bare), "--out", str(other), "--gallery", "0"]) == 2
    assert other.read_text() == "my notes"  # never replaces a file neuroxai did not write


def test_in_memory_data_is_passed_as_a_dataset_as_the_demo_does(tiny_runs):
    from neuroxai.data import phantoms

    _, bare, _ = tiny_runs
    ds = phantoms(n_per_class=4, image_size=32, seed=1)  # cannot be re-read from a path: given directly
    data = collect_report(bare, dataset=ds, gallery=1)
    assert "gallery" not in data.missing and data.gallery
    assert all(g.source.startswith("test image #") and g.scan_size == (32, 32) for g in data.gallery)
    assert any(g.outlined for g in data.gallery)  # phantom masks outlined
