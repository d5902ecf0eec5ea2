"""Intervals and tests over seeds: t-based 95 % intervals, Welch t-tests, Hedges' g, Holm.

Seeds are the unit of replication: a cell's values are its seeds' final results. With 2-3
seeds these tests have little power, which is why "inconclusive" is a verdict of its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from harness.report.cells import Cell

TEST_NAME = "two-sided Welch t-test over seeds"


def interval95(cell: Cell) -> tuple[float, float] | None:
    """The t-based 95 % confidence interval of the cell's mean over seeds; None below two seeds."""
    if cell.mean is None or cell.std is None:
        return None
    from scipy.stats import t

    half = float(t.ppf(0.975, cell.n - 1)) * cell.std / math.sqrt(cell.n)
    return cell.mean - half, cell.mean + half


@dataclass(frozen=True)
class Contrast:
    """``a`` against ``b`` in one column and metric: a − b, its 95 % interval, Hedges' g, Welch p."""

    a: Cell
    b: Cell
    diff: float
    low: float | None
    high: float | None
    hedges_g: float | None
    p_value: float | None  # None: not testable (a side with < 2 seeds, or no spread on either side)
    p_adjusted: float | None = None

    @property
    def better(self) -> bool:
        """Whether a's mean is better than b's in the metric's direction."""
        sign = 1.0 if self.a.metric.higher_is_better else -1.0
        return sign * self.diff > 0

    def significant(self, alpha: float) -> bool:
        p = self.p_adjusted if self.p_adjusted is not None else self.p_value
        return p is not None and p < alpha

    def verdict(self, alpha: float) -> str:
        if self.p_value is None:
            return "not testable (needs ≥ 2 seeds on both sides)"
        if not self.significant(alpha):
            return "no significant difference"
        return "better" if self.better else "worse"


def contrast(a: Cell, b: Cell) -> Contrast | None:
    """Welch's t-test of a vs b over seeds; None when either cell has no value."""
    if a.mean is None or b.mean is None:
        return None
    diff = a.mean - b.mean
    if a.std is None or b.std is None or (a.std == 0 and b.std == 0):
        return Contrast(a, b, diff, None, None, None, None)
    from scipy.stats import t, ttest_ind

    p_value = float(ttest_ind(a.values, b.values, equal_var=False).pvalue)
    va, vb = a.std**2 / a.n, b.std**2 / b.n
    dof = (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))  # Welch-Satterthwaite
    half = float(t.ppf(0.975, dof)) * math.sqrt(va + vb)
    return Contrast(a, b, diff, diff - half, diff + half, _hedges_g(a, b), p_value)


def _hedges_g(a: Cell, b: Cell) -> float | None:
    """Standardised mean difference with the small-sample correction."""
    assert a.std is not None and b.std is not None and a.mean is not None and b.mean is not None
    dof = a.n + b.n - 2
    pooled = math.sqrt(((a.n - 1) * a.std**2 + (b.n - 1) * b.std**2) / dof)
    if pooled == 0:
        return None
    return (a.mean - b.mean) / pooled * (1 - 3 / (4 * dof - 1))


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone); None stays None and is not counted."""
    indexed = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(indexed)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def adjust(contrasts: Sequence[Contrast], correction: str = "holm") -> list[Contrast]:
    """The contrasts with ``p_adjusted`` filled (Holm over this family, or unadjusted)."""
    from dataclasses import replace

    if correction == "none":
        return [replace(c, p_adjusted=c.p_value) for c in contrasts]
    adjusted = holm([c.p_value for c in contrasts])
    return [replace(c, p_adjusted=p) for c, p in zip(contrasts, adjusted, strict=True)]
