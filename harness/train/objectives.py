"""Pre-training objectives: what the trainer adds around the model's own losses.

The losses themselves run inside ``MeterModel.forward`` (DDP needs every head in the
wrapped forward); an ``Objective`` computes the train-time metrics of its outputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from harness.registry import OBJECTIVES


@dataclass(frozen=True)
class Objective:
    name: str
    # Label key in the sub-batch whose argmax accuracy is worth logging (None: loss only).
    label_key: str | None = None

    def train_metrics(self, outputs: Mapping[str, Any], sub_batch: Mapping[str, Any] | None) -> dict[str, torch.Tensor]:
        """``{"acc/<name>": accuracy}`` over labelled positions (-100 = none), when the objective has labels."""
        logits = outputs.get(f"logits/{self.name}")
        if self.label_key is None or logits is None or sub_batch is None or self.label_key not in sub_batch:
            return {}
        labels = sub_batch[self.label_key].to(logits.device)
        with torch.no_grad():
            predicted = logits.argmax(dim=-1)
            if predicted.shape != labels.shape:  # e.g. the model predicts only at masked positions
                return {}
            keep = labels != -100
            hits = (predicted == labels) & keep
            return {f"acc/{self.name}": hits.sum().float() / keep.sum().clamp(min=1).float()}


_LABELS = {"mlm": "mlm_labels", "itm": "itm_labels"}


def build_objective(name: str, **kwargs: Any) -> Objective:
    if name not in OBJECTIVES:
        raise ValueError(OBJECTIVES.unknown_message(name))
    return Objective(name, _LABELS.get(name))


def objectives_metrics(names: Sequence[str]) -> Any:
    """A ``step_metrics`` callable for the loop: every objective's train metrics on its sub-batch."""
    objectives = [OBJECTIVES.build(name) for name in names]

    def step_metrics(outputs: Mapping[str, Any], batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for objective in objectives:
            out.update(objective.train_metrics(outputs, batch.get(objective.name)))
        return out

    return step_metrics
