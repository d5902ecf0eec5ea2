"""Everything the training loop needs to know about a job, resolved once (torch-free).

Turns a ``JobSpec`` into plain numbers: steps, batch split (per device × processes ×
accumulation = global batch), learning rate per group, schedule, logging and checkpoint
cadence. Kept apart from the loop so tests and the plan can check it without torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from harness.registry import TASKS
from harness.spec.schema import JobSpec
from harness.train.tracking import TrackedRun

Precision = Literal["fp32", "bf16", "fp16"]


@dataclass(frozen=True)
class TrainSettings:
    stage: Literal["pretrain", "finetune"]
    task: str | None
    seed: int
    total_steps: int  # optimizer steps
    global_batch: int
    per_device_batch: int
    num_processes: int
    accumulation: int
    image_size: int
    lrs: dict[str, float]  # "pretrained" | "random" | "head" → peak LR
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-8
    warmup_ratio: float = 0.1
    decay: Literal["linear", "cosine", "constant"] = "linear"
    grad_clip: float | None = None
    param_rules: Literal["harness", "meter"] = "harness"
    adamw: Literal["torch", "meter"] = "torch"
    precision: Precision = "fp32"
    deterministic: bool = False
    compile: bool | None = False  # None: on GPU only (harness.train.speed.compile_enabled)
    compile_backend: str = "inductor"  # tests use cheaper backends; not a spec key
    activation_checkpointing: bool = False
    log_every: int = 10
    checkpoint_every: int | None = None
    checkpoint_at_end: bool = True  # benches turn it off: paper-scale state is gigabytes
    eval_every: int | None = None
    trackers: tuple[str, ...] = ()
    tracked: TrackedRun | None = None  # who the run is, for the trackers (set where the results root is known)
    objectives: tuple[str, ...] = field(default_factory=tuple)


def split_batch(global_batch: int, per_device: int | None, num_processes: int, where: str) -> tuple[int, int]:
    """(per_device_batch, accumulation) with per_device × num_processes × accumulation == global_batch."""
    if per_device is None:
        per_device = max(1, global_batch // num_processes)
    per_step = per_device * num_processes
    if global_batch % per_step:
        raise ValueError(
            f"{where}: global batch {global_batch} is not a multiple of per_device_batch {per_device} × "
            f"{num_processes} process(es) = {per_step}; choose per_device_batch so that it divides "
            f"{global_batch // num_processes if global_batch % num_processes == 0 else global_batch}"
        )
    return per_device, global_batch // per_step


def group_lrs(base: float, lr_ratio: float, head_mult: float) -> dict[str, float]:
    """Peak LR per group: pre-trained encoders, randomly initialised top layers, task/objective heads."""
    return {"pretrained": base, "random": base * lr_ratio, "head": base * head_mult}


def steps_for_epochs(epochs: float, train_size: int, global_batch: int) -> int:
    """Optimizer steps for ``epochs`` passes over ``train_size`` examples at ``global_batch``.

    Counted in optimizer steps, so it stays right under gradient accumulation (METER's
    code divided by the per-device batch instead).
    """
    return max(1, math.ceil(epochs * train_size / global_batch))


def resolve(job: JobSpec, num_processes: int = 1, train_size: int | None = None) -> TrainSettings:
    """Settings of ``job`` for ``num_processes`` processes; ``train_size`` is needed for epoch-based jobs."""
    exp = job.experiment
    optim, train = exp.optim, exp.train
    common = dict(
        seed=job.seed, num_processes=num_processes, weight_decay=optim.weight_decay, betas=tuple(optim.betas),
        eps=optim.eps, warmup_ratio=optim.warmup_ratio, decay=optim.decay, grad_clip=optim.grad_clip,
        param_rules=optim.param_rules, adamw=optim.adamw,
        precision=train.precision, deterministic=train.deterministic, log_every=train.log_every,
        compile=None if train.compile == "auto" else train.compile,
        activation_checkpointing=train.activation_checkpointing,
        checkpoint_every=train.checkpoint_every, trackers=tuple(train.trackers),
    )
    if job.stage == "pretrain":
        pre = exp.pretrain
        if pre is None:
            raise ValueError(f"job {job.short_id}: stage 'pretrain' but the experiment has no 'pretrain' section")
        per_device, accumulation = split_batch(pre.batch, pre.per_device_batch, num_processes, "pretrain")
        return TrainSettings(
            stage="pretrain", task=None, total_steps=pre.steps, global_batch=pre.batch, per_device_batch=per_device,
            accumulation=accumulation, image_size=pre.image_size,
            lrs=group_lrs(optim.lr, optim.lr_ratio, optim.head_mult), eval_every=pre.eval_every,
            objectives=tuple(pre.objectives), **(common | {"decay": pre.decay or optim.decay}),  # type: ignore[arg-type]
        )
    task = job.task
    if task is None or task not in exp.finetune:
        raise ValueError(f"job {job.short_id}: fine-tuning task {task!r} has no 'finetune' section")
    fin = exp.finetune[task]
    per_device, accumulation = split_batch(fin.batch, fin.per_device_batch, num_processes, f"finetune.{task}")
    if fin.steps is not None:
        steps = fin.steps
    elif train_size is None:
        raise ValueError(f"finetune.{task}.epochs needs the training set size, which the data pipeline did not give")
    else:
        steps = steps_for_epochs(float(fin.epochs or 0), train_size, fin.batch)
    head_mult = fin.head_mult if fin.head_mult is not None else float(TASKS.get(task).meta.head_mult)
    base = fin.lr if fin.lr is not None else optim.lr
    return TrainSettings(
        stage="finetune", task=task, total_steps=steps, global_batch=fin.batch, per_device_batch=per_device,
        accumulation=accumulation, image_size=fin.image_size, lrs=group_lrs(base, optim.lr_ratio, head_mult),
        eval_every=fin.eval_every, **common,  # type: ignore[arg-type]
    )
