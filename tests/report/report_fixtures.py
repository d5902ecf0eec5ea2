"""A fixed results store for the report tests: jobs built directly (no grid file) and their rows."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from harness.spec.report import ReportClaim, ReportMetric, ReportSpec
from harness.spec.schema import ExperimentSpec, FinetuneSpec, JobSpec
from harness.store import Store

TEXTS = ("emb-only", "bert", "roberta", "electra")
SEEDS = (0, 1, 2)
TASKS = ("vqa", "snli-ve")
EXPERIMENT = ExperimentSpec(finetune={t: FinetuneSpec(steps=10, eval_splits=("test",)) for t in TASKS})


def run_id(*parts: object) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()


def make_job(grid: str, task: str, seed: int, factors: dict[str, str], stage: str = "finetune",
             depends_on: str | None = None) -> JobSpec:
    return JobSpec.model_construct(
        run_id=run_id(grid, stage, task, seed, *sorted(factors.items())), grid=grid, stage=stage,
        task=task if stage == "finetune" else None, seed=seed, factors=factors, depends_on=depends_on,
        experiment=EXPERIMENT)


def text_jobs(grid: str = "demo", texts: Sequence[str] = TEXTS, seeds: Sequence[int] = SEEDS) -> list[JobSpec]:
    return [make_job(grid, task, seed, {"model.text": text}) for text in texts for task in TASKS for seed in seeds]


def text_report() -> ReportSpec:
    return ReportSpec(
        title="Text encoders (demo)", paper="Table 2", rows=("model.text",), row_title="Text encoder",
        baseline="emb-only",
        claims=(ReportClaim(text="pre-trained text encoders beat emb-only", kind="better",
                            rows=("bert", "roberta", "electra")),
                ReportClaim(text="RoBERTa is the best text encoder", kind="best", rows=("roberta",),
                            metrics=("vqa",))),
        metrics=(ReportMetric(name="vqa", task="vqa", metric="vqa_score", label="VQA score"),
                 ReportMetric(name="snli", task="snli-ve", metric="accuracy", label="SNLI-VE acc")),
        reference={"emb-only": {"vqa": 70.0}, "bert": {"vqa": 74.98}, "roberta": {"vqa": 74.67},
                   "electra": {"vqa": None}})


# vqa_score per (text, seed); bert and roberta overlap within seed noise, emb-only is clearly worse.
VQA = {"emb-only": (0.601, 0.612, 0.598), "bert": (0.702, 0.695, 0.709), "roberta": (0.699, 0.711, 0.703),
       "electra": (0.688, 0.690)}  # electra seed 2 never ran: missing
SNLI = {"emb-only": (0.51, 0.53), "bert": (0.64, 0.66, 0.65), "roberta": (0.66, 0.66, 0.67)}  # emb-only seed 2 failed


def fill_text_store(store: Store, jobs: Sequence[JobSpec]) -> None:
    """Rows for ``text_jobs``: done runs with values, one failed run, missing and running runs."""
    for job in jobs:
        text = job.factors["model.text"]
        table = VQA if job.task == "vqa" else SNLI
        values = table.get(text, ())
        if job.seed < len(values):
            store.write_run({"spec": job, "status": "running", "start_time": 1.7e9})
            store.write_run({"spec": job, "status": "done", "start_time": 1.7e9, "end_time": 1.7e9 + 60,
                             "wall_s": 60.0})
            metric = "vqa_score" if job.task == "vqa" else "accuracy"
            rows = [{"stage": "finetune", "task": job.task, "split": "test", "metric": metric,
                     "value": values[job.seed], "step": 10},
                    {"stage": "finetune", "task": job.task, "split": "test", "metric": metric,
                     "value": 0.0, "step": 5}]  # an earlier evaluation: the report must take the last step
            rows += [{"stage": "finetune", "task": job.task, "split": "train", "metric": "loss",
                      "value": 2.0 / (step + 1) + job.seed * 0.01, "step": step} for step in range(0, 11, 2)]
            if job.task == "vqa":
                rows += [{"stage": "finetune", "task": "vqa", "split": "test", "metric": "baseline_chance",
                          "value": 0.05, "step": None},
                         {"stage": "finetune", "task": "vqa", "split": "test", "metric": "baseline_blind",
                          "value": 0.31, "step": None}]
            store.write_metrics(job.run_id, rows)
        elif text == "emb-only" and job.task == "snli-ve":
            store.write_run({"spec": job, "status": "failed", "error": "CUDA out of memory"})
        elif text == "electra" and job.task == "snli-ve" and job.seed == 0:
            store.write_run({"spec": job, "status": "running"})


def golden_dir() -> Path:
    return Path(__file__).resolve().parent / "golden"
