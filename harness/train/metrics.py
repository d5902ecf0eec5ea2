"""Evaluation metrics: VQA soft score, accuracy, retrieval recall in both directions."""

from __future__ import annotations

from collections.abc import Sequence

import torch

RECALL_KS = (1, 5, 10)


def vqa_score(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-example VQA score: the soft target score (0, .3, .6, .9, 1) of the argmax answer."""
    best = logits.argmax(dim=-1, keepdim=True)
    return targets.gather(-1, best).squeeze(-1).float()


def correct(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-example 1.0 / 0.0: is the argmax class the label."""
    return (logits.argmax(dim=-1) == labels).float()


def retrieval_recalls(
    scores: torch.Tensor, text_to_image: Sequence[int], ks: Sequence[int] = RECALL_KS
) -> dict[str, float]:
    """Recall@K from a score matrix ``scores[image, text]``.

    IR (image retrieval) = text → image: for each text, is its image among the K best images.
    TR (text retrieval) = image → text: for each image, is any of its texts among the K best.
    Ties count against the model (a constant scorer gets ~0, never a perfect score).
    """
    num_images, num_texts = scores.shape
    gt = torch.as_tensor(list(text_to_image), dtype=torch.long, device=scores.device)
    if gt.numel() != num_texts:
        raise ValueError(f"text_to_image has {gt.numel()} entries for {num_texts} texts")
    if num_texts and (gt.min() < 0 or gt.max() >= num_images):
        raise ValueError(f"text_to_image points outside the {num_images} images")
    scores = scores.float()
    text_idx = torch.arange(num_texts, device=scores.device)
    # IR: rank of the gold image among all images, per text (others scoring >= gold count).
    gold = scores[gt, text_idx]
    ir_rank = (scores >= gold.unsqueeze(0)).sum(dim=0) - 1
    # TR: rank of the best gold text among all texts, per image.
    is_gold = torch.zeros_like(scores, dtype=torch.bool)
    is_gold[gt, text_idx] = True
    best_gold = scores.masked_fill(~is_gold, float("-inf")).max(dim=1).values
    has_text = is_gold.any(dim=1)
    tr_rank = (scores.masked_fill(is_gold, float("-inf")) >= best_gold.unsqueeze(1)).sum(dim=1)
    tr_rank = tr_rank[has_text]
    out: dict[str, float] = {}
    for k in ks:
        out[f"ir_r{k}"] = float((ir_rank < k).float().mean()) if num_texts else 0.0
        out[f"tr_r{k}"] = float((tr_rank < k).float().mean()) if tr_rank.numel() else 0.0
    out["rsum"] = sum(out[f"{d}_r{k}"] for d in ("ir", "tr") for k in ks)
    return out
