"""The cost of a job: parameters, FLOPs, steps, GPU-hours, wall time and peak memory per GPU.

One cost model: parameters are counted on the job's own model built on PyTorch's ``meta`` device
(``harness.models.params``, the same count ``harness ls --params`` prints), FLOPs come from that
transformer estimate of ``harness.models.estimate`` (training 3× a forward). Epoch-based
fine-tuning is costed with its own dataset's training size (the dataset registry's ``train_size``), counted in
optimiser steps as the trainer counts them (``steps_for_epochs``). Peak memory is an estimate
(weights, gradients and AdamW states in fp32, plus activations of one per-device batch); it is
good to a factor of about 1.5, enough to see that 512 pairs per GPU cannot fit.

Why it lives in dispatch: it counts parameters on the job's real model (models), reads the training
sizes of datasets and converts epochs to steps as the trainer does (train) — all layers below
dispatch, where its two callers are (``harness plan`` and the preflight's time check). In spec, the
bottom layer, it could only have done so against the layering.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass

from harness.models.estimate import analytic_flops, encoder_dims, image_tokens
from harness.registry import DATASETS, TASKS, default_dataset
from harness.spec.schema import ExperimentSpec, JobSpec


@dataclass(frozen=True)
class JobCost:
    params: int
    flops_per_step: float
    steps: int
    total_flops: float
    gpu_hours: float
    gpus: int
    wall_hours: float  # gpu_hours spread over the job's GPUs (one device when it asks for none)
    per_device_batch: int
    accumulation: int
    peak_mem_gb: float  # estimated, per GPU


@functools.lru_cache(maxsize=256)
def _params(model_json: str, objectives: tuple[str, ...], task: str | None, image_size: int) -> int:
    from harness.models.config import ModelSpec
    from harness.models.params import parameter_counts

    spec = ModelSpec.model_validate(json.loads(model_json))
    tasks = {task: dict(TASKS.get(task).meta.head_info)} if task else None
    return parameter_counts(spec, objectives=objectives, tasks=tasks, image_size=image_size)["total"]


def train_size(exp: ExperimentSpec, task: str) -> int:
    """Training samples per epoch of ``task``'s dataset (one per question / statement / caption)."""
    ft = exp.finetune[task]
    name = ft.dataset or default_dataset(task)
    if name == "synthetic":
        syn = exp.data.synthetic
        per_image = {"vqa": syn.questions_per_image, "nlvr2": syn.statements_per_image,
                     "snli-ve": syn.statements_per_image, "retrieval": syn.captions_per_image}[task]
        return syn.train_images * per_image
    size = DATASETS.get(name).meta.train_size
    if size is None:
        raise ValueError(f"dataset '{name}' has no train_size in its registration: epochs of '{task}' cannot be "
                         f"counted in steps (give finetune.{task}.steps)")
    return size


def _stage(job: JobSpec) -> tuple[int, int, int | None, int, tuple[str, ...]]:
    """(image size, global batch, per-device batch, steps, objectives) of the job's stage."""
    from harness.train.settings import steps_for_epochs

    exp = job.experiment
    if job.stage == "pretrain":
        assert exp.pretrain is not None
        pre = exp.pretrain
        return pre.image_size, pre.batch, pre.per_device_batch, pre.steps, tuple(pre.objectives)
    assert job.task is not None
    ft = exp.finetune[job.task]
    steps = ft.steps or steps_for_epochs(ft.epochs or 1.0, train_size(exp, job.task), ft.batch)
    return ft.image_size, ft.batch, ft.per_device_batch, steps, ()


def _activation_bytes(job: JobSpec, image_size: int, per_device: int, passes: int) -> float:
    """Saved activations of one training step: per transformer layer ≈ 34·s·h + 5·a·s² bytes in 16-bit."""
    m = job.experiment.model
    d = encoder_dims(m)
    img, txt = image_tokens(m, image_size), m.max_text_len

    def layer(s: int, h: int, heads: int) -> float:
        return 34 * s * h + 5 * heads * s * s

    per_sample = (d.vision_layers * layer(img, d.vision_width, max(1, d.vision_width // 64))
                  + d.text_layers * layer(txt, d.text_width, max(1, d.text_width // 64))
                  + m.fusion_layers * 2 * layer(img + txt, m.hidden, m.heads))
    width = 2 if job.experiment.train.precision in ("bf16", "fp16") else 4
    return per_sample * width / 2 * per_device * passes


def job_cost(job: JobSpec, *, with_params: bool = True) -> JobCost:
    """``with_params=False``: no parameter count (it builds the model on the meta device, with torch);
    FLOPs, steps and times do not need it, the memory estimate then holds activations only."""
    exp = job.experiment
    image_size, batch, per_device, steps, objectives = _stage(job)
    params = _params(exp.model.model_dump_json(), objectives, job.task, image_size) if with_params else 0
    passes = max(1, len(objectives))
    per_step = 3 * analytic_flops(exp.model, image_size, exp.model.max_text_len) * batch * passes
    total = per_step * steps
    gpu_hours = total / (exp.resources.assumed_tflops * 1e12) / 3600
    gpus = max(1, exp.resources.nodes * exp.resources.gpus_per_node)
    per_device = per_device or max(1, batch // gpus)
    accumulation = max(1, batch // (per_device * gpus))
    weights_gb = params * 16 / 1e9  # fp32 weights + gradients + two AdamW moments
    peak = weights_gb + _activation_bytes(job, image_size, per_device, passes) / 1e9
    return JobCost(int(params), per_step, steps, total, gpu_hours, gpus, gpu_hours / gpus, per_device,
                   accumulation, peak)


def time_warning(job: JobSpec, cost: JobCost) -> str | None:
    """A job whose estimated wall time exceeds its time_min: how many requeues it needs."""
    limit = job.experiment.resources.time_min
    minutes = cost.wall_hours * 60
    if minutes <= limit:
        return None
    needed = math.ceil(minutes / limit) - 1
    have = job.experiment.resources.requeues
    advice = (f"it resumes from its checkpoints over {needed} requeue(s) (resources.requeues: {have})"
              if needed <= have else f"raise resources.requeues to ≥ {needed} or resources.time_min")
    return (f"{job.short_id} {job.stage}{' ' + job.task if job.task else ''}: estimated {minutes:,.0f} min on "
            f"{cost.gpus} GPU(s) > time_min {limit}; {advice}")
