"""Figures of a report (matplotlib, Agg backend): bars per metric, training curves, resolution.

Each figure is written as PNG and PDF; a figure with nothing to show is not written.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pandas as pd

from harness.report.table import ReportTable

# Fixed metadata keeps re-rendered files byte-stable (no creation date).
_PNG_META = {"Software": None}
_PDF_META = {"CreationDate": None, "Producer": None}


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


def bars(table: ReportTable, out_dir: Path) -> list[Path]:
    """Grouped bars per metric: rows on x, one bar per column group, std error bars, paper ◆."""
    if table.measured == 0:
        return []
    plt = _pyplot()
    metrics = table.metrics
    fig, axes = plt.subplots(1, len(metrics), figsize=(max(4.0, 1.1 * len(table.rows)) * len(metrics), 3.6),
                             squeeze=False)
    width = 0.8 / max(1, len(table.columns))
    for ax, metric in zip(axes[0], metrics, strict=True):
        for j, column in enumerate(table.columns):
            cells = table.column_cells(column, metric.name)
            xs = [i - 0.4 + width * (j + 0.5) for i in range(len(cells))]
            heights = [c.mean if c.mean is not None else 0.0 for c in cells]
            errors = [c.std or 0.0 for c in cells]
            ax.bar(xs, heights, width, yerr=errors, capsize=3, label=column or None)
            for x, cell in zip(xs, cells, strict=True):
                if cell.mean is None:
                    ax.annotate(cell.state, (x, 0), ha="center", va="bottom", rotation=90, fontsize=7)
                if cell.paper is not None:
                    ax.plot([x], [cell.paper], "kD", markersize=4)
        for column in table.columns:  # synthetic data: what chance and a text-only prior reach
            for kind, style in (("chance", ":"), ("blind", "--")):
                value = table.baselines.get((column, metric.name), {}).get(kind)
                if value is not None:
                    ax.axhline(value, color="grey", linestyle=style, linewidth=1, label=f"{kind} {column}".strip())
        ax.set_xticks(range(len(table.rows)), table.rows, rotation=30, ha="right", fontsize=8)
        ax.set_title(metric.label or metric.name, fontsize=9)
        if ax.get_legend_handles_labels()[1]:
            ax.legend(fontsize=7)
    fig.suptitle(f"{table.spec.title or table.grid} (◆ = paper)", fontsize=10)
    return _save(fig, out_dir, "bars")


def curves(table: ReportTable, metrics: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Training loss per cell (mean over seeds at each step), one panel per stage/task."""
    loss = metrics[(metrics["split"] == "train") & (metrics["metric"] == "loss")]
    if loss.empty:
        return []
    cell_of = _cell_of_run(table)
    loss = loss[loss["run_id"].isin(cell_of) & loss["step"].notna()]
    if loss.empty:
        return []
    panels: dict[str, dict[str, pd.DataFrame]] = defaultdict(dict)
    for (stage, task, run_label), part in loss.assign(
            cell=loss["run_id"].map(cell_of), task=loss["task"].fillna("")).groupby(["stage", "task", "cell"]):
        panels[f"{stage} {task}".strip()][run_label] = part.groupby("step")["value"].mean()
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.0 * len(panels), 3.6), squeeze=False)
    for ax, (panel, lines) in zip(axes[0], sorted(panels.items()), strict=True):
        for label, series in lines.items():
            # Markers when there are few logged steps: a single point would draw no line at all.
            ax.plot(series.index.astype(float), series.to_numpy(dtype=float), label=label, linewidth=1,
                    marker="o" if len(series) < 20 else None, markersize=3)
        ax.set_title(f"training loss: {panel}", fontsize=9)
        ax.set_xlabel("step")
        ax.legend(fontsize=6)
    return _save(fig, out_dir, "curves")


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
    """Score against the ``report.x`` factor (fine-tuning resolution), one line per other level."""
    x = table.spec.x
    if table.spec.figure != "resolution" or not x or table.measured == 0:
        return []
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(table.metrics), figsize=(4.5 * len(table.metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], table.metrics, strict=True):
        series: dict[str, list] = defaultdict(list)
        for (_, _, name), cell in table.cells.items():
            if name == metric.name and x in cell.levels:
                key = " / ".join(v for k, v in cell.levels.items() if k != x) or metric.name
                series[key].append((cell.levels[x], cell))
        for key, points in series.items():
            points.sort(key=lambda p: (_as_number(p[0]) is None, _as_number(p[0]) or 0.0, p[0]))
            numeric = all(_as_number(level) is not None for level, _ in points)
            xs = [_as_number(level) if numeric else i for i, (level, _) in enumerate(points)]
            ours = [(xv, c.mean, c.std or 0.0) for xv, (_, c) in zip(xs, points, strict=True) if c.mean is not None]
            if ours:
                line = ax.errorbar([p[0] for p in ours], [p[1] for p in ours], yerr=[p[2] for p in ours],
                                   marker="o", capsize=3, label=key)
                paper = [(xv, c.paper) for xv, (_, c) in zip(xs, points, strict=True) if c.paper is not None]
                if paper:
                    ax.plot([p[0] for p in paper], [p[1] for p in paper], "--", color=line[0].get_color(),
                            label=f"{key} (paper)")
            if not numeric:
                ax.set_xticks(xs, [level for level, _ in points])
        ax.set_xlabel(x)
        ax.set_title(metric.label or metric.name, fontsize=9)
        ax.legend(fontsize=7)
    return _save(fig, out_dir, "resolution")
