"""Parameter counts per LR group and FLOPs per sample, for a ModelSpec, without weights.

The model is built on PyTorch's ``meta`` device (shapes only, no memory, no download) with
``weights="random"``, so counting the paper-scale model takes seconds and no RAM. FLOPs are
counted by ``torch.utils.flop_counter`` on a meta forward of one image-text pair; when that
cannot run, an analytic transformer estimate from the catalog's metadata stands in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from harness.models.config import ModelSpec
from harness.models.estimate import analytic_flops

if TYPE_CHECKING:
    from harness.models.meter import MeterModel

PAPER_SPEC = dict(vision="clip-vit-224/16", text="roberta", fusion="co-attention", architecture="encoder-only",
                  scale="paper", weights="random", hidden=768, heads=12, fusion_layers=6)
PAPER_PRETRAIN_SIZE = 288  # METER-CLIP-ViT-B pre-trains at 288 px (grids/main.yaml)


def _meta_model(spec: ModelSpec, objectives: Sequence[str], tasks: Mapping[str, Mapping[str, Any]] | None,
                image_size: int | None) -> MeterModel:
    from harness.models.meter import build_model

    # Shapes never depend on where weights live (placement): a moved or not-yet-fetched weights_dir
    # must not stop `plan` from counting (tiny scale reads only the zoo tokenizer's vocabulary).
    spec = spec.model_copy(update={"weights": "random", "weights_dir": None})
    with torch.device("meta"):
        return build_model(spec, objectives=objectives, tasks=tasks, image_size=image_size)


def parameter_counts(
    spec: ModelSpec,
    *,
    objectives: Sequence[str] = ("mlm", "itm"),
    tasks: Mapping[str, Mapping[str, Any]] | None = None,
    image_size: int | None = None,
) -> dict[str, int]:
    """Trainable parameters per LR group ("pretrained", "random", "head") plus "total"."""
    from harness.models.groups import group_sizes

    counts = group_sizes(_meta_model(spec, objectives, tasks, image_size))
    counts["total"] = sum(counts.values())
    return counts


def flops_per_sample(spec: ModelSpec, image_size: int, text_len: int) -> float:
    """Forward FLOPs of one image-text pair (encoders + fusion + pooling; training ≈ 3×)."""
    try:
        return _counted_flops(spec, image_size, text_len)
    except Exception:  # an encoder that cannot run on meta tensors: fall back to the estimate
        return analytic_flops(spec, image_size, text_len)


def _counted_flops(spec: ModelSpec, image_size: int, text_len: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    model = _meta_model(spec, ("itm",), None, image_size).eval()
    with torch.device("meta"):
        pixels = torch.zeros(1, 3, image_size, image_size)
        ids = torch.zeros(1, text_len, dtype=torch.long)
        mask = torch.ones(1, text_len, dtype=torch.long)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model.score_pairs(model.encode_image(pixels), model.encode_text(ids, mask), head="itm")
    return float(counter.get_total_flops())


def print_paper_params() -> None:
    """Build METER-CLIP-ViT-B (CLIP-ViT-B/16 + RoBERTa-base at its 288 px pre-training resolution, random
    weights, meta device) and print its counts: the number `harness plan grids/main.yaml --profile paper`
    shows for that pre-training job (one cost model, harness/dispatch/cost.py)."""
    spec = ModelSpec(**PAPER_SPEC)
    counts = parameter_counts(spec, objectives=("mlm", "itm"), image_size=PAPER_PRETRAIN_SIZE)
    print(f"METER-CLIP-ViT-B/16 + RoBERTa-base, co-attention ×6, width 768, {PAPER_PRETRAIN_SIZE}px "
          "(pre-training heads mlm + itm):")
    for group in ("pretrained", "random", "head", "total"):
        print(f"  {group:<11} {counts[group] / 1e6:9.2f}M")
    print(f"  forward GFLOPs per pair at 224px, 50 tokens: {flops_per_sample(spec, 224, 50) / 1e9:.1f}")
