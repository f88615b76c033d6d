"""The report in a real browser: headless Chromium loads it without console errors, every image decodes, every
section is there, nothing overflows a laptop screen, and it prints. The first screen is kept as a screenshot."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from cdp_chromium import Chromium, find_chromium

from neuroxai.report import SECTIONS, write_report

PAGE_FACTS = """JSON.stringify({
  images: Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete, w: i.naturalWidth, h: i.naturalHeight})),
  sections: Array.from(document.querySelectorAll('section[id]')).map(s => s.id),
  notMeasured: Array.from(document.querySelectorAll('section[id]')).filter(s => s.querySelector('.not-measured')).map(s => s.id),
  title: document.title,
  scrollWidth: document.documentElement.scrollWidth,
  external: Array.from(document.querySelectorAll('[src],[href]')).map(e => e.getAttribute('src') || e.getAttribute('href'))
    .filter(u => !u.startsWith('data:') && !u.startsWith('#'))
})"""


def _artefact_dir() -> Path:
    folder = Path(os.environ.get("NEUROXAI_ARTIFACTS") or Path(tempfile.gettempdir()) / "neuroxai-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.slow
def test_report_in_headless_chromium(tiny_runs, tmp_path, artefacts):
    exe = find_chromium()
    if exe is None:
        pytest.skip(
            "no Chromium browser found: install Debian's `chromium` package (apt-get install chromium; .ci/run does "
            "where apt-get works) or set NEUROXAI_CHROMIUM"
        )
    full, _, _ = tiny_runs
    page = write_report(full, tmp_path / "report.html", gallery=1)
    with Chromium(exe, width=1280, height=800) as browser:
        result = browser.open(page, PAGE_FACTS)
        pdf = browser.send("Page.printToPDF", {"printBackground": False})["data"]
    shot = _artefact_dir() / "report-first-screen.png"
    shot.write_bytes(result.screenshot)
    artefacts.append(str(shot))
    print(f"first screen of the report: {shot}")

    facts = json.loads(result.value)
    assert result.errors == []  # no console error, no failed load
    assert facts["title"].startswith("neuroxai report: cnn")
    assert facts["sections"][: len(SECTIONS)] == [s for s, _ in SECTIONS]
    assert facts["notMeasured"] == []  # this run has everything
    assert facts["external"] == []  # self-contained: no network
    assert len(facts["images"]) >= 8
    bad = [i["alt"] for i in facts["images"] if not (i["complete"] and i["w"] > 0 and i["h"] > 0)]
    assert bad == []  # every image decodes
    assert facts["scrollWidth"] <= 1280  # fits a laptop screen: no sideways scrolling
    from PIL import Image

    assert Image.open(shot).size == (1280, 800)
    assert len(pdf) > 1000  # it prints (base64 of a PDF)
