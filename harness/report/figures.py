"""Figures of a report (matplotlib, Agg backend), each written as PNG and PDF:

- ``scores``: per metric a dot plot — each seed as a small point, the mean with its 95 % interval,
  on an axis zoomed to the data (not from 0). The paper's values are markers only where they exist:
  on the same axis for runs of the paper's setting, else on a separate top axis (its own scale: a
  synthetic score and a VQAv2 score are not comparable, their ranks are).
- ``curves``: training loss per cell, mean over seeds with a ±1 std band, distinct colours and dashes.
- ``resolution``: the paper's layout — VQA score against fine-tuning resolution, one line per encoder.
A figure with nothing to show is not written.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pandas as pd

from harness.report.cells import Cell
from harness.report.render import BASELINE_LABELS
from harness.report.significance import interval95
from harness.report.table import ReportTable

# Fixed metadata keeps re-rendered files byte-stable (no creation date).
_PNG_META = {"Software": None}
_PDF_META = {"CreationDate": None, "Producer": None}
_DASHES = ["-", "--", ":", "-."]
_MARKERS = ["o", "s", "^", "D", "v", "P"]


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out_dir: Path, stem: str) -> list[Path]:  # type: ignore[no-untyped-def]
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.pdf"]
    fig.savefig(paths[0], dpi=120, bbox_inches="tight", metadata=_PNG_META)
    fig.savefig(paths[1], bbox_inches="tight", metadata=_PDF_META)
    _pyplot().close(fig)
    return paths


def _figure_legend(fig, axes: list, title: str | None = None) -> None:  # type: ignore[no-untyped-def]
    """One legend for the whole figure, right of the panels (outside the data), each label once."""
    found: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            found.setdefault(label, handle)
    if found:
        fig.legend(list(found.values()), list(found), loc="upper left", bbox_to_anchor=(1.0, 0.95), fontsize=8,
                   frameon=False, title=title, title_fontsize=8)


def _colour(i: int) -> str:
    return f"C{i % 10}"


def _span(cells: list[Cell]) -> tuple[float, float] | None:
    """The range the dots and intervals cover, padded: the zoomed axis."""
    points: list[float] = []
    for cell in cells:
        points += list(cell.values)
        found = interval95(cell)
        if found is not None:
            points += list(found)
    if not points:
        return None
    low, high = min(points), max(points)
    pad = max((high - low) * 0.12, 0.5)
    return low - pad, high + pad


def scores(table: ReportTable, out_dir: Path) -> list[Path]:
    fig = score_figure(table)
    return [] if fig is None else _save(fig, out_dir, "scores")


def score_figure(table: ReportTable):  # type: ignore[no-untyped-def]
    """One panel per metric: rows down the y axis, the metric on x, column groups offset and styled."""
    if table.measured == 0:
        return None
    plt = _pyplot()
    metrics = table.metrics
    height = 1.2 + 0.42 * len(table.rows) * max(1, len(table.columns) if len(table.columns) > 1 else 1)
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), max(2.6, height)), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        _score_panel(ax, table, metric)
    _figure_legend(fig, list(axes[0]))
    fig.suptitle(table.spec.title or table.grid, fontsize=10)
    fig.tight_layout()
    return fig


def _score_panel(ax, table: ReportTable, metric) -> None:  # type: ignore[no-untyped-def]
    columns = table.columns
    step = 0.7 / max(1, len(columns))
    cells_all: list[Cell] = []
    papers: list[tuple[float, float]] = []
    comparable = table.has_delta(metric.name)
    for j, column in enumerate(columns):
        cells = table.column_cells(column, metric.name)
        cells_all += cells
        offset = (j - (len(columns) - 1) / 2) * step
        label = f"ours ({column})" if column else "ours: mean, 95 % CI"
        for i, cell in enumerate(cells):
            y = i + offset
            if cell.values:
                ax.plot(cell.values, [y] * cell.n, ".", color=_colour(j), alpha=0.35, markersize=5)
            if cell.mean is not None:
                found = interval95(cell)
                err = None if found is None else [[cell.mean - found[0]], [found[1] - cell.mean]]
                ax.errorbar([cell.mean], [y], xerr=err, fmt=_MARKERS[j % len(_MARKERS)], color=_colour(j),
                            capsize=3, markersize=6, label=label)
                label = "_nolegend_"
            else:  # no value: say why (running, failed…) where the dot would be
                ax.annotate(cell.state, (0.02, y), xycoords=("axes fraction", "data"), va="center", fontsize=7,
                            color="grey")
            if cell.paper is not None:
                papers.append((cell.paper, y + 0.25))  # just below our dot: both stay visible
    span = _span(cells_all)
    if span is not None:
        ax.set_xlim(*span)
    if papers and comparable:
        ax.plot([p[0] for p in papers], [p[1] for p in papers], "kD", markerfacecolor="none", markersize=7,
                label="paper")
        ax.set_xlim(*_span_with(span, [p[0] for p in papers]))
    elif papers:
        top = ax.twiny()
        top.plot([p[0] for p in papers], [p[1] for p in papers], "kD", markerfacecolor="none", markersize=7,
                 label="paper (own scale, top axis)")
        values = [p[0] for p in papers]
        pad = max((max(values) - min(values)) * 0.2, 0.5)
        top.set_xlim(min(values) - pad, max(values) + pad)
        top.set_xlabel("paper (published setting)", fontsize=8)
        top.tick_params(labelsize=7)
        ax.plot([], [], "kD", markerfacecolor="none", label="paper (top axis: its own scale)")
    _baseline_lines(ax, table, metric)
    ax.set_yticks(range(len(table.rows)), table.rows, fontsize=8)
    ax.set_ylim(len(table.rows) - 0.5, -0.5)  # first row on top, like the table
    scaled = f" (×{metric.scale:g})" if metric.scale != 1 else ""
    ax.set_xlabel(f"{metric.label or metric.name}{scaled}", fontsize=9)
    ax.set_ylabel(table.row_title, fontsize=9)
    ax.grid(axis="x", alpha=0.3)


def _span_with(span: tuple[float, float] | None, extra: list[float]) -> tuple[float, float]:
    low = min([*extra, *(span or ())])
    high = max([*extra, *(span or ())])
    pad = max((high - low) * 0.08, 0.5)
    return low - pad, high + pad


def _baseline_lines(ax, table: ReportTable, metric) -> None:  # type: ignore[no-untyped-def]
    """Chance and blind prior as vertical lines when they fall on the zoomed axis, else named in the legend."""
    low, high = ax.get_xlim()
    for column in table.columns:
        for kind, style in (("chance", ":"), ("blind", "--")):
            value = table.baselines.get((column, metric.name), {}).get(kind)
            if value is None:
                continue
            name = f"{BASELINE_LABELS.get(kind, kind)} {column}".strip()
            if low <= value <= high:
                ax.axvline(value, color="grey", linestyle=style, linewidth=1, label=f"{name} {value:.1f}")
            else:
                ax.plot([], [], linestyle=style, color="grey", label=f"{name} {value:.1f} (off axis)")


def curves(table: ReportTable, metrics: pd.DataFrame, out_dir: Path) -> list[Path]:
    fig = curve_figure(table, metrics)
    return [] if fig is None else _save(fig, out_dir, "curves")


def curve_figure(table: ReportTable, metrics: pd.DataFrame):  # type: ignore[no-untyped-def]
    """Training loss per cell: mean over seeds at each step, a ±1 std band where there are ≥ 2 seeds."""
    loss = metrics[(metrics["split"] == "train") & (metrics["metric"] == "loss")]
    cell_of = _cell_of_run(table)
    loss = loss[loss["run_id"].isin(cell_of) & loss["step"].notna()]
    if loss.empty:
        return None
    panels: dict[str, dict[str, pd.DataFrame]] = defaultdict(dict)
    framed = loss.assign(cell=loss["run_id"].map(cell_of), task=loss["task"].fillna(""))
    for (stage, task, label), part in framed.groupby(["stage", "task", "cell"], sort=False):
        per_step = part.groupby("step")["value"]
        panels[f"{stage} {task}".strip()][label] = pd.DataFrame({"mean": per_step.mean(), "std": per_step.std(),
                                                                  "n": per_step.count()})
    order = {label: i for i, label in enumerate(dict.fromkeys(cell_of.values()))}
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.6), squeeze=False)
    for ax, (panel, lines) in zip(axes[0], sorted(panels.items()), strict=True):
        for label, frame in sorted(lines.items(), key=lambda item: order.get(item[0], 0)):
            k = order.get(label, 0)
            steps = frame.index.astype(float)
            # Colour and dash both vary, so 6+ lines stay apart (and in greyscale print).
            ax.plot(steps, frame["mean"], color=_colour(k), linestyle=_DASHES[k % len(_DASHES)], linewidth=1.4,
                    marker="o" if len(frame) < 20 else None, markersize=3, label=label)
            spread = frame["std"].where(frame["n"] >= 2)
            if spread.notna().any():
                ax.fill_between(steps, frame["mean"] - spread, frame["mean"] + spread, color=_colour(k), alpha=0.15,
                                linewidth=0)
        ax.set_title(f"training loss: {panel}", fontsize=9)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("training loss (mean over seeds, ±1 std)")
        ax.grid(alpha=0.3)
    _figure_legend(fig, list(axes[0]), title=table.row_title)
    fig.tight_layout()
    return fig


def _cell_of_run(table: ReportTable) -> dict[str, str]:
    out: dict[str, str] = {}
    for cell in table.cells.values():
        label = f"{cell.row} / {cell.column}" if cell.column else cell.row
        for run_id in cell.expected:
            out.setdefault(run_id, label)
    return out


def _as_number(level: str) -> float | None:
    try:
        return float(level)
    except ValueError:
        return None


def resolution(table: ReportTable, out_dir: Path) -> list[Path]:
    """The paper's layout: score against the ``report.x`` factor (fine-tuning resolution), one line per
    encoder. Our means with 95 % intervals; the paper's curves dashed on the same axis for runs of the
    paper's setting, else in a panel of their own (a different task and scale)."""
    x = table.spec.x
    if table.spec.figure != "resolution" or not x or table.measured == 0:
        return []
    plt = _pyplot()
    metric = table.metrics[0]
    separate = table.has_reference(metric.name) and not table.has_delta(metric.name)
    fig, axes = plt.subplots(1, 2 if separate else 1, figsize=(9.0 if separate else 5.0, 3.8), squeeze=False)
    ours_ax, paper_ax = axes[0][0], axes[0][-1]
    series = _resolution_series(table, metric.name, x)
    for k, (key, points) in enumerate(series.items()):
        numeric = all(_as_number(level) is not None for level, _ in points)
        xs = [_as_number(level) if numeric else float(i) for i, (level, _) in enumerate(points)]
        style = {"color": _colour(k), "marker": _MARKERS[k % len(_MARKERS)]}
        ours = [(xv, c) for xv, (_, c) in zip(xs, points, strict=True) if c.mean is not None]
        if ours:
            errs = [_half_interval(c) for _, c in ours]
            ours_ax.errorbar([p[0] for p in ours], [p[1].mean for p in ours], yerr=errs, capsize=3, label=key,
                             **style)
        paper = [(xv, c.paper) for xv, (_, c) in zip(xs, points, strict=True) if c.paper is not None]
        if paper:
            paper_ax.plot([p[0] for p in paper], [p[1] for p in paper], linestyle="--", markerfacecolor="none",
                          label=f"{key} (paper)", **style)
        for ax in dict.fromkeys([ours_ax, paper_ax]):
            ax.set_xticks(xs, [level for level, _ in points])
    ours_ax.set_title("ours: mean, 95 % CI over seeds" if separate else (table.spec.title or table.grid), fontsize=9)
    if separate:
        paper_ax.set_title("paper (VQAv2 test-dev, its own scale)", fontsize=9)
    for ax in dict.fromkeys([ours_ax, paper_ax]):
        ax.set_xlabel(table.spec.column_title or x)
        ax.set_ylabel(f"{metric.label or metric.name}" + (f" (×{metric.scale:g})" if metric.scale != 1 else ""))
        ax.grid(alpha=0.3)
    _figure_legend(fig, list(dict.fromkeys([ours_ax, paper_ax])))
    fig.tight_layout()
    return _save(fig, out_dir, "resolution")


def _half_interval(cell: Cell) -> float:
    found = interval95(cell)
    return 0.0 if found is None else (found[1] - found[0]) / 2


def _resolution_series(table: ReportTable, metric: str, x: str) -> dict[str, list[tuple[str, Cell]]]:
    series: dict[str, list[tuple[str, Cell]]] = defaultdict(list)
    for (_, _, name), cell in table.cells.items():
        if name == metric and x in cell.levels:
            key = " / ".join(v for k, v in cell.levels.items() if k != x) or metric
            series[key].append((cell.levels[x], cell))
    for points in series.values():
        points.sort(key=lambda p: (_as_number(p[0]) is None, _as_number(p[0]) or 0.0, p[0]))
    return dict(series)
