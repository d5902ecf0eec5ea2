"""The ``report:`` section of a grid: the table layout and the paper's reference values.

Display only: nothing here enters a run id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from harness.spec.base import Strict
from harness.spec.document import did_you_mean


def join_label(levels: Sequence[str]) -> str:
    """A table row or column label from its factor levels, e.g. "bert / clip-vit-224/16" ("" for none)."""
    return " / ".join(levels)


class ReportMetric(Strict):
    """One measured quantity shown as a column, e.g. VQA score on the test split."""

    name: str = Field(description="column key; reference values use it")
    # A fine-tuning task, or "pretrain" for what the pre-training job records (zero-shot retrieval: metrics
    # ir_r1 … tr_r10 on split "test", from the pre-training job this cell depends on).
    task: str = Field(description="the task (or 'pretrain' for zero-shot retrieval) that records it")
    metric: str = Field(description="metric name in the store, e.g. vqa_score, accuracy, ir_r1")
    # None: the task's first evaluation split (finetune.<task>.eval_splits[0]; "test" for zero-shot retrieval).
    split: str | None = None
    label: str | None = None
    higher_is_better: bool = True
    # False for a column that is a count, not a score (e.g. the VQA test-dev answers written for EvalAI):
    # shown, but never bolded, ranked against the paper or tested.
    ranked: bool = True
    scale: float = Field(100.0, description="display multiplier (100: fractions shown as percentages)")


class ReportClaim(Strict):
    """One of the paper's findings, stated so that the report can test it on our runs.

    kinds (each judged with two-sided Welch t-tests over seeds, Holm-adjusted within the claim):
    - ``better``: each row of ``rows`` beats the row ``than`` (default: ``report.baseline``);
      ``at_least`` of them suffice (default: all).
    - ``best``: the best of ``rows`` beats every other row of the table.
    - ``not_better``: no row of ``rows`` beats ``than`` (e.g. "MIM does not help").
    Every metric of ``metrics`` (default: all of the report's) and every column group is tested.
    """

    text: str = Field(min_length=1, description="the finding in words, as the paper states it")
    kind: Literal["better", "best", "not_better"]
    rows: tuple[str, ...] = Field(min_length=1)
    than: str | None = None
    metrics: tuple[str, ...] = ()
    at_least: int | None = Field(None, ge=1)
    alpha: float = Field(0.05, gt=0.0, lt=1.0)
    correction: Literal["holm", "none"] = "holm"


class ReportSpec(Strict):
    title: str = ""
    # Factor names whose level labels form the rows (several → joined with " / ").
    rows: tuple[str, ...] = ()
    # Readable header of the row labels, e.g. "Text encoder" (default: the row factor names).
    row_title: str | None = None
    # Readable name of the column factor(s), e.g. "resolution" → "VQA (resolution 576)".
    column_title: str | None = None
    # Factor names crossed into column groups (empty: one group).
    columns: tuple[str, ...] = ()
    metrics: tuple[ReportMetric, ...] = ()
    # The paper's values: row label → metric name → value (percent; null = not recovered). With `columns`
    # and a single metric, the inner keys are column labels instead (e.g. the resolution figure: "224": 72.37).
    reference: dict[str, dict[str, float | None]] = {}
    # Which table or figure of the paper this reproduces (free text, shown in the header).
    paper: str | None = None
    # A row label the other rows are contrasted with (e.g. "emb-only" in Table 2): the notes say, for each
    # row and column, whether its difference from this row rises above the seed noise.
    baseline: str | None = None
    # The paper's findings as testable claims; the report judges each one (reproduced / not reproduced /
    # inconclusive at this scale) and names the test behind the verdict.
    claims: tuple[ReportClaim, ...] = ()
    figure: Literal["scores", "resolution"] = "scores"
    # For the resolution figure: the factor whose levels are the x axis.
    x: str | None = None


def check_report_rows(report: ReportSpec, labels: Sequence[str]) -> list[tuple[tuple[str, ...], str]]:
    """(key path, message) for every baseline/claim row that is not a row of the table, and every claim
    metric that is not one of the report's metrics."""
    problems: list[tuple[tuple[str, ...], str]] = []

    def check_row(key: tuple[str, ...], row: str) -> None:
        if row not in labels:
            problems.append((key, f"'{row}' is not a row of the table (rows: {', '.join(labels) or 'none'})"
                                  f"{did_you_mean(row, list(labels))}"))

    if report.baseline is not None:
        check_row(("report", "baseline"), report.baseline)
    metric_names = [m.name for m in report.metrics]
    unranked = {m.name for m in report.metrics if not m.ranked}
    for i, claim in enumerate(report.claims):
        key = ("report", "claims", str(i))
        for j, row in enumerate(claim.rows):
            check_row((*key, "rows", str(j)), row)
        than = claim.than or report.baseline
        if claim.kind != "best" and than is None:
            problems.append(((*key, "than"), f"a '{claim.kind}' claim needs 'than' (or report.baseline)"))
        elif claim.kind != "best" and than is not None and claim.than is not None:
            check_row((*key, "than"), claim.than)
        if than is not None and claim.kind != "best" and than in claim.rows:
            problems.append(((*key, "rows"), f"'{than}' is compared with itself"))
        if claim.kind == "best" and len(labels) > 0 and set(claim.rows) >= set(labels):
            problems.append(((*key, "rows"), "a 'best' claim needs at least one row outside 'rows'"))
        if claim.at_least is not None and claim.at_least > len(claim.rows):
            problems.append(((*key, "at_least"), f"at_least {claim.at_least} > {len(claim.rows)} rows"))
        for j, name in enumerate(claim.metrics):
            if name not in metric_names:
                problems.append(((*key, "metrics", str(j)), f"unknown report metric '{name}'"
                                 f"{did_you_mean(name, metric_names)}"))
            elif name in unranked:
                problems.append(((*key, "metrics", str(j)), f"report metric '{name}' has ranked: false (a count, "
                                 "not a score): a claim cannot be judged on it"))
    return problems
