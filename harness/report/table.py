"""The report table: cells with best/noise marks, baselines, rank agreement and notes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from harness.report.cells import NOT_APPLICABLE, Cell, baselines, build_cells
from harness.report.claims import Verdict, judge
from harness.report.significance import Contrast, adjust, contrast
from harness.report.stats import RankAgreement, kendall, mark_best, noise_notes
from harness.spec.report import ReportMetric, ReportSpec
from harness.spec.schema import JobSpec

ALL_COLUMNS = "all columns"


@dataclass
class ReportTable:
    grid: str
    spec: ReportSpec
    rows: list[str]
    columns: list[str]
    metrics: tuple[ReportMetric, ...]
    cells: dict[tuple[str, str, str], Cell]
    baselines: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)
    agreements: list[RankAgreement] = field(default_factory=list)
    # Each row against report.baseline, one Holm family per (column, metric).
    contrasts: list[Contrast] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def column_cells(self, column: str, metric: str) -> list[Cell]:
        return [self.cells[(row, column, metric)] for row in self.rows]

    def has_reference(self, metric: str) -> bool:
        return any(c.paper is not None for (_, _, m), c in self.cells.items() if m == metric)

    def has_delta(self, metric: str) -> bool:
        """Whether some cell of ``metric`` is of the paper's setting and has a paper value."""
        return any(c.paper is not None and c.paper_setting for (_, _, m), c in self.cells.items() if m == metric)

    def title_of(self, metric: ReportMetric, column: str) -> str:
        base = metric.label or metric.name
        if not column:
            return base
        return f"{base} ({self.spec.column_title} {column})" if self.spec.column_title else f"{base} ({column})"

    @property
    def row_title(self) -> str:
        return self.spec.row_title or (" / ".join(self.spec.rows) if self.spec.rows else "cell")

    @property
    def measured(self) -> int:
        return sum(1 for c in self.cells.values() if c.mean is not None)

    @property
    def not_applicable(self) -> int:
        """Cells no run can fill by design (see cells.NOT_APPLICABLE): not counted as expected."""
        return sum(1 for c in self.cells.values() if c.state == NOT_APPLICABLE)


def assemble(jobs: Sequence[JobSpec], report: ReportSpec, runs: pd.DataFrame, metrics: pd.DataFrame,
             grid: str) -> ReportTable:
    """Everything the renderers need, from the grid's jobs and the store's frames."""
    status = dict(zip(runs["run_id"], runs["status"], strict=True)) if not runs.empty else {}
    rows, columns, chosen, cells = build_cells(jobs, report, status, metrics)
    table = ReportTable(grid, report, rows, columns, chosen, cells)
    table.baselines = baselines(metrics, cells, columns, chosen) if not metrics.empty else {}
    for metric in (m for m in chosen if m.ranked):
        agreements = []
        for column in columns:
            group = table.column_cells(column, metric.name)
            best = mark_best(group)
            if best is not None:
                table.notes.extend(noise_notes(best, group, table.title_of(metric, column)))
            if report.baseline in rows:
                base = table.cells[(report.baseline, column, metric.name)]
                found = [c for c in (contrast(cell, base) for cell in group if cell is not base) if c is not None]
                table.contrasts.extend(adjust(found))
            agreements.append(kendall(column, metric.name, group))
        if len(columns) > 1:  # every (row, column) cell ranked together, e.g. resolutions × encoders
            pooled = [c for (_, _, m), c in cells.items() if m == metric.name]
            agreements = [a for a in agreements if a is not None and a.tau is not None]
            agreements.append(kendall(ALL_COLUMNS, metric.name, pooled))
        table.agreements.extend(a for a in agreements if a is not None)
    names = [m.name for m in chosen if m.ranked]  # a claim with no metrics is judged on every score
    by_name = {m.name: m for m in chosen}

    def lookup(r: str, c: str, m: str) -> Cell:
        # A claim may name rows that --only left out of this table: they are "not in grid", never a KeyError.
        found = cells.get((r, c, m))
        return found if found is not None else Cell(row=r, column=c, metric=by_name[m], levels={}, expected=())

    table.verdicts = [judge(claim, report.baseline, rows, columns, names, lookup) for claim in report.claims]
    table.notes.extend(_split_notes(table, metrics))
    table.notes.extend(_not_applicable_notes(table))
    return table


def _not_applicable_notes(table: ReportTable) -> list[str]:
    notes = []
    for metric in table.metrics:
        rows = [c.row for (_, _, m), c in table.cells.items() if m == metric.name and c.state == NOT_APPLICABLE]
        if rows:
            notes.append(f"{metric.label or metric.name}: n/a for {', '.join(dict.fromkeys(rows))}: its "
                         "pre-training has no objective that scores image-text pairs (zero-shot retrieval ranks "
                         "by the ITM head), so no run records it; the paper leaves these cells blank too.")
    return notes


def _split_notes(table: ReportTable, metrics: pd.DataFrame) -> list[str]:
    """Say so when finished runs recorded a metric only on other splits than the report asks."""
    notes = []
    for metric in table.metrics:
        cells = [c for (_, _, m), c in table.cells.items() if m == metric.name and c.states.get("no value")]
        if not cells or metrics.empty:
            continue
        run_ids = {r for c in cells for r in c.expected}
        mine = metrics[metrics["run_id"].isin(run_ids) & (metrics["metric"] == metric.metric)]
        splits = sorted(set(mine["split"].dropna()))
        found = f"on split(s) {', '.join(splits)}" if splits else "not at all"
        wanted = f"split '{metric.split}'" if metric.split else "the task's first evaluation split"
        notes.append(f"{metric.label or metric.name}: finished runs recorded {metric.metric} {found}; the report "
                     f"asks for {wanted}.")
    return notes
