"""FLOPs per step, MFU and peak memory.

FLOPs come from counting one real forward pass with ``torch.utils.flop_counter`` (matmuls,
convs and attention, every objective's sub-batch and head; a training step is taken as 3×
the forward: backward costs about twice it), else ``harness.models.params.flops_per_sample``.
"""

from __future__ import annotations

import os
import resource
from typing import Any

import torch

# Dense peak TFLOP/s by device name fragment and precision (bf16/fp16 tensor cores; fp32 = TF32 off).
_PEAK_TFLOPS: tuple[tuple[str, dict[str, float]], ...] = (
    ("H200", {"bf16": 989.0, "fp16": 989.0, "fp32": 67.0}),
    ("H100", {"bf16": 989.0, "fp16": 989.0, "fp32": 67.0}),
    ("A100", {"bf16": 312.0, "fp16": 312.0, "fp32": 19.5}),
    ("L40S", {"bf16": 362.0, "fp16": 362.0, "fp32": 91.6}),
    ("A10", {"bf16": 125.0, "fp16": 125.0, "fp32": 31.2}),
    ("V100", {"bf16": 0.0, "fp16": 125.0, "fp32": 15.7}),
)


def peak_flops(precision: str, device: torch.device) -> float | None:
    """Peak FLOP/s of one device, from $HARNESS_PEAK_TFLOPS or the table; None when unknown (CPU)."""
    env = os.environ.get("HARNESS_PEAK_TFLOPS")
    if env:
        return float(env) * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for fragment, peaks in _PEAK_TFLOPS:
        if fragment in name and peaks.get(precision):
            return peaks[precision] * 1e12
    return None


def count_forward_flops(model: torch.nn.Module, batch: Any) -> int:
    """FLOPs of one forward pass on ``batch`` (eval mode, no grad: counts, changes nothing)."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(batch)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def train_flops_per_sample(model: torch.nn.Module, batch: dict[str, Any], samples: int, spec: Any = None,
                           image_size: int | None = None, text_len: int | None = None) -> float:
    """Training FLOPs per sample (one row of the global batch, feeding every objective's sub-batch).

    Counted on a real micro-batch: that covers every objective's forward and heads. When the
    forward cannot be counted, the model package's per-pair formula × sub-batches stands in.
    """
    try:
        return 3.0 * count_forward_flops(model, batch) / max(1, samples)
    except Exception:  # noqa: BLE001 - an op the counter cannot trace: fall back to the formula
        if spec is None or image_size is None or text_len is None:
            raise
        from harness.models.params import flops_per_sample

        return 3.0 * len(batch) * float(flops_per_sample(spec, image_size, text_len))


def mfu(flops_per_step: float, step_time_s: float, num_devices: int, peak: float | None) -> float | None:
    """Model FLOPs utilisation: achieved FLOP/s over the devices' peak."""
    if peak is None or step_time_s <= 0:
        return None
    return flops_per_step / step_time_s / (peak * num_devices)


def peak_memory_mb(device: torch.device) -> float:
    """Peak allocated GPU memory on CUDA, else the process's peak RSS."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
