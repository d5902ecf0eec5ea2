"""Image-text retrieval: each training image comes with its caption and k negative captions of
other images; a rank head scores every (image, caption) pair and cross-entropy picks the positive.
Evaluation ranks every pair of the split (``harness.train.retrieval``) by the rank head
(fine-tuned) or the ITM head (zero-shot after pre-training)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harness.data.collate import tokenize
from harness.models.fusion import init_new_weights
from harness.models.heads import Head
from harness.train.plugin import BatchContext, RandomContext, Task
from harness.train.retrieval import evaluate_retrieval

if TYPE_CHECKING:
    from harness.models.meter import MeterModel


class RankHead(Head):
    """Retrieval score Linear(pooled → 1); METER starts it from the ITM head's positive row."""

    # METER's set_schedule: "rank_output" is not among its head names, so it trains at the base LR.
    meter_lr_group = "pretrained"

    def __init__(self, pooled: int, itm: bool = False) -> None:
        super().__init__()
        self.fc = nn.Linear(pooled, 1)
        init_new_weights(self)
        # finetune.retrieval.loss "itm+irtr": METER's ITM term runs through the pre-trained ITM head, frozen.
        self.itm: nn.Linear | None = None
        if itm:
            self.itm = nn.Linear(pooled, 2)
            init_new_weights(self.itm)
            self.itm.requires_grad_(False)

    @torch.no_grad()
    def init_from_itm(self, itm_weight: Tensor, itm_bias: Tensor) -> None:
        self.fc.weight.copy_(itm_weight[1:2])
        self.fc.bias.copy_(itm_bias[1:2])
        if self.itm is not None:
            self.itm.weight.copy_(itm_weight)
            self.itm.bias.copy_(itm_bias)

    def forward(self, pooled: Tensor) -> Tensor:
        return self.fc(pooled).squeeze(-1)


class Retrieval(Task):
    sampler_draw = "retrieval"
    score_name = "rank"

    def __init__(self, name: str | None = None, head: str = "rank") -> None:
        super().__init__(name)
        self.head = head  # which score ranks the pairs at evaluation: "rank" or "itm" (zero-shot)

    def build_head(self, model: MeterModel, info: Mapping[str, Any]) -> nn.Module:
        return RankHead(model.pooled_dim, itm=bool(info.get("itm")))

    def info(self, table: Any, finetune: Any) -> dict[str, Any]:
        return {"negatives": finetune.negatives if finetune is not None else 15,
                "itm": finetune is not None and getattr(finetune, "loss", "irtr") == "itm+irtr"}

    def batch_fields(self, sub: dict[str, Any], samples: list[dict[str, Any]], ctx: BatchContext) -> dict[str, Any]:
        if "neg_texts" not in samples[0]:
            return sub
        texts = [t for s in samples for t in [s["text"], *s["neg_texts"]]]
        enc = tokenize(ctx.tokenizer, texts, ctx.max_len)
        per = 1 + len(samples[0]["neg_texts"])
        sub["input_ids"] = enc["input_ids"].view(len(samples), per, -1)
        sub["attention_mask"] = enc["attention_mask"].view(len(samples), per, -1)
        if "itm_label" in samples[0]:  # METER's ITM term: the positive caption with its image or a false one
            sub["itm_pixel_values"] = torch.stack([s.get("neg_image", s["image"]) for s in samples])
            sub["itm_labels"] = torch.tensor([s["itm_label"] for s in samples], dtype=torch.long)
        return sub

    def random_fields(self, sub: dict[str, Any], ctx: RandomContext) -> dict[str, Any]:
        """The k = ``info["negatives"]`` (default 15) negatives of each pair are other pairs' captions."""
        ids, mask = sub["input_ids"], sub["attention_mask"]
        shifts = range(1 + int(ctx.info.get("negatives", 15)))
        sub["input_ids"] = torch.stack([ids.roll(j, dims=0) for j in shifts], dim=1)
        sub["attention_mask"] = torch.stack([mask.roll(j, dims=0) for j in shifts], dim=1)
        if ctx.info.get("itm"):
            labels = torch.randint(0, 2, (len(ids),), generator=ctx.generator)
            pixels = sub["pixel_values"]  # label 0: another pair's image
            sub["itm_pixel_values"] = torch.where(labels[:, None, None, None] == 1, pixels, pixels.roll(1, dims=0))
            sub["itm_labels"] = labels
        return sub

    def loss(self, model: MeterModel, sub: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
        image = model.encode_image(sub["pixel_values"])
        ids, mask = sub["input_ids"], sub["attention_mask"]
        b, options, length = ids.shape
        text = model.encode_text(ids.reshape(b * options, length), mask.reshape(b * options, length))
        # Each image is encoded once and repeated for its 1 + k captions.
        rows = torch.arange(b, device=ids.device).repeat_interleave(options)
        image = {k: v.index_select(0, rows) for k, v in image.items()}
        head: Any = model.heads[self.name]
        scores = head(model.pair_features(image, text)).view(b, options)
        target = torch.zeros(b, dtype=torch.long, device=scores.device)
        loss = F.cross_entropy(scores, target)
        if head.itm is not None and "itm_labels" in sub:  # METER: itm and irtr losses summed
            positive = model.encode_text(ids[:, 0], mask[:, 0])
            pooled = model.pair_features(model.encode_image(sub["itm_pixel_values"]), positive)
            loss = loss + F.cross_entropy(head.itm(pooled), sub["itm_labels"])
        return loss, scores

    def pair_score(self, head: nn.Module, pooled: Tensor) -> Tensor:
        return head(pooled)

    def after_pretrained_load(self, model: MeterModel, state: Mapping[str, Tensor]) -> None:
        if "heads.itm.fc.weight" in state:  # METER: the rank head starts from ITM's positive row
            head = model.heads[self.name]
            assert isinstance(head, RankHead)
            head.init_from_itm(state["heads.itm.fc.weight"], state["heads.itm.fc.bias"])

    def evaluate(self, model: nn.Module, data: Any, split: str, **kwargs: Any) -> dict[str, float]:
        return evaluate_retrieval(model, data.retrieval_set(split, kwargs.get("dataset")), head=self.head)
