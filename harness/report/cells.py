"""The report's cells: which runs each (row, column, metric) expects, and what the store holds.

The expected cells come from the compiled grid's jobs, never from the store, so a cell with
no result yet is shown as missing (or failed, running, blocked) instead of vanishing.
"""

from __future__ import annotations

import functools
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from harness.spec.report import ReportMetric, ReportSpec, join_label
from harness.spec.schema import JobSpec
from harness.spec.splits import records_zero_shot

# A cell whose runs cannot record the metric by design (zero-shot retrieval after a pre-training
# without an ITM head): not a missing result, and the paper's tables leave such cells blank too.
NOT_APPLICABLE = "n/a"
BASELINE_METRICS = {"baseline_chance": "chance", "baseline_blind": "blind"}


@dataclass
class Cell:
    row: str
    column: str
    metric: ReportMetric
    levels: dict[str, str]
    expected: tuple[str, ...]
    values: tuple[float, ...] = ()  # display-scaled final values, one per run that recorded one
    states: Counter[str] = field(default_factory=Counter)  # status of expected runs without a value
    paper: float | None = None
    # Whether every run of the cell is of the paper's setting (paper-scale model, real data): only
    # then is "ours − paper" a difference between like things.
    paper_setting: bool = False
    best: bool = False
    near_best: bool = False

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return _mean_std(self.values)[0]

    @property
    def std(self) -> float | None:
        """Sample standard deviation over seeds; None with fewer than two."""
        return _mean_std(self.values)[1]

    @property
    def delta(self) -> float | None:
        mean = self.mean
        if mean is None or self.paper is None or not self.paper_setting:
            return None
        return mean - self.paper

    @property
    def state(self) -> str:
        """ok, partial (some seeds lack a value), or the dominant reason there is no value."""
        if self.values:
            return "ok" if self.n == len(self.expected) else "partial"
        if not self.expected:
            return "not in grid"
        for reason in ("failed", "running", "blocked", "cancelled", "pruned", "no value", NOT_APPLICABLE):
            if self.states.get(reason):
                return reason
        return "missing"


@functools.lru_cache(maxsize=65536)
def _mean_std(values: tuple[float, ...]) -> tuple[float | None, float | None]:
    # Plain floats: statistics.stdev works in exact fractions, 100× slower on a 10,000-run grid.
    if not values:
        return None, None
    mean = math.fsum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


def ordered_levels(jobs: Sequence[JobSpec], names: Sequence[str]) -> list[tuple[str, ...]]:
    """Distinct level tuples of ``names`` in grid order, from the jobs that have all of them."""
    found = (tuple(job.factors.get(name) for name in names) for job in jobs)
    return list(dict.fromkeys(levels for levels in found if None not in levels))  # type: ignore[misc]


def _matches(job: JobSpec, names: Sequence[str], levels: Sequence[str]) -> bool:
    # A job without some factor (pre-training shared by several fine-tuning cells) serves every
    # cell that agrees on the factors it has.
    return all(job.factors.get(name) in (None, level) for name, level in zip(names, levels, strict=True))


def in_paper_setting(job: JobSpec) -> bool:
    """A paper-scale model on real (Arrow) data: its numbers can be set against the paper's."""
    exp = job.experiment
    return exp is not None and exp.model.scale == "paper" and exp.data.source == "arrow"


def feeds(job: JobSpec, metric: ReportMetric) -> bool:
    """Whether ``job`` records ``metric``: pre-training jobs record the 'pretrain' task's metrics."""
    if metric.task == "pretrain":
        return job.stage == "pretrain"
    return job.stage == "finetune" and job.task == metric.task


def default_metrics(jobs: Sequence[JobSpec]) -> tuple[ReportMetric, ...]:
    """With no ``report.metrics``: each fine-tuning task's ranking metric on its test split."""
    from harness.registry import TASKS

    tasks = list(dict.fromkeys(job.task for job in jobs if job.stage == "finetune" and job.task))
    return tuple(ReportMetric(name=task, task=task, metric=TASKS.get(task).meta.metric)
                 for task in tasks)


def _runs_by_cell(jobs: Sequence[JobSpec], report: ReportSpec):  # type: ignore[no-untyped-def]
    """(row levels, column levels) → run ids, indexed once (grids have thousands of jobs)."""
    exact: dict[tuple[tuple[str, ...], tuple[str, ...]], list[str]] = defaultdict(list)
    shared: list[JobSpec] = []
    for job in jobs:
        row_lv = tuple(job.factors.get(name) for name in report.rows)
        col_lv = tuple(job.factors.get(name) for name in report.columns)
        if None in row_lv or None in col_lv:
            shared.append(job)
        else:
            exact[(row_lv, col_lv)].append(job.run_id)  # type: ignore[index]

    def runs_of(row_lv: tuple[str, ...], col_lv: tuple[str, ...]) -> tuple[str, ...]:
        extra = [j.run_id for j in shared if _matches(j, report.rows, row_lv) and _matches(j, report.columns, col_lv)]
        return tuple(dict.fromkeys([*exact.get((row_lv, col_lv), []), *extra]))

    return runs_of


def split_for(job: JobSpec, metric: ReportMetric) -> str:
    """The split a job records ``metric`` on: the report's, else the task's first evaluation split."""
    if metric.split:
        return metric.split
    if metric.task == "pretrain":
        return "test"  # zero-shot retrieval after pre-training
    finetune = job.experiment.finetune.get(metric.task) if job.experiment is not None else None
    return finetune.eval_splits[0] if finetune is not None and finetune.eval_splits else "test"


