"""Markdown and CSV renderings of a ReportTable (deterministic: golden-tested)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

from harness.report.cells import NOT_APPLICABLE, Cell
from harness.report.findings import claims_section, contrasts_section
from harness.report.significance import interval95
from harness.report.stats import NOISE_RULE
from harness.report.table import ReportTable

BASELINE_LABELS = {"chance": "chance", "blind": "blind prior"}
ALL_ROW = "all"  # the one row of a report without row factors


def _reasons(cell: Cell) -> str:
    return ", ".join(f"{count} {state}" for state, count in sorted(cell.states.items()))


def status_text(cell: Cell) -> str:
    """What a cell without any value says instead: failed, running, missing..."""
    if not cell.expected:
        return "not in grid"
    if cell.state == NOT_APPLICABLE and len(cell.states) == 1:
        return NOT_APPLICABLE
    if len(cell.states) == 1:
        state, count = next(iter(cell.states.items()))
        return f"{state} ({count})"
    return _reasons(cell)


def _number(cell: Cell) -> str:
    if not cell.metric.ranked and all(float(v).is_integer() for v in cell.values):
        return f"{cell.mean:g}"  # a count (answers written), not a score
    text = f"{cell.mean:.2f}"
    return text + (f" ± {cell.std:.2f}" if cell.std is not None else "")


def _count(cell: Cell) -> str:
    if cell.n == len(cell.expected):
        return f"(n={cell.n})"
    return f"(n={cell.n} of {len(cell.expected)}; {_reasons(cell)})"


def _signed(value: float | None) -> str:
    return "" if value is None else f"{value:+.2f}"


def _paper(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def header_columns(table: ReportTable) -> list[tuple[str, str, str]]:
    """(column, metric name, kind) in display order; kind ∈ value, paper, delta."""
    out = []
    for column in table.columns:
        for metric in table.metrics:
            out.append((column, metric.name, "value"))
            if table.has_reference(metric.name):
                out.append((column, metric.name, "paper"))
            if table.has_delta(metric.name):
                out.append((column, metric.name, "delta"))
    return out


def legend_lines(table: ReportTable, *, intervals: bool = True) -> list[str]:
    scales = sorted({m.scale for m in table.metrics})
    scaled = "" if scales in ([], [1.0]) else " (values × " + ", ".join(f"{s:g}" for s in scales) + ")"
    lower = [m.name for m in table.metrics if not m.higher_is_better]
    best = "Bold: best in its column" + (f" (lower is better for {', '.join(lower)})" if lower else "") + "."
    spread = ("[95 % confidence interval of the mean, t-based]" if intervals
              else "95 % intervals in table.md and table.csv")
    lines = [f"Mean ± std over seeds{scaled}; {spread}; n = seeds with a value. {best}", f"≈: {NOISE_RULE}."]
    if any(table.has_delta(m.name) for m in table.metrics):
        lines.append("paper: the published value; Δ = ours − paper (only for runs of the paper's setting: "
                     "paper-scale models on the real data).")
    elif any(table.has_reference(m.name) for m in table.metrics):
        lines.append("paper: the published value, for orientation only: these runs are not of the paper's setting "
                     "(tiny models or synthetic data), so no Δ is given; the rank agreement compares them.")
    if table.baselines:
        lines.append("chance / blind prior: the synthetic task's uniform guess and best text-only prior.")
    return lines


def _interval(cell: Cell) -> str:
    found = interval95(cell) if cell.metric.ranked else None  # a count has no interval worth showing
    return "" if found is None else f" [{found[0]:.2f}, {found[1]:.2f}]"


def _md_value(cell: Cell) -> str:
    if cell.mean is None:
        return status_text(cell)
    number = f"**{_number(cell)}**" if cell.best else _number(cell)
    return f"{number}{' ≈' if cell.near_best else ''}{_interval(cell)} {_count(cell)}"


def _md_row(values: list[str]) -> str:
    return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"


def baseline_rows(table: ReportTable, columns: list[tuple[str, str, str]]) -> list[tuple[str, list[str]]]:
    rows = []
    for kind, label in BASELINE_LABELS.items():
        values = []
        for column, metric, what in columns:
            value = table.baselines.get((column, metric), {}).get(kind)
            values.append(f"{value:.2f}" if what == "value" and value is not None else "")
        if any(values):
            rows.append((label, values))
    return rows


def row_values(table: ReportTable, row: str, columns: list[tuple[str, str, str]],
                value: Callable[[Cell], str]) -> list[str]:
    """One table row's entries: each measured value (formatted by ``value``), paper value or Δ."""
    out = []
    for column, metric, kind in columns:
        cell = table.cells[(row, column, metric)]
        out.append(value(cell) if kind == "value" else _paper(cell.paper) if kind == "paper" else _signed(cell.delta))
    return out


