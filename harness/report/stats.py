"""Best cells, seed noise, and rank agreement with the paper.

Seed-noise rule (stated in every report): a cell is "within seed noise" of the column's best
when the difference of their means is smaller than the larger of their two standard deviations
over seeds. With one seed on both sides there is no noise estimate, so nothing is marked. A
t-test with 2-3 seeds has almost no power; this rule is the honest, readable alternative.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.report.cells import Cell

NOISE_RULE = ("within seed noise: |difference of means| < the larger of the two standard deviations over seeds "
              "(not judged when both cells have a single seed)")


def larger_std(a: Cell, b: Cell) -> float | None:
    """The larger of the two cells' standard deviations over seeds; None when neither has one."""
    spreads = [s for s in (a.std, b.std) if s is not None]
    return max(spreads) if spreads else None


def within_noise(a: Cell, b: Cell) -> bool | None:
    """True/False, or None when neither cell has two seeds (no noise estimate)."""
    spread = larger_std(a, b)
    if a.mean is None or b.mean is None or spread is None:
        return None
    return abs(a.mean - b.mean) < spread


def mark_best(cells: Sequence[Cell]) -> Cell | None:
    """Mark the best cell of one column (by mean) and the cells within seed noise of it."""
    measured = [c for c in cells if c.mean is not None]
    if not measured:
        return None
    sign = 1.0 if measured[0].metric.higher_is_better else -1.0
    best = max(measured, key=lambda c: sign * c.mean)  # type: ignore[operator]
    best.best = True
    for cell in measured:
        if cell is not best and within_noise(cell, best):
            cell.near_best = True
    return best


@dataclass(frozen=True)
class RankAgreement:
    column: str
    metric: str
    tau: float | None
    p_value: float | None
    n: int


def kendall(column: str, metric: str, cells: Sequence[Cell]) -> RankAgreement | None:
    """Kendall τ between our row means and the paper's values, when ≥ 3 rows have both."""
    pairs = [(c.mean, c.paper) for c in cells if c.mean is not None and c.paper is not None]
    if not any(c.paper is not None for c in cells):
        return None
    if len(pairs) < 3:
        return RankAgreement(column, metric, None, None, len(pairs))
    from scipy.stats import kendalltau

    result = kendalltau([p[0] for p in pairs], [p[1] for p in pairs])
    tau, p_value = float(result.statistic), float(result.pvalue)
    return RankAgreement(column, metric, None if tau != tau else tau, None if p_value != p_value else p_value,
                         len(pairs))


def noise_notes(best: Cell, cells: Sequence[Cell], title: str) -> list[str]:
    """A sentence per row whose gap to the best does not rise above seed noise."""
    notes = []
    for cell in cells:
        if cell.near_best and cell is not best:
            gap = abs(cell.mean - best.mean)  # type: ignore[operator]
            notes.append(f"{title}: the difference between {best.row} and {cell.row} ({gap:.2f}) is within seed "
                         f"noise at this scale (larger std {larger_std(cell, best):.2f}).")
    return notes
