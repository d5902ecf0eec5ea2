"""The report's statistics sections in Markdown: the paper's claims with verdicts, and the
contrasts of every row with the baseline row (Welch t-tests, Holm per column and metric)."""

from __future__ import annotations

from harness.report.significance import TEST_NAME, Contrast
from harness.report.table import ReportTable


def _p(value: float | None) -> str:
    if value is None:
        return "–"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def _opt(value: float | None, fmt: str = "+.2f") -> str:
    return "–" if value is None else format(value, fmt)


def difference_text(c: Contrast) -> str:
    """'+9.83 [7.90, 11.77]': a − b with its 95 % interval (Welch-Satterthwaite)."""
    if c.low is None or c.high is None:
        return f"{c.diff:+.2f}"
    return f"{c.diff:+.2f} [{c.low:+.2f}, {c.high:+.2f}]"


def _md_row(values: list[str]) -> str:
    return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"


def claims_section(table: ReportTable) -> list[str]:
    if not table.verdicts:
        return []
    lines = ["", "## Claims of the paper, judged at this scale", "",
             _md_row(["claim", "verdict", "evidence", "test"]), "| --- | --- | --- | --- |"]
    for v in table.verdicts:
        lines.append(_md_row([v.claim.text, f"**{v.verdict}**", v.reason, v.test]))
    lines += ["", "Verdicts: reproduced = the claimed contrasts are significant in the claimed direction; "
                  "not reproduced = significant in the opposite direction; inconclusive = neither (too few seeds "
                  "or too small a difference at this scale, not evidence against the paper)."]
    details = [c for v in table.verdicts for c in v.contrasts]
    if details:
        lines += ["", "Contrasts behind the claims:", "",
                  _md_row(["claim", "a", "b", "metric", "a − b [95 % CI]", "Hedges g", "p", "p adjusted"]),
                  "| --- | --- | --- | --- | ---: | ---: | ---: | ---: |"]
        for number, v in enumerate(table.verdicts, 1):
            lines += [_md_row([str(number), c.a.row, c.b.row, table.title_of(c.a.metric, c.a.column),
                               difference_text(c), _opt(c.hedges_g), _p(c.p_value), _p(c.p_adjusted)])
                      for c in v.contrasts]
    return lines


def contrasts_section(table: ReportTable) -> list[str]:
    if not table.contrasts:
        return []
    base = table.spec.baseline
    lines = ["", f"## Each row against the baseline row {base}", "",
             _md_row([table.row_title, "metric", f"− {base} [95 % CI]", "Hedges g", "p", "p (Holm)", "result"]),
             "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for c in table.contrasts:
        lines.append(_md_row([c.a.row, table.title_of(c.a.metric, c.a.column), difference_text(c),
                              _opt(c.hedges_g), _p(c.p_value), _p(c.p_adjusted), c.verdict(0.05)]))
    lines += ["", f"{TEST_NAME}; Holm-adjusted over the rows of each column and metric (α = 0.05). "
                  "Hedges g: difference of means over the pooled std, small-sample corrected."]
    return lines
