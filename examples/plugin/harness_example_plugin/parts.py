"""The example plug-in's implementations (torch): imported only when a registry entry is built."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harness.models.heads import Head
from harness.train.plugin import BatchContext, Objective
from harness.train.tasks.classify import ClassifierTask


class PatchMLPEncoder(nn.Module):
    """Image → tokens [CLS, patches]: the vision-encoder contract (``width``, ``cls_index``, ``lr_group``)."""

    lr_group = "pretrained"

    def __init__(self, *, spec: Any = None, image_size: int | None = None, width: int = 48, patch: int = 16) -> None:
        super().__init__()
        self.width, self.cls_index, self.image_size = width, 0, image_size or 64
        self.embed = nn.Conv2d(3, width, patch, stride=patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, width))
        self.norm = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))

    def forward(self, pixel_values: Tensor) -> Tensor:
        x = self.embed(pixel_values).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)
        return x + self.mlp(self.norm(x))


class ContrastiveHead(Head):
    def __init__(self, hidden: int, dim: int = 32) -> None:
        super().__init__()
        self.image = nn.Linear(hidden, dim)
        self.text = nn.Linear(hidden, dim)
        self.log_scale = nn.Parameter(torch.tensor(2.659))  # log(1 / 0.07), CLIP's start


class ImageTextContrastive(Objective):
    """Symmetric InfoNCE between the projected image and text CLS tokens (before fusion)."""

    def build_head(self, model: Any, info: Mapping[str, Any]) -> nn.Module:
        return ContrastiveHead(model.spec.hidden)

    def loss(self, model: Any, sub: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
        head = model.heads[self.name]
        image = model.encode_image(sub["pixel_values"])["tokens"][:, 0]
        text = model.encode_text(sub["input_ids"], sub["attention_mask"])["tokens"][:, 0]
        logits = F.normalize(head.image(image), dim=-1) @ F.normalize(head.text(text), dim=-1).t()
        logits = logits * head.log_scale.exp().clamp(max=100)
        target = torch.arange(len(logits), device=logits.device)
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2, logits


class Entailment(ClassifierTask):
    """SNLI-VE's samples (label 2 = entailment) as a binary task: 1 = the image entails the text."""

    classes = 2

    def batch_fields(self, sub: dict[str, Any], samples: list[dict[str, Any]], ctx: BatchContext) -> dict[str, Any]:
        sub["labels"] = torch.tensor([int(s["label"] == 2) for s in samples], dtype=torch.long)
        return sub
