"""Search figures with plain matplotlib (Agg): optimisation history and per-parameter slices."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.search.config import SearchSpec

STATE_COLOURS = {"COMPLETE": "tab:blue", "PRUNED": "tab:orange"}


def _figure(ncols: int = 1):  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg", force=True)  # files only: never open a window
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(4.2 * ncols + 1.0, 3.6), squeeze=False)
    return plt, fig, list(axes[0])


def _scored(rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any], float]]:
    """Trials with a number to plot: the value, or a pruned trial's last intermediate value."""
    out = []
    for r in rows:
        value = r["value"] if r["state"] == "COMPLETE" else r["last_intermediate"] if r["state"] == "PRUNED" else None
        if value is not None:
            out.append((r, float(value)))
    return out


def plot_history(rows: list[dict[str, Any]], spec: SearchSpec, path: Path) -> Path:
    plt, fig, (ax,) = _figure()
    scored = _scored(rows)
    for state, colour in STATE_COLOURS.items():
        pts = [(r["number"], v) for r, v in scored if r["state"] == state]
        if pts:
            label = "complete" if state == "COMPLETE" else "pruned (last reported)"
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], c=colour, s=22, label=label, zorder=3)
    best_x, best_y, best = [], [], None
    pick = max if spec.objective.direction == "maximize" else min
    for r, v in scored:
        if r["state"] == "COMPLETE":
            best = v if best is None else pick(best, v)
            best_x.append(r["number"])
            best_y.append(best)
    if best_x:
        ax.step(best_x, best_y, where="post", color="tab:red", label="best so far")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # trial numbers
    obj = spec.objective
    ax.set_xlabel("trial")
    ax.set_ylabel(f"{obj.task}/{obj.split}/{obj.metric_name()}")
    ax.set_title("optimisation history")
    if scored:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no finished trials", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_slices(rows: list[dict[str, Any]], spec: SearchSpec, path: Path) -> Path:
    names = list(spec.params)
    plt, fig, axes = _figure(len(names))
    scored = _scored(rows)
    for ax, name in zip(axes, names, strict=False):
        param = spec.params[name]
        for state, colour in STATE_COLOURS.items():
            pts = [(r["params"][name], v) for r, v in scored if r["state"] == state and name in r["params"]]
            if not pts:
                continue
            xs = [p[0] for p in pts] if param.type != "categorical" else [str(p[0]) for p in pts]
            ax.scatter(xs, [p[1] for p in pts], c=colour, s=22, label=state.lower())
        if param.log:
            ax.set_xscale("log")
        ax.set_xlabel(f"{name} ({param.path})")
        ax.set_ylabel(spec.objective.metric_name())
    if scored:
        axes[0].legend(fontsize=8)
    fig.suptitle("objective per parameter")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
