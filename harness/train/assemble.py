"""From a ``JobSpec`` to ``TrainParts``: the METER model, its LR groups, the data, the evaluation.

Pre-training builds the objectives' heads and (when ``pretrain.zero_shot`` is set) evaluates
zero-shot retrieval with the ITM score. Fine-tuning builds the task head and loads the
pre-training job's ``model.safetensors`` when the job depends on one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from harness.paths import run_dir, trackers_dir
from harness.spec.schema import JobSpec
from harness.spec.splits import ZERO_SHOT_SPLIT, records_zero_shot
from harness.train.errors import TrainingFailed
from harness.train.flops import train_flops_per_sample
from harness.train.loop import MetricRow, TrainParts
from harness.train.objectives import objectives_metrics
from harness.train.settings import TrainSettings, resolve
from harness.train.tasks import build_task, zero_shot_retrieval
from harness.train.tracking import tracked_run


@dataclass
class PipelineEvalData:
    """Evaluation data from ``harness.data.pipeline`` for one job."""

    exp: Any
    tokenizer: Any
    image_size: int
    mean: Any
    std: Any
    batch_size: int
    answers: tuple[str, ...] | None = None  # VQA answer vocabulary, for server prediction files
    output_dir: Path | None = None

    def batches(self, task: str, split: str) -> Iterable[dict[str, Any]]:
        from harness.data.pipeline import eval_batches

        return eval_batches(self.exp, task=task, split=split, tokenizer=self.tokenizer, image_size=self.image_size,
                            mean=self.mean, std=self.std, batch_size=self.batch_size)

    def retrieval_set(self, split: str, dataset: str | None = None) -> Any:
        from harness.data.pipeline import retrieval_eval_set

        return retrieval_eval_set(self.exp, split=split, tokenizer=self.tokenizer, image_size=self.image_size,
                                  mean=self.mean, std=self.std, dataset=dataset)


def load_pretrained_weights(model: Any, results: Path, depends_on: str) -> dict[str, list[str]]:
    """Load ``<results>/runs/<depends_on>/model.safetensors`` through ``model.load_pretrained_vlp``."""
    from safetensors.torch import load_file

    path = run_dir(results, depends_on) / "model.safetensors"
    if not path.is_file():
        raise TrainingFailed(f"pre-training run {depends_on[:10]} has no final weights at {path}; "
                             "run (or finish) that job first")
    return model.load_pretrained_vlp(load_file(str(path)))


def _evaluator(job: JobSpec, settings: TrainSettings, data: PipelineEvalData) -> Any:
    exp = job.experiment
    if settings.stage == "pretrain":
        assert exp.pretrain is not None
        dataset = exp.pretrain.zero_shot
        if dataset is None or not records_zero_shot(exp.pretrain):
            return None  # zero-shot retrieval ranks by the ITM score: nothing to rank with
        zero_shot = zero_shot_retrieval()

        def evaluate_zero_shot(model: torch.nn.Module) -> list[MetricRow]:
            metrics = zero_shot.evaluate(model, data, ZERO_SHOT_SPLIT, dataset=dataset)
            return [("pretrain", ZERO_SHOT_SPLIT, k, v) for k, v in metrics.items()]

        return evaluate_zero_shot
    assert settings.task is not None
    task, splits = build_task(settings.task), exp.finetune[settings.task].eval_splits

    def evaluate_task(model: torch.nn.Module) -> list[MetricRow]:
        rows: list[MetricRow] = []
        for split in splits:
            rows += [(task.name, split, k, v) for k, v in task.evaluate(model, data, split).items()]
        return rows

    return evaluate_task


def build_parts(job: JobSpec, results: Path, num_processes: int) -> tuple[TrainParts, TrainSettings]:
    """Model (seeded), LR groups, data streams and evaluation of ``job``."""
    from accelerate.utils import set_seed

    from harness.data import pipeline
    from harness.models import build_model
    from harness.models.groups import param_groups
    from harness.models.text import load_tokenizer
    from harness.models.vision import preprocess_config

    exp = job.experiment
    tokenizer = load_tokenizer(exp.model)
    norm = preprocess_config(exp.model)
    tasks = {job.task: dict(pipeline.task_info(exp, job.task))} if job.stage == "finetune" and job.task else {}
    train_size = tasks[job.task].get("train_size") if tasks and job.task else None
    settings = resolve(job, num_processes, train_size)
    if settings.trackers:
        settings = replace(settings, tracked=tracked_run(job, trackers_dir(results)))
    set_seed(job.seed)
    pre = exp.pretrain if job.stage == "pretrain" else None
    model = build_model(
        exp.model, objectives=settings.objectives, tasks=tasks, loss_weights=dict(pre.loss_weights) if pre else {},
        mlm_prob=pre.mlm_prob if pre else 0.15, mim_prob=pre.mim_prob if pre else 0.15,
        image_size=settings.image_size,
    )
    if job.stage == "finetune" and job.depends_on:
        load_pretrained_weights(model, results, job.depends_on)
    answers = tasks.get("vqa", {}).get("answers")
    data = PipelineEvalData(exp, tokenizer, settings.image_size, norm["mean"], norm["std"], settings.per_device_batch,
                            tuple(answers) if answers else None, run_dir(results, job.run_id))

    def batches(process_index: int, world: int) -> Iterable[dict[str, Any]]:
        return pipeline.train_batches(
            exp, stage=job.stage, task=job.task, tokenizer=tokenizer, image_size=settings.image_size,
            mean=norm["mean"], std=norm["std"], per_device_batch=settings.per_device_batch, seed=job.seed,
            process_index=process_index, num_processes=world)

    def flops(model: torch.nn.Module, batch: dict[str, Any]) -> float:
        return train_flops_per_sample(model, batch, settings.per_device_batch, exp.model, settings.image_size,
                                      pipeline.text_length(exp, job.task or "pretrain"))

    parts = TrainParts(
        model=model, groups=param_groups(model, settings.param_rules), batches=batches,
        evaluate=_evaluator(job, settings, data),
        step_metrics=objectives_metrics(settings.objectives) if settings.objectives else None,
        flops_per_sample=flops,
    )
    return parts, settings
