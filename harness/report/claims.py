"""The paper's findings (``report.claims``) judged on our runs: reproduced, not reproduced, or
inconclusive at this scale, each with the contrasts (Welch t-tests, Holm within the claim) behind it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.report.cells import NOT_APPLICABLE, Cell
from harness.report.significance import TEST_NAME, Contrast, adjust, contrast
from harness.spec.report import ReportClaim

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_MEASURED = (
    "reproduced", "not reproduced", "inconclusive at this scale", "not measured")

# (row, column, metric name) → Cell, as in ReportTable.cells
CellLookup = Callable[[str, str, str], Cell]


@dataclass(frozen=True)
class Verdict:
    claim: ReportClaim
    verdict: str
    reason: str
    contrasts: tuple[Contrast, ...]

    @property
    def test(self) -> str:
        adjusted = "Holm-adjusted over the claim's contrasts" if self.claim.correction == "holm" else "unadjusted"
        return f"{TEST_NAME}, α = {self.claim.alpha:g}, {adjusted}"


def judge(claim: ReportClaim, baseline: str | None, rows: Sequence[str], columns: Sequence[str],
          metrics: Sequence[str], cell: CellLookup) -> Verdict:
    """Test the claim in every (metric, column) it covers; the verdict combines them."""
    chosen = list(claim.metrics) or list(metrics)
    groups = [(m, c) for m in chosen for c in columns]
    if claim.kind == "best":
        return _judge_best(claim, rows, groups, cell)
    than = claim.than or baseline
    assert than is not None, "validated at compile time"
    pairs = [(row, m, c, contrast(cell(row, c, m), cell(than, c, m))) for row in claim.rows for m, c in groups]
    measured = [(row, c) for row, _, _, c in pairs if c is not None]
    if not measured:
        return Verdict(claim, NOT_MEASURED, "no cell of the claim has a value yet", ())
    tested = adjust([c for _, c in measured], claim.correction)
    by_row: dict[str, list[Contrast]] = {}
    for (row, _), c in zip(measured, tested, strict=True):
        by_row.setdefault(row, []).append(c)
    complete = len(measured) == len(pairs)
    if claim.kind == "better":
        return _judge_better(claim, than, by_row, tested, complete, len(groups))
    return _judge_not_better(claim, than, by_row, tested, complete, len(groups))


def _holds(found: list[Contrast], alpha: float, groups: int, better: bool) -> bool:
    return len(found) == groups and all(c.significant(alpha) and c.better == better for c in found)


def _fails(found: list[Contrast], alpha: float, better: bool) -> bool:
    return any(c.significant(alpha) and c.better != better for c in found)


def _judge_better(claim: ReportClaim, than: str, by_row: dict[str, list[Contrast]], tested: list[Contrast],
                  complete: bool, groups: int) -> Verdict:
    need = claim.at_least or len(claim.rows)
    holding = [r for r in claim.rows if _holds(by_row.get(r, []), claim.alpha, groups, better=True)]
    failing = [r for r in claim.rows if _fails(by_row.get(r, []), claim.alpha, better=True)]
    summary = (f"{len(holding)} of {len(claim.rows)} significantly better than {than}"
               f"{' (' + ', '.join(holding) + ')' if holding else ''}; needed {need}")
    if failing:
        summary += f"; significantly worse: {', '.join(failing)}"
    if len(holding) >= need:
        verdict = REPRODUCED
    elif len(claim.rows) - len(failing) < need:
        verdict = NOT_REPRODUCED
    else:
        verdict = INCONCLUSIVE
        summary += "" if complete else "; some cells have no value yet"
    return Verdict(claim, verdict, summary, tuple(tested))


def _judge_not_better(claim: ReportClaim, than: str, by_row: dict[str, list[Contrast]], tested: list[Contrast],
                      complete: bool, groups: int) -> Verdict:
    failing = [r for r in claim.rows if _fails(by_row.get(r, []), claim.alpha, better=False)]
    worse = [r for r in claim.rows if _holds(by_row.get(r, []), claim.alpha, groups, better=False)]
    if failing:
        return Verdict(claim, NOT_REPRODUCED, f"significantly better than {than}: {', '.join(failing)}",
                       tuple(tested))
    if len(worse) == len(claim.rows):
        return Verdict(claim, REPRODUCED, f"every row significantly worse than {than}", tuple(tested))
    reason = f"no significant gain over {than}, but no significant loss either for " + ", ".join(
        r for r in claim.rows if r not in worse)
    return Verdict(claim, INCONCLUSIVE, reason + ("" if complete else "; some cells have no value yet"),
                   tuple(tested))


def _judge_best(claim: ReportClaim, rows: Sequence[str], groups: list[tuple[str, str]],
                cell: CellLookup) -> Verdict:
    """In each (metric, column): the best claimed row against every other measured row."""
    others = [r for r in rows if r not in claim.rows]
    pairs: list[Contrast] = []
    expected = 0
    for metric, column in groups:
        # A row that never records this metric (e.g. zero-shot retrieval after MLM-only pre-training) is no
        # rival here; one that has not run yet still is.
        rivals = [r for r in others if cell(r, column, metric).state not in ("no value", "not in grid", NOT_APPLICABLE)]
        expected += len(rivals)
        mine = [cell(r, column, metric) for r in claim.rows]
        mine = [c for c in mine if c.mean is not None]
        if not mine:
            continue
        sign = 1.0 if mine[0].metric.higher_is_better else -1.0
        top = max(mine, key=lambda c: sign * c.mean)  # type: ignore[operator]
        pairs += [c for c in (contrast(top, cell(r, column, metric)) for r in rivals) if c is not None]
    if not pairs:
        return Verdict(claim, NOT_MEASURED, "no claimed row and other row both have a value yet", ())
    tested = adjust(pairs, claim.correction)
    beaten = [c for c in tested if c.significant(claim.alpha) and not c.better]
    if beaten:
        names = ", ".join(sorted({f"{c.b.row} ({c.b.metric.label or c.b.metric.name})" for c in beaten}))
        return Verdict(claim, NOT_REPRODUCED, f"significantly better than every claimed row: {names}", tuple(tested))
    ahead = [c for c in tested if c.significant(claim.alpha) and c.better]
    if len(ahead) == expected:
        return Verdict(claim, REPRODUCED, f"the best claimed row beats all {len(others)} other rows significantly",
                       tuple(tested))
    return Verdict(claim, INCONCLUSIVE, f"{len(ahead)} of {expected} contrasts with the other rows significant",
                   tuple(tested))
