"""Random batches of the right shapes for any registered objectives and tasks (no data, no tokenizer):
what ``benches/gpu_check.py`` and ``benches/bench_trainer.py`` time, the compiled-vs-eager test trains on
and the model tests run every plug-in through. Each plug-in fills its own fields (``random_fields``),
so a new objective or task needs no edit here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from harness.train.plugin import RandomContext

TEXT_LEN = 50  # METER's max_text_len for pre-training
MASK_ID = 4  # random words are ids 5 and up; 0-4 stand for the special tokens


def random_pair(batch: int, image_size: int, vocab: int, text_len: int, g: torch.Generator) -> dict[str, Any]:
    """Clean image-text pairs: random ids, the last quarter of each text padded (attention masks exercised)."""
    mask = torch.ones(batch, text_len, dtype=torch.long)
    mask[:, text_len - text_len // 4:] = 0
    return {"input_ids": torch.randint(5, vocab, (batch, text_len), generator=g), "attention_mask": mask,
            "pixel_values": torch.randn(batch, 3, image_size, image_size, generator=g)}


def plugin(name: str) -> Any:
    """The objective or task plug-in registered as ``name``."""
    from harness.registry import OBJECTIVES, TASKS

    return (OBJECTIVES if name in OBJECTIVES else TASKS).build_plugin(name)


def add_random_fields(name: str, sub: dict[str, Any], g: torch.Generator, info: Mapping[str, Any] | None = None,
                      mask_token_id: int = MASK_ID) -> dict[str, Any]:
    return plugin(name).random_fields(sub, RandomContext(g, mask_token_id, info or {}))


def random_batch(names: Sequence[str], batch: int, image_size: int, vocab: int, device: torch.device | str = "cpu",
                 text_len: int = TEXT_LEN, seed: int = 0, info: Mapping[str, Mapping[str, Any]] | None = None,
                 mask_token_id: int = MASK_ID) -> dict[str, dict[str, Any]]:
    """``{name: sub-batch}`` of random tensors on ``device``, one per objective or task name; ``info``: each
    task's head info, as ``build_model(tasks=...)`` gets it (VQA: num_answers)."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    out = {}
    for name in names:
        sub = add_random_fields(name, random_pair(batch, image_size, vocab, text_len, g), g,
                                (info or {}).get(name), mask_token_id)
        out[name] = {k: v.to(device) for k, v in sub.items()}
    return out


def random_pretrain_batch(batch: int, image_size: int, vocab: int, device: torch.device | str = "cpu",
                          text_len: int = TEXT_LEN, seed: int = 0) -> dict[str, dict[str, Any]]:
    """METER's MLM + ITM pre-training step (what the benches and the GPU check time)."""
    return random_batch(("mlm", "itm"), batch, image_size, vocab, device, text_len, seed)
