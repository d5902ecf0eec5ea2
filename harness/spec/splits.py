"""Compile-time split checks: every evaluation split exists in its dataset, every report column reads a
split some job evaluates. Both are errors naming the two sides (file and line of each), found before
anything runs — not a ``DataError`` after fine-tuning, nor a report full of "no value".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.registry import DATASETS, default_dataset
from harness.spec.document import GridDocument, did_you_mean
from harness.spec.errors import Issue
from harness.spec.report import ReportSpec

# Zero-shot retrieval after pre-training evaluates this split of pretrain.zero_shot's dataset.
ZERO_SHOT_SPLIT = "test"


def dataset_splits(data: Any, dataset: str) -> list[str]:
    """The split names ``dataset`` has under ``data`` (synthetic: every task form has train/val/test), read
    from the dataset registry's metadata (harness/data/splits.py) plus the grid's data.splits."""
    if data.source == "synthetic":
        return list(DATASETS.get("synthetic").meta.split_names())
    own = DATASETS.get(dataset).meta.split_names() if dataset in DATASETS else ()
    extra = [k.split("/", 1)[1] for k in data.splits if k.split("/", 1)[0] == dataset]
    return list(dict.fromkeys([*own, *extra]))


def records_zero_shot(pretrain: Any) -> bool:
    """Whether a pre-training records zero-shot retrieval: it names a dataset and one of its objectives
    scores image-text pairs (METER ranks by the ITM head: MLM alone has nothing to rank with, and the
    paper's Table 7 leaves that cell blank too)."""
    from harness.registry import OBJECTIVES

    return bool(pretrain is not None and pretrain.zero_shot
                and any(OBJECTIVES.get(name).meta.ranks_pairs for name in pretrain.objectives))


def evaluated_splits(jobs: Sequence[Any]) -> dict[str, set[str]]:
    """task ("pretrain" for zero-shot retrieval) → the splits some job of the grid evaluates."""
    out: dict[str, set[str]] = {}
    for job in jobs:
        exp = job.experiment
        if job.stage == "pretrain":
            if records_zero_shot(exp.pretrain):
                out.setdefault("pretrain", set()).add(ZERO_SHOT_SPLIT)
        else:
            out.setdefault(job.task, set()).update(exp.finetune[job.task].eval_splits)
    return out


def eval_split_issues(doc: GridDocument, jobs: Sequence[Any]) -> list[Issue]:
    issues: list[Issue] = []
    seen: set[tuple[Any, ...]] = set()
    for job in jobs:
        if job.stage != "finetune":
            continue
        exp, task = job.experiment, job.task
        ft = exp.finetune[task]
        dataset = ft.dataset or default_dataset(task)
        key = (task, dataset, exp.data.source, tuple(sorted(exp.data.splits)), ft.eval_splits)
        if key in seen:
            continue
        seen.add(key)
        known = dataset_splits(exp.data, dataset)
        where = "synthetic data" if exp.data.source == "synthetic" else f"dataset '{dataset}'"
        for split in ft.eval_splits:
            if split not in known:
                issues.append(doc.issue(("base", "finetune", task, "eval_splits"),
                                        f"evaluation split '{split}': {where} has no such split (it has: "
                                        f"{', '.join(known)}){did_you_mean(split, known)}; or map it to "
                                        f"files with data.splits['{dataset}/{split}']"))
    return issues


def report_split_issues(doc: GridDocument, report: ReportSpec, jobs: Sequence[Any]) -> list[Issue]:
    evaluated = evaluated_splits(jobs)
    issues: list[Issue] = []
    for i, metric in enumerate(report.metrics):
        if metric.task not in evaluated:
            runs = "pre-training job records zero-shot retrieval" if metric.task == "pretrain" else \
                f"job fine-tunes '{metric.task}'"
            issues.append(doc.issue(("report", "metrics", str(i), "task"),
                                    f"report column '{metric.name}' reads task '{metric.task}', but no {runs} "
                                    f"in this grid (tasks run: {', '.join(sorted(evaluated)) or 'none'})"))
            continue
        if metric.split is not None and metric.split not in evaluated[metric.task]:
            file, line = doc.where(("base", "finetune", metric.task, "eval_splits"))
            side = f"finetune.{metric.task}.eval_splits at {file}:{line}" if metric.task != "pretrain" else \
                "zero-shot retrieval"
            issues.append(doc.issue(("report", "metrics", str(i), "split"),
                                    f"report column '{metric.name}' reads {metric.task} split '{metric.split}', "
                                    f"which no job evaluates ({side} evaluates: "
                                    f"{', '.join(sorted(evaluated[metric.task]))})"))
    return issues
