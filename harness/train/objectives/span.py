"""T5-style span corruption through the decoder (encoder-decoder architecture only): the
encoder sees each corrupted span as one mask token, the decoder reconstructs the spans behind
sentinels (``harness.models.span``); the head predicts over the decoder vocabulary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from harness.models.heads import Head
from harness.models.span import span_corrupt
from harness.train.objectives.mlm import MLMHead, token_cross_entropy
from harness.train.plugin import Objective

if TYPE_CHECKING:
    from harness.models.meter import MeterModel


class SpanHead(Head):
    """Decoder output → logits over the decoder vocabulary (text vocab + sentinels)."""

    def __init__(self, hidden: int, vocab_size: int) -> None:
        super().__init__()
        self.inner = MLMHead(hidden, vocab_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.inner(x)


class SpanCorruption(Objective):
    needs_special_tokens = True

    def build_head(self, model: MeterModel, info: Mapping[str, Any]) -> nn.Module:
        if model.decoder_vocab is None:
            raise ValueError(f"objective '{self.name}' needs model.architecture: encoder-decoder")
        if "mask" not in model.special_tokens:
            raise ValueError(f"objective '{self.name}' needs the text tokenizer's mask token id "
                             "(special_tokens={'mask': ..., 'pad': ...})")
        return SpanHead(model.spec.hidden, model.decoder_vocab.output_size)

    def loss(self, model: MeterModel, sub: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
        assert model.decoder is not None and model.decoder_vocab is not None
        corrupted = span_corrupt(sub["input_ids"], sub["attention_mask"], vocab=model.decoder_vocab,
                                 mask_token_id=model.special_tokens["mask"],
                                 pad_token_id=model.special_tokens.get("pad", 0))
        image = model.encode_image(sub["pixel_values"])
        text = model.encode_text(corrupted.input_ids, corrupted.attention_mask)
        memory, memory_mask = model.memory(*model.fuse(image, text), image, text)
        hidden = model.decoder(corrupted.decoder_input_ids, memory, memory_mask, corrupted.decoder_attention_mask)
        logits = model.heads[self.name](hidden)
        return token_cross_entropy(logits, corrupted.labels), logits
