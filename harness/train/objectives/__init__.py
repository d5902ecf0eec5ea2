"""Pre-training objectives, one module each (``mlm``, ``itm``, ``mim``, ``span``): every module
owns its head, batch fields, loss and train metrics (the contract is ``harness.train.plugin``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

StepMetrics = Callable[[Mapping[str, Any], Mapping[str, Any]], dict[str, torch.Tensor]]


def objectives_metrics(names: Sequence[str]) -> StepMetrics:
    """A ``step_metrics`` callable for the loop: every objective's train metrics on its sub-batch."""
    from harness.registry import OBJECTIVES

    objectives = [OBJECTIVES.build_plugin(name) for name in names]

    def step_metrics(outputs: Mapping[str, Any], batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for objective in objectives:
            out.update(objective.train_metrics(outputs, batch.get(objective.name)))
        return out

    return step_metrics
