"""Analytic cost of a job from catalog metadata alone (no torch): parameters and FLOPs.

Transformer rule of thumb: a forward pass costs 2 FLOPs per parameter per token it touches,
training about 3× a forward. Good to a factor well under 2 for planning GPU-hours.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.registry import TEXT_ENCODERS, VISION_ENCODERS
from harness.spec.schema import JobSpec

TINY = {"width": 64, "layers": 2, "vocab": 2000}


@dataclass(frozen=True)
class JobCost:
    params: int
    flops_per_step: float
    steps: int
    total_flops: float
    gpu_hours: float


def _encoder_params(width: int, layers: int, vocab: int = 0) -> int:
    return layers * 12 * width * width + vocab * width


def _fusion_params(hidden: int, layers: int, fusion: str) -> int:
    per_stream = 16 * hidden * hidden if fusion == "co-attention" else 12 * hidden * hidden
    streams = 2 if fusion == "co-attention" else 1
    return layers * per_stream * streams


def job_cost(job: JobSpec) -> JobCost:
    exp = job.experiment
    m = exp.model
    vmeta, tmeta = VISION_ENCODERS.get(m.vision).meta, TEXT_ENCODERS.get(m.text).meta
    tiny = m.scale == "tiny"
    vw, vl = (TINY["width"], TINY["layers"]) if tiny else (vmeta["width"], vmeta["layers"])
    tw, tl, vocab = (TINY["width"], TINY["layers"] if tmeta["layers"] else 0, TINY["vocab"]) if tiny else (
        tmeta["width"], tmeta["layers"], tmeta["vocab"])
    if job.stage == "pretrain":
        assert exp.pretrain is not None
        image_size, batch, steps = exp.pretrain.image_size, exp.pretrain.batch, exp.pretrain.steps
        passes = len(exp.pretrain.objectives)
    else:
        assert job.task is not None
        ft = exp.finetune[job.task]
        image_size, batch, passes = ft.image_size, ft.batch, 1
        steps = ft.steps or int(round((ft.epochs or 1) * 443_757 / ft.batch))  # VQAv2 train+val questions
    patch = 8 if tiny else vmeta["patch_size"]
    image_tokens = (image_size // patch) ** 2 + 1
    text_tokens = m.max_text_len
    vision_p, text_p = _encoder_params(vw, vl), _encoder_params(tw, tl, vocab)
    fusion_p = _fusion_params(m.hidden, m.fusion_layers, m.fusion)
    share = 0.5 if m.fusion == "co-attention" else 1.0  # co-attention: each stream sees its own tokens
    params = vision_p + text_p + fusion_p + 4 * m.hidden * m.hidden
    forward = 2 * (vision_p * image_tokens + tw * tl * 12 * tw * text_tokens
                   + fusion_p * share * (image_tokens + text_tokens))
    per_step = 3 * forward * batch * passes
    total = per_step * steps
    gpu_hours = total / (exp.resources.assumed_tflops * 1e12) / 3600
    return JobCost(int(params), per_step, steps, total, gpu_hours)
