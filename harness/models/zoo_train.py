"""The tiny zoo's shared training pieces: the optimisation loop, BERT masking, scene-label heads.
The recipes themselves are in :mod:`harness.models.zoo_text` and :mod:`harness.models.zoo_vision`.

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


def run_steps(model: nn.Module, step_loss: Callable[[], Any], *, steps: int, lr: float,
              on_step: OnStep | None = None, params: list[nn.Parameter] | None = None) -> dict[str, float]:
    """The zoo's optimisation, shared by every recipe: AdamW (wd 0.01), 10 % warm-up then linear decay.
    ``step_loss()`` returns the loss of one fresh batch, or (loss, accuracy)."""
    optimizer = torch.optim.AdamW(params if params is not None else model.parameters(), lr=lr, weight_decay=0.01)
    scheduler = _schedule(optimizer, steps)
    model.train()
    losses: list[float] = []
    accs: list[float] = []
    for _ in range(steps):
        out = step_loss()
        loss, acc = out if isinstance(out, tuple) else (out, None)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        if acc is not None:
            accs.append(acc)
        if on_step:
            on_step(losses[-1])
    model.eval()
    stats = {"first_loss": losses[0], "final_loss": _tail(losses)}
    if accs:
        stats["final_acc"] = _tail(accs)
    return stats


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

    @torch.no_grad()
    def decide(self, pooled: torch.Tensor) -> dict[str, torch.Tensor]:
        """Hard decisions (a teacher's targets): the argmax class, or each multi-hot bit above 0.5."""
        return {key: (head(pooled) > 0).long() if self.multi_hot[key] else head(pooled).argmax(-1)
                for key, head in self.heads.items()}

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
