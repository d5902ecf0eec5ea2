"""Pre-training loops of the tiny zoo: MLM for text encoders, scene attributes for vision encoders.

Small on purpose (a few hundred steps at width 64): the point is encoders whose weights carry
something learned from the synthetic world, so "pre-trained vs random" and "which encoder" are
meaningful comparisons on a CPU, not state-of-the-art numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

OnStep = Callable[[float], None]


def _schedule(optimizer: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    warmup = max(1, steps // 10)

    def factor(step: int) -> float:
        return min((step + 1) / warmup, max(0.0, (steps - step) / max(1, steps - warmup)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def mask_tokens(input_ids: torch.Tensor, special: torch.Tensor, tokenizer: Any, generator: torch.Generator,
                prob: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking: ``prob`` of the non-special tokens are predicted; of those 80% become [MASK],
    10% a random word, 10% stay. Returns (masked ids, labels with -100 where nothing is predicted)."""
    chosen = (torch.rand(input_ids.shape, generator=generator) < prob) & ~special
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    roll = torch.rand(input_ids.shape, generator=generator)
    ids = input_ids.clone()
    ids[chosen & (roll < 0.8)] = tokenizer.mask_token_id
    random_words = torch.randint(len(tokenizer.all_special_ids), len(tokenizer), input_ids.shape, generator=generator)
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    ids[swap] = random_words[swap]
    return ids, labels


def train_text_mlm(family: str, tokenizer: Any, corpus: list[str], *, steps: int, batch: int, lr: float,
                   seed: int, on_step: OnStep | None = None) -> tuple[nn.Module, dict[str, float]]:
    """MLM-pre-train the tiny ``family`` model on ``corpus``; returns (base model without the MLM head,
    stats)."""
    from harness.models.text_families import mlm_model_from_config, tiny_config

    torch.manual_seed(seed)
    model = mlm_model_from_config(family, tiny_config(family, tokenizer))
    enc = tokenizer(corpus, padding=True, truncation=True, max_length=64, return_tensors="pt",
                    return_special_tokens_mask=True)
    special = enc["special_tokens_mask"].bool() | (enc["attention_mask"] == 0)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    scheduler = _schedule(optimizer, steps)
    model.train()
    losses: list[float] = []
    for _ in range(steps):
        idx = torch.randint(0, len(corpus), (batch,), generator=generator)
        mask = enc["attention_mask"][idx]
        width = int(mask.sum(1).max())
        ids, labels = mask_tokens(enc["input_ids"][idx, :width], special[idx, :width], tokenizer, generator)
        loss = model(input_ids=ids, attention_mask=mask[:, :width], labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        if on_step:
            on_step(losses[-1])
    model.eval()
    return getattr(model, model.base_model_prefix), {"first_loss": losses[0], "final_loss": _tail(losses)}


def _tail(values: list[float]) -> float:
    tail = values[-max(1, len(values) // 10):]
    return float(sum(tail) / len(tail))


class AttributeHeads(nn.Module):
    """One linear head per scene label: cross-entropy for class labels [N], BCE for multi-hot [N,C]."""

    def __init__(self, width: int, labels: dict[str, np.ndarray]) -> None:
        super().__init__()
        self.multi_hot = {k: v.ndim == 2 for k, v in labels.items()}
        sizes = {k: (v.shape[1] if v.ndim == 2 else int(v.max()) + 1) for k, v in labels.items()}
        self.heads = nn.ModuleDict({k: nn.Linear(width, n) for k, n in sizes.items()})

    def loss(self, pooled: torch.Tensor, targets: dict[str, torch.Tensor]) -> tuple[torch.Tensor, float]:
        """(summed loss, mean accuracy of the class labels)."""
        total, accs = pooled.new_zeros(()), []
        for key, head in self.heads.items():
            logits = head(pooled)
            if self.multi_hot[key]:
                total = total + nn.functional.binary_cross_entropy_with_logits(logits, targets[key].float())
            else:
                total = total + nn.functional.cross_entropy(logits, targets[key])
                accs.append(float((logits.argmax(-1) == targets[key]).float().mean()))
        return total, float(np.mean(accs)) if accs else 0.0


def normalise(images: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 [N,H,W,3] → Float[N,3,H,W] normalised with the encoder's mean/std."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def train_vision_attributes(name: str, images: np.ndarray, labels: dict[str, np.ndarray], *, steps: int,
                            batch: int, lr: float, seed: int,
                            on_step: OnStep | None = None) -> tuple[nn.Module, dict[str, float]]:
    """Pre-train the tiny timm backbone of ``name`` to predict the scene labels from its pooled token
    (CLS, or the token mean for Swin); returns (backbone, stats)."""
    from harness.models.vision_families import TINY_IMAGE_SIZE, VisionEncoder, create_backbone, vision_meta

    torch.manual_seed(seed)
    meta = vision_meta(name)
    # Pre-trained in its own native form; METER's CLIP changes apply when the encoder is used.
    encoder = VisionEncoder(create_backbone(name, "tiny", TINY_IMAGE_SIZE), name=name, family=meta["family"],
                            clip_meter_style=False, image_size=TINY_IMAGE_SIZE)
    heads = AttributeHeads(encoder.width, labels)
    pixels = normalise(images, meta["mean"], meta["std"])
    targets = {k: torch.from_numpy(v).long() for k, v in labels.items()}
    params = list(encoder.parameters()) + list(heads.parameters())
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    scheduler = _schedule(optimizer, steps)
    generator = torch.Generator().manual_seed(seed)
    encoder.train()
    losses, accs = [], []
    for _ in range(steps):
        idx = torch.randint(0, len(pixels), (batch,), generator=generator)
        loss, acc = heads.loss(encoder.pooled(encoder(pixels[idx])), {k: v[idx] for k, v in targets.items()})
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        accs.append(acc)
        if on_step:
            on_step(losses[-1])
    encoder.eval()
    return encoder.backbone, {"first_loss": losses[0], "final_loss": _tail(losses), "final_acc": _tail(accs)}
