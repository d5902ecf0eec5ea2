"""Tiny stand-in encoders and batches for the METER model tests (no registry, no weights).

They follow the encoder contract: ``forward`` → Float[B, N, D], ``.width``, ``.cls_index``
(vision), ``.vocab_size`` / ``.mask_token_id`` / ``.pad_token_id`` (text), ``lr_group``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from harness.models.config import ModelSpec
from harness.models.meter import MeterModel
from harness.registry import OBJECTIVES, TASKS
from harness.train.random_batch import add_random_fields

VOCAB, IMAGE, PATCH = 40, 32, 8
CLS_ID, SEP_ID, MASK_ID, PAD_ID = 1, 2, 3, 0
# Every objective and task of the package: a new one is tested here without editing a list (a user
# plug-in, if one is installed, brings its own tests).
_OWN_OBJECTIVES = [e for e in OBJECTIVES if e.origin.startswith("harness.")]
ALL_OBJECTIVES = tuple(e.name for e in _OWN_OBJECTIVES if not e.meta.needs_decoder)
DECODER_OBJECTIVES = tuple(e.name for e in _OWN_OBJECTIVES if e.meta.needs_decoder)
# Head info: VQA's answer vocabulary, retrieval's negatives per pair; the other tasks ignore them.
ALL_TASKS = {e.name: {"num_answers": 7, "negatives": 2} for e in TASKS if e.origin.startswith("harness.")}


class TinyVision(nn.Module):
    lr_group = "pretrained"

    def __init__(self, width: int = 24, cls: bool = True) -> None:
        super().__init__()
        self.width, self.cls_index, self.image_size = width, (0 if cls else None), IMAGE
        self.patch = nn.Conv2d(3, width, PATCH, stride=PATCH)
        self.cls = nn.Parameter(torch.randn(1, 1, width) * 0.02) if cls else None
        self.layer = nn.TransformerEncoderLayer(width, 2, 2 * width, dropout=0.0, batch_first=True)

    def forward(self, pixel_values: Tensor) -> Tensor:
        x = self.patch(pixel_values).flatten(2).transpose(1, 2)
        if self.cls is not None:
            x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)
        return self.layer(x)


class TinyText(nn.Module):
    lr_group = "pretrained"
    vocab_size, mask_token_id, pad_token_id = VOCAB, MASK_ID, PAD_ID

    def __init__(self, width: int = 20) -> None:
        super().__init__()
        self.width = width
        self.embed = nn.Embedding(VOCAB, width)
        self.layer = nn.TransformerEncoderLayer(width, 2, 2 * width, dropout=0.0, batch_first=True)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return self.layer(self.embed(input_ids), src_key_padding_mask=~attention_mask.bool())


def tiny_spec(fusion: str = "co-attention", architecture: str = "encoder-only", **kw: object) -> ModelSpec:
    base = dict(vision="clip-vit-224/32", text="bert", fusion=fusion, architecture=architecture, scale="tiny",
                weights="random", hidden=32, heads=4, fusion_layers=2, decoder_layers=2, dropout=0.0,
                max_text_len=16)
    base.update(kw)
    return ModelSpec(**base)


def tiny_model(fusion: str = "co-attention", architecture: str = "encoder-only", *, objectives=(), tasks=None,
               cls: bool = True, seed: int = 0, **kw: object) -> MeterModel:
    torch.manual_seed(seed)
    return MeterModel(TinyVision(cls=cls), TinyText(), spec=tiny_spec(fusion, architecture),
                      objectives=objectives, tasks=tasks, image_size=IMAGE,
                      special_tokens={"mask": MASK_ID, "pad": PAD_ID}, **kw)


def text_batch(batch: int, length: int = 12, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """[CLS] words [SEP] [PAD]..., with different lengths per row."""
    g = generator or torch.Generator().manual_seed(1)
    ids = torch.full((batch, length), PAD_ID)
    mask = torch.zeros(batch, length, dtype=torch.long)
    for i in range(batch):
        n = length - (i % 3) * 2
        ids[i, :n] = torch.randint(5, VOCAB, (n,), generator=g)
        ids[i, 0], ids[i, n - 1] = CLS_ID, SEP_ID
        mask[i, :n] = 1
    return ids, mask


def pair(batch: int, seed: int = 1) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids, mask = text_batch(batch, generator=g)
    return {"input_ids": ids, "attention_mask": mask, "pixel_values": torch.randn(batch, 3, IMAGE, IMAGE, generator=g)}


def full_batch(names, batch: int = 4) -> dict[str, dict[str, Tensor]]:
    """One sub-batch per objective/task name, in the layout of harness/README.md: each plug-in adds its own
    fields (``random_fields``), so a new objective or task needs no edit here."""
    out = {}
    for i, name in enumerate(names):
        g = torch.Generator().manual_seed(10 + i)
        out[name] = add_random_fields(name, pair(batch, seed=10 + i), g, ALL_TASKS.get(name), MASK_ID)
    return out
