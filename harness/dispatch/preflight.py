"""Preflight: the whole plan checked at once, before anything runs or is queued (dry runs too).

    report = preflight(plan.run, executor)
    print(report.checklist())             # harness preflight GRID
    if report.problems: refuse (exit 2)   # harness run / retry, --dry-run included

Checks: the pre-trained weights and tokenizers of every encoder (all missing ones in one message,
with the commands that fetch them and the site key that points at them); the Arrow file of every
split each job reads; GPUs against this machine (local) or the live cluster's partitions, time
limits, CPUs, memory and the shell-safety of every value that reaches sbatch (``--executor
slurm``: the same ``prepare`` the real submission runs); each job's time estimate against its
``time_min`` (a warning, with the requeues it needs).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Level = Literal["ok", "problem", "warning"]
AREAS = ("weights", "data", "resources", "time")
# Said once after an area's problems (the weights message carries its own commands).
FIXES = {"data": "the data: point data.root at the folder holding them (harness.toml: [data] root = \"DIR\", or "
                 "$HARNESS_DATA_ROOT=DIR); `harness data convert` writes them from the raw datasets"}


@dataclass(frozen=True)
class Finding:
    area: str
    level: Level
    text: str


@dataclass
class Preflight:
    findings: list[Finding] = field(default_factory=list)

    def add(self, area: str, level: Level, text: str) -> None:
        self.findings.append(Finding(area, level, text))

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "problem"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    def checklist(self) -> str:
        mark = {"ok": "[ok]", "problem": "[MISSING]", "warning": "[warn]"}
        lines = []
        for area in AREAS:
            found = [f for f in self.findings if f.area == area]
            if found:
                lines.append(f"{area}:")
                lines.extend(f"  {mark[f.level]:<9} " + f.text.replace("\n", "\n            ") for f in found)
        lines += [f"fix {FIXES[a]}" for a in AREAS if a in FIXES and any(f.area == a for f in self.problems)]
        verdict = (f"{len(self.problems)} problem(s): nothing runs until they are fixed" if self.problems
                   else "ready" + (f" ({len(self.warnings)} warning(s))" if self.warnings else ""))
        return "\n".join([*lines, f"preflight: {verdict}"])

    def refusal(self) -> str:
        """Every problem of the plan in one message."""
        lines = [f"[{f.area}] {f.text}" for f in self.problems]
        lines += [f"fix {FIXES[a]}" for a in AREAS if a in FIXES and any(f.area == a for f in self.problems)]
        return "preflight found problems; nothing was run or queued:\n" + "\n".join(lines)


def preflight(jobs: Sequence[Any], executor: Any) -> Preflight:
    report = Preflight()
    if not jobs:
        return report
    check_weights(jobs, report)
    check_data(jobs, report)
    check_resources(jobs, executor, report)
    check_time(jobs, report)
    return report


def check_weights(jobs: Sequence[Any], report: Preflight) -> None:
    from harness.models.weight_needs import locate, missing_message, needs_of

    needs = needs_of(jobs)
    missing = []
    for need in needs:
        where = locate(need)
        if where is None:
            missing.append(need)
        else:
            report.add("weights", "ok", f"{need.label()}: {where}")
    if missing:
        report.add("weights", "problem", missing_message(missing))


def job_reads(job: Any) -> list[tuple[str, str]]:
    """(dataset, split) of every Arrow split the job reads: training, evaluation, zero-shot retrieval."""
    from harness.registry import default_dataset
    from harness.spec.splits import ZERO_SHOT_SPLIT

    exp = job.experiment
    if job.stage == "pretrain":
        reads = [(name, "train") for name in exp.pretrain.datasets]
        if exp.pretrain.zero_shot:
            reads.append((exp.pretrain.zero_shot, ZERO_SHOT_SPLIT))
        return reads
    ft = exp.finetune[job.task]
    dataset = ft.dataset or default_dataset(job.task)
    return [(dataset, "train"), *((dataset, split) for split in ft.eval_splits)]


def check_data(jobs: Sequence[Any], report: Preflight) -> None:
    from harness.data.arrow import DataError, split_files

    seen: set[tuple[str, str, str, str]] = set()
    for job in jobs:
        data = job.experiment.data
        if data.source != "arrow":
            continue
        overrides = {k: tuple(v) for k, v in data.splits.items()}
        for dataset, split in job_reads(job):
            key = (str(data.root), dataset, split, json.dumps(overrides, sort_keys=True))
            if key in seen:
                continue
            seen.add(key)
            try:
                files = split_files(Path(str(data.root)), dataset, split, overrides)
            except DataError as exc:
                report.add("data", "problem", f"{dataset}/{split}: {exc}")
                continue
            shown = files[0].name + (f" (+{len(files) - 1} more)" if len(files) > 1 else "")
            report.add("data", "ok", f"{dataset}/{split}: {shown} under {files[0].parent}")


def check_resources(jobs: Sequence[Any], executor: Any, report: Preflight) -> None:
    prepare = getattr(executor, "prepare", None)
    if prepare is not None:  # SLURM: the checks the real submission makes, against the live cluster
        from harness.dispatch.cluster import ClusterError

        try:
            arrays = prepare(list(jobs))
        except ClusterError as exc:
            report.add("resources", "problem", str(exc))
            return
        report.add("resources", "ok", f"{len(arrays)} job array(s): partition, account/QOS, GPUs, time, CPUs, "
                                      "memory and every sbatch value checked against the cluster")
        return
    from harness.dispatch.gpus import detect_gpus

    gpus = detect_gpus()
    asks: dict[tuple[int, int], int] = {}
    for job in jobs:
        res = job.experiment.resources
        asks[(res.nodes, res.gpus_per_node)] = asks.get((res.nodes, res.gpus_per_node), 0) + 1
    for (nodes, per_node), count in sorted(asks.items()):
        what = f"{count} job(s) asking for {nodes} node(s) × {per_node} GPU(s)"
        if nodes > 1:
            report.add("resources", "problem", f"{what}: a local run has one node; use --executor slurm")
        elif per_node > len(gpus):
            seen = f"{len(gpus)} visible GPU(s)" if gpus else "no visible GPU"
            report.add("resources", "problem", f"{what}: this machine has {seen}; use --executor slurm, or "
                                               f"--set resources.gpus_per_node={len(gpus)}")
        else:
            report.add("resources", "ok", f"{what}: this machine has {len(gpus)}")


def check_time(jobs: Sequence[Any], report: Preflight) -> None:
    from harness.dispatch.cost import job_cost, time_warning

    for job in jobs:
        warning = time_warning(job, job_cost(job, with_params=False))
        if warning is not None:
            report.add("time", "warning", warning)
    if not report.warnings:
        report.add("time", "ok", "every job's estimate fits its time_min")