def markdown(table: ReportTable) -> str:
    spec = table.spec
    columns = header_columns(table)
    titles = {m.name: m for m in table.metrics}
    head = [table.row_title] + [
        table.title_of(titles[m], c) + ("" if kind == "value" else " paper" if kind == "paper" else " Δ")
        for c, m, kind in columns]
    lines = [f"# {spec.title or table.grid}", ""]
    source = f" · reproduces {spec.paper}" if spec.paper else ""
    expected = len(table.cells) - table.not_applicable
    na = f" ({table.not_applicable} n/a: no run can record them)" if table.not_applicable else ""
    lines += [f"Grid `{table.grid}`{source} · {table.measured} of {expected} cells measured{na}", ""]
    lines += [_md_row(head), "|" + "|".join([" --- "] + [" ---: "] * len(columns)) + "|"]
    for row in table.rows:
        lines.append(_md_row([row or ALL_ROW, *row_values(table, row, columns, _md_value)]))
    for label, values in baseline_rows(table, columns):
        lines.append(_md_row([f"*{label}*", *values]))
    lines += ["", *legend_lines(table)]
    if table.agreements:
        lines += ["", "Rank agreement with the paper (Kendall τ over the cells that have both values):"]
        lines += [f"- {_agreement_text(table, a)}" for a in table.agreements]
    lines += claims_section(table) + contrasts_section(table)
    if table.notes:
        lines += ["", "Notes:", *[f"- {note}" for note in table.notes]]
    return "\n".join(lines) + "\n"


def _agreement_text(table: ReportTable, agreement) -> str:  # type: ignore[no-untyped-def]
    metric = next(m for m in table.metrics if m.name == agreement.metric)
    title = table.title_of(metric, agreement.column)
    if agreement.tau is None:
        reason = "undefined (tied values)" if agreement.n >= 3 else "not computed"
        return f"{title}: τ {reason}, n = {agreement.n} with both values (needs ≥ 3)"
    p_value = f"p = {agreement.p_value:.3f}" if agreement.p_value is not None else "p undefined"
    return f"{title}: τ = {agreement.tau:+.2f} ({p_value}, n = {agreement.n})"


CSV_FIELDS = ["row", "column", "metric", "label", "task", "split", "store_metric", "mean", "std", "n", "ci95_low",
              "ci95_high", "expected", "state", "states", "paper", "paper_setting", "delta", "best",
              "within_noise_of_best", "values"]


def csv_text(table: ReportTable) -> str:
    """One line per cell (and per baseline), machine-readable."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for cell in table.cells.values():
        m = cell.metric
        ci = interval95(cell)
        writer.writerow({
            "row": cell.row, "column": cell.column, "metric": m.name, "label": m.label or m.name, "task": m.task,
            "split": m.split or "", "store_metric": m.metric, "mean": _opt(cell.mean), "std": _opt(cell.std),
            "n": cell.n, "ci95_low": _opt(ci[0] if ci else None), "ci95_high": _opt(ci[1] if ci else None),
            "expected": len(cell.expected), "state": cell.state, "states": _reasons(cell),
            "paper": _opt(cell.paper), "paper_setting": cell.paper_setting, "delta": _opt(cell.delta),
            "best": cell.best, "within_noise_of_best": cell.near_best,
            "values": ";".join(f"{v:.6g}" for v in cell.values)})
    for (column, metric), found in table.baselines.items():
        for kind, value in sorted(found.items()):
            writer.writerow({"row": f"({BASELINE_LABELS.get(kind, kind)})", "column": column, "metric": metric,
                             "mean": _opt(value), "state": "baseline"})
    return out.getvalue()


def _opt(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"
