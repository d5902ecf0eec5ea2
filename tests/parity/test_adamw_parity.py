"""``optim.adamw: meter`` reproduces METER's optimizer: the trajectory of transformers 4.6's ``AdamW``
(METER's betas and eps, one decayed and one undecayed group) recorded by tools/meter_golden.py."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from harness.train.optim import MeterAdamW

GOLDEN = Path(__file__).resolve().parents[1] / "importers" / "golden" / "meter_tiny" / "io.pt"


def _run(optimizer_class: type[torch.optim.Optimizer], recorded: dict) -> list[list[torch.Tensor]]:
    params = [nn.Parameter(t.clone()) for t in recorded["start"]]
    groups = [{"params": [p], "weight_decay": wd} for p, wd in zip(params, recorded["weight_decays"], strict=True)]
    optimizer = optimizer_class(groups, lr=recorded["lr"], betas=(0.9, 0.98), eps=1e-8)
    after = []
    for grads in recorded["grads"]:
        for param, grad in zip(params, grads, strict=True):
            param.grad = grad.clone()
        optimizer.step()
        after.append([p.detach().clone() for p in params])
    return after


def _max_diff(ours: list[list[torch.Tensor]], theirs: list[list[torch.Tensor]]) -> float:
    return max(float((a - b).abs().max()) for x, y in zip(ours, theirs, strict=True) for a, b in zip(x, y, strict=True))


def test_meter_adamw_follows_transformers_4_6_adamw() -> None:
    recorded = torch.load(GOLDEN, weights_only=True)["adamw"]
    assert _max_diff(_run(MeterAdamW, recorded), recorded["after"]) <= 1e-7
    # torch's AdamW (the harness default) is a different update, visibly so at lr 1e-2 within 6 steps
    assert _max_diff(_run(torch.optim.AdamW, recorded), recorded["after"]) > 1e-6
