"""Random MLM + ITM pre-training batches of the right shapes (no data, no tokenizer): what
``benches/gpu_check.py`` times and the compiled-vs-eager test trains on."""

from __future__ import annotations

from typing import Any

import torch

TEXT_LEN = 50  # METER's max_text_len for pre-training


def random_pretrain_batch(batch: int, image_size: int, vocab: int, device: torch.device | str = "cpu",
                          text_len: int = TEXT_LEN, seed: int = 0) -> dict[str, dict[str, Any]]:
    """``{"mlm": ..., "itm": ...}`` sub-batches of random tensors on ``device``; 15 % of the MLM tokens
    labelled, the last quarter of each text padded (so attention masks are exercised)."""
    g = torch.Generator(device="cpu").manual_seed(seed)

    def pair() -> dict[str, torch.Tensor]:
        mask = torch.ones(batch, text_len, dtype=torch.long)
        mask[:, text_len - text_len // 4:] = 0
        return {"input_ids": torch.randint(5, vocab, (batch, text_len), generator=g), "attention_mask": mask,
                "pixel_values": torch.randn(batch, 3, image_size, image_size, generator=g)}

    mlm, itm = pair(), pair()
    labels = torch.full((batch, text_len), -100, dtype=torch.long)
    chosen = (torch.rand(batch, text_len, generator=g) < 0.15) & mlm["attention_mask"].bool()
    labels[chosen] = mlm["input_ids"][chosen]
    mlm["mlm_labels"] = labels
    itm["itm_labels"] = torch.randint(0, 2, (batch,), generator=g)
    return {k: {n: t.to(device) for n, t in sub.items()} for k, sub in {"mlm": mlm, "itm": itm}.items()}