def final_values(metrics: pd.DataFrame, metric: ReportMetric, split_of: dict[str, str]) -> dict[str, float]:
    """run id → the value at the run's last step on its split (a row without a step counts as final)."""
    rows = metrics[metrics["metric"] == metric.metric]
    # Pre-training jobs record the 'pretrain' task's metrics (zero-shot retrieval) whatever task name they use.
    rows = rows[rows["stage"] == "pretrain"] if metric.task == "pretrain" else rows[rows["task"] == metric.task]
    rows = rows[rows["split"] == rows["run_id"].map(split_of)]
    if rows.empty:
        return {}
    order = rows.assign(_step=rows["step"].astype("float64").fillna(math.inf))
    last = order.sort_values(["_step", "written_ns"], kind="stable").drop_duplicates("run_id", keep="last")
    # A NaN/inf result (diverged evaluation) is no value: it would poison means and rankings.
    return {r: v for r, v in zip(last["run_id"], last["value"].astype(float), strict=True) if math.isfinite(v)}


def cannot_record(job: JobSpec, metric: ReportMetric) -> bool:
    """Whether ``job`` cannot record ``metric`` whatever happens (see NOT_APPLICABLE)."""
    exp = job.experiment
    return metric.task == "pretrain" and exp is not None and exp.pretrain is not None \
        and not records_zero_shot(exp.pretrain)


def _why_missing(run_id: str, status: dict[str, str], parent: dict[str, str | None], cannot: set[str]) -> str:
    if run_id in cannot:
        return NOT_APPLICABLE
    state = status.get(run_id)
    if state == "done":
        return "no value"  # finished but never recorded this metric/split
    if state is not None:
        return state
    up = parent.get(run_id)
    if up is not None and status.get(up) in ("failed", "cancelled"):
        return "blocked"  # its pre-training job failed
    return "missing"


def build_cells(jobs: Sequence[JobSpec], report: ReportSpec, status: dict[str, str],
                metrics: pd.DataFrame) -> tuple[list[str], list[str], tuple[ReportMetric, ...], dict]:
    """rows, columns, metrics and {(row, column, metric name): Cell} for every expected cell."""
    chosen = report.metrics or default_metrics(jobs)
    row_levels = ordered_levels(jobs, report.rows)
    column_levels = ordered_levels(jobs, report.columns)
    parent = {job.run_id: job.depends_on for job in jobs}
    cells: dict[tuple[str, str, str], Cell] = {}
    for metric in chosen:
        feeding = [job for job in jobs if feeds(job, metric)]
        values = final_values(metrics, metric, {job.run_id: split_for(job, metric) for job in feeding})
        runs_of = _runs_by_cell(feeding, report)
        paper_runs = {job.run_id for job in feeding if in_paper_setting(job)}
        cannot = {job.run_id for job in feeding if cannot_record(job, metric)}
        for row_lv in row_levels:
            for col_lv in column_levels:
                expected = runs_of(row_lv, col_lv)
                row, column = join_label(row_lv), join_label(col_lv)
                levels = dict(zip((*report.rows, *report.columns), (*row_lv, *col_lv), strict=True))
                cells[(row, column, metric.name)] = Cell(
                    row, column, metric, levels, expected,
                    values=tuple(values[r] * metric.scale for r in expected if r in values),
                    states=Counter(_why_missing(r, status, parent, cannot) for r in expected if r not in values),
                    paper=reference_value(report, row, column, metric.name),
                    paper_setting=bool(expected) and all(r in paper_runs for r in expected))
    rows = [join_label(lv) for lv in row_levels]
    columns = [join_label(lv) for lv in column_levels]
    return rows, columns, chosen, cells


def reference_value(report: ReportSpec, row: str, column: str, metric: str) -> float | None:
    """The paper's value: ``reference[row][metric]``; with columns and a single metric the inner
    keys are column labels instead (``reference[row][column]``, e.g. resolutions)."""
    by_row = report.reference.get(row) or {}
    key = column if column and len(report.metrics) == 1 else metric
    value = by_row.get(key)
    return None if value is None else float(value)


def baselines(metrics: pd.DataFrame, cells: dict, columns: Sequence[str],
              chosen: Sequence[ReportMetric]) -> dict[tuple[str, str], dict[str, float]]:
    """(column, metric name) → {"chance", "blind"} for metrics that are their task's ranking metric.

    The trainer records a synthetic task's baselines as metrics ``baseline_chance`` and
    ``baseline_blind`` (any split), or as split "baseline" with metric "chance"/"blind".
    """
    from harness.registry import TASKS

    named = metrics["metric"].isin(list(BASELINE_METRICS))
    split = (metrics["split"] == "baseline") & metrics["metric"].isin(["chance", "blind"])
    rows = metrics[named | split]
    out: dict[tuple[str, str], dict[str, float]] = {}
    if rows.empty:
        return out
    kind = rows["metric"].map(lambda m: BASELINE_METRICS.get(m, m))
    rows = rows.assign(kind=kind)
    for metric in chosen:
        if metric.task not in TASKS or TASKS.get(metric.task).meta.metric != metric.metric:
            continue  # a baseline is computed for the task's ranking metric only
        for column in columns:
            run_ids = {r for (_, c, m), cell in cells.items() if c == column and m == metric.name
                       for r in cell.expected}
            mine = rows[rows["run_id"].isin(run_ids) & (rows["task"] == metric.task)]
            found = {k: float(v.mean()) * metric.scale for k, v in mine.groupby("kind")["value"]}
            if found:
                out[(column, metric.name)] = found
    return out
