"""Fixtures of the report tests: a tiny demo-like run, and where the browser test's screenshot went."""

from __future__ import annotations

import pytest
from report_runs import make_runs

#: Paths of artefacts (screenshots) the tests kept, printed at the end of the run.
ARTEFACTS: list[str] = []


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory):
    """``(run_with_xai, run_without_xai, data_root)``."""
    return make_runs(tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="session")
def artefacts():
    """Append a path to have it printed in the test summary (a CI artefact)."""
    return ARTEFACTS


def pytest_terminal_summary(terminalreporter):
    for path in ARTEFACTS:
        terminalreporter.write_line(f"report test artefact: {path}")
