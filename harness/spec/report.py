"""The ``report:`` section of a grid: the table layout and the paper's reference values.

Display only: nothing here enters a run id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from harness.spec.base import Strict


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
    scale: float = Field(100.0, description="display multiplier (100: fractions shown as percentages)")


class ReportSpec(Strict):
    title: str = ""
    # Factor names whose level labels form the rows (several → joined with " / ").
    rows: tuple[str, ...] = ()
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
    figure: Literal["bars", "resolution"] = "bars"
    # For the resolution figure: the factor whose levels are the x axis.
    x: str | None = None
