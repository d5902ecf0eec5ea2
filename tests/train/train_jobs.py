"""Tiny real jobs (tiny METER, random weights, small synthetic data) for end-to-end trainer tests."""

from __future__ import annotations

from typing import Any

from harness.spec.cells import run_id
from harness.spec.schema import ExperimentSpec, JobSpec, job_identity

TINY_MODEL = {"vision": "clip-vit-224/32", "text": "bert", "scale": "tiny", "weights": "random", "hidden": 32,
              "heads": 2, "fusion_layers": 1, "decoder_layers": 1, "max_text_len": 16, "dropout": 0.0}
TINY_DATA = {"source": "synthetic", "synthetic": {"image_size": 32, "train_images": 64, "eval_images": 16,
                                                  "captions_per_image": 2}}


def experiment(**sections: Any) -> ExperimentSpec:
    raw: dict[str, Any] = {
        "model": dict(TINY_MODEL), "data": TINY_DATA,
        "optim": {"lr": 1e-3, "lr_ratio": 2.0, "head_mult": 5.0, "warmup_ratio": 0.1},
        "train": {"log_every": 2},
    }
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) and key in raw else value
    return ExperimentSpec.model_validate(raw)


def job(exp: ExperimentSpec, stage: str = "pretrain", task: str | None = None, seed: int = 0,
        depends_on: str | None = None, grid: str = "trainer-test") -> JobSpec:
    rid = run_id(job_identity(exp, stage, task, seed, depends_on))  # type: ignore[arg-type]
    return JobSpec(run_id=rid, grid=grid, stage=stage, task=task, seed=seed, factors={"model": "tiny"},  # type: ignore[arg-type]
                   depends_on=depends_on, experiment=exp)


def pretrain_job(steps: int = 6, objectives: tuple[str, ...] = ("mlm", "itm"), **extra: Any) -> JobSpec:
    pre = {"objectives": list(objectives), "steps": steps, "batch": 8, "per_device_batch": 8, "image_size": 32,
           "datasets": ["synthetic"], "zero_shot": "synthetic", **extra.pop("pretrain", {})}
    return job(experiment(pretrain=pre, **extra))


def finetune_job(task: str, steps: int = 6, depends_on: str | None = None, **extra: Any) -> JobSpec:
    fin = {"steps": steps, "batch": 8, "per_device_batch": 8, "image_size": 32, "lr": 1e-3, "dataset": "synthetic",
           "eval_splits": ["test"], "negatives": 3, **extra.pop("finetune", {})}
    return job(experiment(finetune={task: fin}, **extra), "finetune", task, depends_on=depends_on)
