"""Masked language modelling: whole-word masking in the collator (15 %, 80/10/10), BERT's
prediction head over the fused text tokens (not tied to the word embeddings)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harness.data.collate import mask_like_meter, mask_whole_words
from harness.data.loaders import mix_seed
from harness.models.fusion import init_new_weights
from harness.models.heads import Head
from harness.train.plugin import BatchContext, Objective, RandomContext

if TYPE_CHECKING:
    from harness.models.meter import MeterModel


class MLMHead(Head):
    """BERT's prediction head: Linear + GELU + LayerNorm, then Linear to the vocabulary (not tied)."""

    def __init__(self, hidden: int, vocab_size: int) -> None:
        super().__init__()
        self.transform = nn.Linear(hidden, hidden)
        self.norm = nn.LayerNorm(hidden, eps=1e-12)
        self.decoder = nn.Linear(hidden, vocab_size)
        init_new_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.norm(F.gelu(self.transform(x))))


def token_cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean CE over labelled tokens (-100 = none); 0 with a gradient when none is labelled. A sum over
    a clamped count rather than a check for labels, which would wait for the device in every step."""
    labels = labels.to(logits.device)
    summed = F.cross_entropy(logits.flatten(0, -2).float(), labels.flatten(), ignore_index=-100, reduction="sum")
    return summed / (labels != -100).sum().clamp(min=1)


class MaskedLanguageModelling(Objective):
    label_key = "mlm_labels"

    def build_head(self, model: MeterModel, info: Mapping[str, Any]) -> nn.Module:
        return MLMHead(model.spec.hidden, int(model.text.vocab_size))

    def batch_fields(self, sub: dict[str, Any], samples: list[dict[str, Any]], ctx: BatchContext) -> dict[str, Any]:
        g = torch.Generator().manual_seed(mix_seed(ctx.seed, int(sub["index"][0]), 7))
        mask = mask_like_meter if ctx.mlm_masking == "meter" else mask_whole_words
        sub["input_ids"], sub["mlm_labels"] = mask(ctx.encoding, ctx.tokenizer, ctx.mlm_prob, g)
        return sub

    def random_fields(self, sub: dict[str, Any], ctx: RandomContext) -> dict[str, Any]:
        """15 % of the real tokens (at least the first word) masked and labelled."""
        ids, real = sub["input_ids"], sub["attention_mask"].bool()
        chosen = (torch.rand(ids.shape, generator=ctx.generator) < 0.15) & real
        chosen[:, 1] = real[:, 1]
        sub["mlm_labels"] = torch.where(chosen, ids, torch.full_like(ids, -100))
        sub["input_ids"] = torch.where(chosen, torch.full_like(ids, ctx.mask_token_id), ids)
        return sub

    def loss(self, model: MeterModel, sub: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
        image = model.encode_image(sub["pixel_values"])
        fused_text, _ = model.fuse(image, model.encode_text(sub["input_ids"], sub["attention_mask"]))
        logits = model.heads[self.name](fused_text)
        return token_cross_entropy(logits, sub["mlm_labels"]), logits
