"""Golden Markdown and LaTeX tables from a fixed store.

Re-record after an intended change of the rendering, then review the diff of golden/:

    HARNESS_RERECORD=1 .venv/bin/pytest tests/report/test_report_golden.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from report_fixtures import fill_text_store, golden_dir, text_jobs, text_report

from harness.report import build_report
from harness.store import Store

RERECORD = os.environ.get("HARNESS_RERECORD") == "1"


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("golden")
    store = Store(root)
    jobs = text_jobs()
    fill_text_store(store, jobs)
    build_report(jobs, text_report(), store, "demo", root / "report", with_figures=False)
    return root / "report"


@pytest.mark.parametrize("name", ["table.md", "table.tex", "table.csv"])
def test_rendered_table_matches_golden(report_dir: Path, name: str) -> None:
    produced = (report_dir / name).read_text(encoding="utf-8")
    golden = golden_dir() / name
    if RERECORD:
        golden.write_text(produced, encoding="utf-8")
    assert golden.exists(), f"no golden file {golden}; record it with HARNESS_RERECORD=1"
    assert produced == golden.read_text(encoding="utf-8"), f"{name} differs from {golden} (re-record if intended)"
