"""A harness model's weights written the way METER writes its checkpoints (for tests that need a
METER-format file of a given harness architecture): the inverse of harness.importers.meter_keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from harness.importers.meter_keys import meter_source


def meter_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, value in model.state_dict().items():
        source = meter_source(key)
        if source is None:
            continue
        if source.join == "cat":
            parts = value.chunk(len(source.meter), dim=0)
        elif source.join == "cls":
            parts = (value.reshape(-1),)
        elif source.join == "pos":
            parts = (value.squeeze(0),)
        else:
            parts = (value,)
        out.update({name: part.clone() for name, part in zip(source.meter, parts, strict=True)})
    return out


def write_meter_checkpoint(model: Any, path: Path, *, tokenizer: str) -> Path:
    config = {"vit": "ViT-B/16", "tokenizer": tokenizer, "num_heads": model.spec.heads,
              "hidden_size": model.spec.hidden, "num_top_layer": model.spec.fusion_layers}
    torch.save({"epoch": 0, "global_step": 7, "pytorch-lightning_version": "1.3.2",
                "state_dict": meter_state(model), "hyper_parameters": {"config": config}}, path)
    return path
