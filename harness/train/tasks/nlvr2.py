"""NLVR2: two images and a statement → true (1) / false (0). Both image-text pairs are fused
separately (the second image with token type 2) and their pooled features concatenated."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from harness.train.plugin import BatchContext, RandomContext
from harness.train.tasks.classify import ClassifierTask

if TYPE_CHECKING:
    from harness.models.meter import MeterModel


class NLVR2(ClassifierTask):
    classes = 2
    pairs_per_example = 2

    def features(self, model: MeterModel, sub: Mapping[str, Any]) -> Tensor:
        image = model.encode_image(sub["pixel_values"])
        text = model.encode_text(sub["input_ids"], sub["attention_mask"])
        pooled = model.pair_features(image, text)
        second = model.encode_image(sub["pixel_values_2"], type_id=2)
        return torch.cat([pooled, model.pair_features(second, text)], dim=-1)

    def batch_fields(self, sub: dict[str, Any], samples: list[dict[str, Any]], ctx: BatchContext) -> dict[str, Any]:
        sub["pixel_values_2"] = torch.stack([s["image_2"] for s in samples])
        return super().batch_fields(sub, samples, ctx)

    def random_fields(self, sub: dict[str, Any], ctx: RandomContext) -> dict[str, Any]:
        sub["pixel_values_2"] = torch.randn(sub["pixel_values"].shape, generator=ctx.generator)
        return super().random_fields(sub, ctx)

    def after_pretrained_load(self, model: MeterModel, state: Mapping[str, Tensor]) -> None:
        model.inputs.init_second_image()  # METER: the second image's type embedding starts as the image's
