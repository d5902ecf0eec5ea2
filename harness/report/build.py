"""``build_report``: the grid's jobs + the store → table.md, table.tex, table.csv and figures."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.report import figures
from harness.report.latex import latex
from harness.report.render import csv_text, markdown
from harness.report.table import ReportTable, assemble
from harness.spec.report import ReportSpec
from harness.spec.schema import JobSpec
from harness.store import Store


@dataclass(frozen=True)
class ReportResult:
    out_dir: Path
    table: ReportTable
    markdown: str
    files: tuple[Path, ...]


def _write_text(path: Path, text: str) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)  # a reader never sees half a table
    return path


def build_report(jobs: Sequence[JobSpec], report: ReportSpec, store: Store, grid_name: str,
                 out_dir: str | os.PathLike[str], *, with_figures: bool = True) -> ReportResult:
    """Write the report of ``jobs`` (a compiled grid) from what ``store`` holds into ``out_dir``.

    Works with any amount of results, none included: expected cells without a value are shown
    as missing, failed, running or blocked.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run_ids = {job.run_id for job in jobs}
    runs = store.runs(run_ids=run_ids, with_spec=False)
    metrics = store.metrics(run_ids=run_ids)
    table = assemble(jobs, report, runs, metrics, grid_name)
    made: list[Path] = []
    if with_figures:
        made += figures.scores(table, out)
        made += figures.curves(table, metrics, out)
        made += figures.resolution(table, out)
    text = markdown(table)
    pngs = [p.name for p in made if p.suffix == ".png"]
    if not with_figures:
        text += "\nFigures: not drawn (tables only).\n"
    else:
        text += "\n" + ("Figures: " + ", ".join(pngs) if pngs else "Figures: none yet (no measured values)") + "\n"
    files = [_write_text(out / "table.md", text), _write_text(out / "table.tex", latex(table)),
             _write_text(out / "table.csv", csv_text(table)), *made]
    return ReportResult(out, table, text, tuple(files))
