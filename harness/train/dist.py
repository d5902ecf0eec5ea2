"""Evaluation across processes: each process takes a shard, the results are combined on all.

Plain ``torch.distributed`` (set up by Accelerate): one process evaluating while the others
wait at a barrier would hit the collective timeout on paper-scale retrieval sets.
"""

from __future__ import annotations

from typing import Any

import torch


def rank_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_sum(values: list[float], device: torch.device) -> list[float]:
    """Element-wise sum of ``values`` over all processes (float64: exact counts)."""
    if rank_world()[1] == 1:
        return list(values)
    import torch.distributed as dist

    # NCCL reduces CUDA tensors only; gloo takes CPU ones: the model's device suits both.
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def all_gather(obj: Any) -> list[Any]:
    """Every process's ``obj``, in rank order."""
    world = rank_world()[1]
    if world == 1:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * world
    dist.all_gather_object(out, obj)
    return out
