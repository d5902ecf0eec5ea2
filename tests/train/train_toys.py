"""Tiny stand-ins for the model and data, to test the trainer's mechanics on CPU."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from harness.train.loop import TrainParts
from harness.train.settings import TrainSettings

FEATURES, CLASSES, DATA_SIZE = 8, 4, 512


class ToyModel(nn.Module):
    """A classifier shaped like the real thing: pre-trained bottom, random top, a head, losses in forward."""

    def __init__(self, dropout: float = 0.0, nan_at_call: int | None = None) -> None:
        super().__init__()
        self.bottom = nn.Linear(FEATURES, 16)
        self.top = nn.Sequential(nn.LayerNorm(16), nn.Linear(16, 16), nn.GELU(), nn.Dropout(dropout))
        self.head = nn.Linear(16, CLASSES)
        self.nan_at_call, self.calls = nan_at_call, 0
        self.training_passes = 0  # forward passes with autograd on: one per training micro-batch

    def forward(self, batch: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        sub = batch["toy"]
        logits = self.head(self.top(self.bottom(sub["x"])))
        loss = nn.functional.cross_entropy(logits, sub["y"])
        self.calls += 1
        self.training_passes += int(torch.is_grad_enabled())
        if self.nan_at_call is not None and self.calls >= self.nan_at_call:
            loss = loss * float("nan")
        return {"loss": loss, "loss/toy": loss, "logits/toy": logits}

    def groups(self) -> dict[str, list[tuple[str, nn.Parameter]]]:
        return {
            "pretrained": list(self.bottom.named_parameters()),
            "random": list(self.top.named_parameters()),
            "head": list(self.head.named_parameters()),
        }


def toy_data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(DATA_SIZE, FEATURES, generator=g)
    w = torch.randn(FEATURES, CLASSES, generator=g)
    return x, (x @ w).argmax(dim=1)


def toy_batches(per_device: int, process_index: int = 0, num_processes: int = 1,
                seed: int = 0) -> Iterator[dict[str, Any]]:
    """An endless stream in a fixed sample order: each global micro-batch is split across processes."""
    x, y = toy_data(seed)
    position = 0
    while True:
        idx = (torch.arange(per_device * num_processes) + position) % DATA_SIZE
        position += len(idx)
        mine = idx[process_index * per_device:(process_index + 1) * per_device]
        yield {"toy": {"x": x[mine], "y": y[mine]}}


def toy_parts(per_device: int, dropout: float = 0.0, nan_at_call: int | None = None, evaluate: Any = None,
              seed: int = 0) -> TrainParts:
    torch.manual_seed(seed)
    model = ToyModel(dropout=dropout, nan_at_call=nan_at_call)
    return TrainParts(
        model=model, groups=model.groups(),
        batches=lambda rank, world: toy_batches(per_device, rank, world, seed),
        evaluate=evaluate,
        flops_per_sample=lambda m, b: 6.0 * sum(p.numel() for p in m.parameters()),
    )


def toy_accuracy(model: nn.Module) -> list[tuple[str, str, str, float]]:
    device = next(model.parameters()).device
    x, y = (t.to(device) for t in toy_data())
    with torch.no_grad():
        logits = model({"toy": {"x": x, "y": y}})["logits/toy"]
    return [("toy", "val", "accuracy", float((logits.argmax(1) == y).float().mean()))]


BASE_SETTINGS = TrainSettings(
    stage="finetune", task="toy", seed=0, total_steps=10, global_batch=8, per_device_batch=8, num_processes=1,
    accumulation=1, image_size=16, lrs={"pretrained": 1e-3, "random": 5e-3, "head": 2e-2}, weight_decay=0.01,
    warmup_ratio=0.2, decay="linear", log_every=1,
)


def settings(**changes: Any) -> TrainSettings:
    return replace(BASE_SETTINGS, **changes)
