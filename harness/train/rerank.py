"""Retrieval evaluation beyond encode-once: its FLOP bound, and an optional re-ranking mode.

Exact retrieval needs one fusion pass per (image, text) pair, so the encode-once path
(``harness.train.retrieval``) can at best save the encoders' share of the per-pair model:
``retrieval_flops`` counts both paths' FLOPs (``torch.utils.flop_counter`` on the meta device) and
their ratio is the bound on its speed-up.

Re-ranking (``rerank_score_matrix``; off by default — exact is what the paper reports) scores every
pair with a cheap first stage, the cosine of the pooled unimodal features (the encoders' projected
tokens, mean over real tokens), and runs the fusion only on each image's top-k texts and each text's
top-k images: at most (N + M)·k fusion passes instead of N·M. Pairs outside every top-k keep their
first-stage order, below every fused pair. With k ≥ max(N, M) every pair is fused: exactly the exact
matrix. Its recall can differ from exact when the first stage misses the gold pair; report both.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from harness.train.retrieval import Feats, PairScorer, take


def pooled_unimodal(feats: Feats) -> torch.Tensor:
    """Unit-length mean of each item's real tokens: Float[N, H] from ``{"tokens", "mask"}``."""
    tokens, mask = feats["tokens"], feats.get("mask")
    if mask is None:
        mean = tokens.mean(dim=1)
    else:
        weights = mask.to(tokens.dtype).unsqueeze(-1)
        mean = (tokens * weights).sum(1) / weights.sum(1).clamp_min(1.0)
    return F.normalize(mean.float(), dim=-1)


def candidates(coarse: torch.Tensor, k: int) -> torch.Tensor:
    """Bool [N, M]: each image's top-k texts and each text's top-k images by ``coarse``."""
    chosen = torch.zeros_like(coarse, dtype=torch.bool)
    n, m = coarse.shape
    chosen.scatter_(1, coarse.topk(min(k, m), dim=1).indices, True)
    chosen.scatter_(0, coarse.topk(min(k, n), dim=0).indices, True)
    return chosen


@torch.no_grad()
def rerank_shard(model: PairScorer, images: Feats, texts: Feats, k: int, head: str = "itm", pair_batch: int = 1024,
                 rank: int = 0, world: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(first-stage scores [N, M], this process's candidate pairs [P, 2], their fused scores [P]). Candidate
    pair i runs on process i mod ``world``; ``merge_rerank`` puts the gathered shards together."""
    coarse = (pooled_unimodal(images) @ pooled_unimodal(texts).T).cpu()
    pairs = candidates(coarse, k).nonzero()[rank::world]
    fused = torch.empty(len(pairs), dtype=torch.float32)
    for start in range(0, len(pairs), pair_batch):
        chunk = pairs[start:start + pair_batch]
        out = model.score_pairs(take(images, chunk[:, 0]), take(texts, chunk[:, 1]), head=head)
        fused[start:start + len(chunk)] = out.float().reshape(-1).cpu()
    return coarse, pairs, fused


def rerank_score_matrix(model: PairScorer, images: Feats, texts: Feats, k: int, head: str = "itm",
                        pair_batch: int = 1024) -> tuple[torch.Tensor, int]:
    """(scores[image, text], fusion passes) in one process: fused scores on the candidates, the first
    stage's order below them elsewhere."""
    coarse, pairs, fused = rerank_shard(model, images, texts, k, head, pair_batch)
    return _place(coarse, pairs, fused), len(pairs)


def _place(coarse: torch.Tensor, pairs: torch.Tensor, fused: torch.Tensor) -> torch.Tensor:
    """Fused scores at ``pairs``; elsewhere the cosine (in [-1, 1]) shifted below the lowest fused score."""
    floor = (fused.min() if len(fused) else torch.tensor(0.0)) - 3.0
    scores = coarse + floor
    scores[pairs[:, 0], pairs[:, 1]] = fused
    return scores


def merge_rerank(shards: list[tuple[torch.Tensor, torch.Tensor]], coarse: torch.Tensor) -> torch.Tensor:
    """Every process's (pairs, fused scores) into one matrix."""
    pairs = torch.cat([p for p, _ in shards]) if shards else torch.empty(0, 2, dtype=torch.long)
    fused = torch.cat([f for _, f in shards]) if shards else torch.empty(0)
    return _place(coarse, pairs, fused)


def retrieval_flops(spec: Any, image_size: int, text_len: int, num_images: int, num_texts: int,
                    rerank_k: int | None = None) -> dict[str, float]:
    """Forward FLOPs of retrieval evaluation over num_images × num_texts pairs: per pair with the whole
    model (METER), encode-once (each image and text once + fusion per pair), and re-ranking with k; the
    bound on encode-once's speed-up is per_pair / encode_once."""
    from torch.utils.flop_counter import FlopCounterMode

    from harness.models.params import _meta_model

    model: Any = _meta_model(spec, ("itm",), None, image_size).eval()
    with torch.device("meta"):
        pixels = torch.zeros(1, 3, image_size, image_size)
        ids = torch.zeros(1, text_len, dtype=torch.long)
        mask = torch.ones(1, text_len, dtype=torch.long)

    def count(fn: Any) -> tuple[float, Any]:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            out = fn()
        return float(counter.get_total_flops()), out

    image_f, image = count(lambda: model.encode_image(pixels))
    # No attention mask to the text encoder: transformers asks whether it is all ones (no answer on the
    # meta device); unpadded, the FLOPs are the same.
    text_f, tokens = count(lambda: model.inputs.text(model.text(ids, None)))
    text = {"tokens": tokens, "mask": mask}
    pair_f, _ = count(lambda: model.score_pairs(image, text, head="itm"))
    pairs = num_images * num_texts
    encode = num_images * image_f + num_texts * text_f
    out = {"image_encoder": image_f, "text_encoder": text_f, "fusion_and_head": pair_f,
           "per_pair": pairs * (image_f + text_f + pair_f), "encode_once": encode + pairs * pair_f}
    out["bound"] = out["per_pair"] / out["encode_once"]
    if rerank_k is not None:
        fused = min(pairs, (num_images + num_texts) * rerank_k)
        width = int(image.get("tokens").shape[-1])
        out["rerank"] = encode + fused * pair_f + 2.0 * pairs * width
        out["rerank_fusion_passes"] = float(fused)
    return out
