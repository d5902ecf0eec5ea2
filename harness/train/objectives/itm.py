"""Image-text matching: the sampler swaps in a random other image for a share of the pairs
(``pretrain.itm_neg_prob``); a linear head on the pooled pair feature says match / no match.
Its positive logit also ranks pairs for zero-shot retrieval (``score_pairs(head="itm")``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harness.models.fusion import init_new_weights
from harness.models.heads import Head
from harness.train.plugin import BatchContext, Objective, RandomContext

if TYPE_CHECKING:
    from harness.models.meter import MeterModel


class ITMHead(Head):
    """Linear(pooled → 2); class 1 = the image and the text match."""

    def __init__(self, pooled: int) -> None:
        super().__init__()
        self.fc = nn.Linear(pooled, 2)
        init_new_weights(self)

    def forward(self, pooled: Tensor) -> Tensor:
        return self.fc(pooled)


class ImageTextMatching(Objective):
    label_key = "itm_labels"
    sampler_draw = "itm"
    score_name = "itm"

    def build_head(self, model: MeterModel, info: Mapping[str, Any]) -> nn.Module:
        return ITMHead(model.pooled_dim)

    def batch_fields(self, sub: dict[str, Any], samples: list[dict[str, Any]], ctx: BatchContext) -> dict[str, Any]:
        sub["pixel_values"] = torch.stack([s.get("neg_image", s["image"]) for s in samples])
        sub["itm_labels"] = torch.tensor([s.get("itm_label", 1) for s in samples], dtype=torch.long)
        return sub

    def random_fields(self, sub: dict[str, Any], ctx: RandomContext) -> dict[str, Any]:
        sub["itm_labels"] = torch.randint(0, 2, (len(sub["input_ids"]),), generator=ctx.generator)
        return sub

    def loss(self, model: MeterModel, sub: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
        image = model.encode_image(sub["pixel_values"])
        pooled = model.pair_features(image, model.encode_text(sub["input_ids"], sub["attention_mask"]))
        logits = model.heads[self.name](pooled)
        return F.cross_entropy(logits, sub["itm_labels"]), logits

    def pair_score(self, head: nn.Module, pooled: Tensor) -> Tensor:
        return head(pooled)[:, 1]
