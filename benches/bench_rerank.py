"""Retrieval evaluation: the FLOP bound of encode-once at paper scale, and exact vs re-ranked side by side.

1. FLOP counts (meta device, no weights) of Flickr30k-sized evaluation (1,000 images × 5,000 texts) at
   METER-CLIP-ViT-B/16 + RoBERTa-base, 384 px (577 image tokens), 6 co-attention layers, 40 text tokens:
   per pair with the whole model (METER) vs encode-once (each image and text once, fusion per pair) — the
   ratio bounds encode-once's speed-up — and re-ranking with k (fusion on the top-k candidates only).
2. On a tiny METER (random weights unless the zoo is asked for; CPU): exact and re-ranked evaluation of
   ``--images`` × 5 captions each, timed in one run, with their recalls and the R@1 difference.

    python benches/bench_rerank.py [--k 16] [--images 200] [--skip-paper]

Paper-scale timing needs a GPU (benches/gpu_check.py measures training; this figure is unmeasured here).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from harness.models.config import ModelSpec
from harness.train.metrics import retrieval_recalls
from harness.train.rerank import rerank_score_matrix, retrieval_flops
from harness.train.retrieval import encode_all, score_matrix

PAPER = ModelSpec(vision="clip-vit-224/16", text="roberta", scale="paper", weights="random")


def paper_bound(k: int) -> None:
    f = retrieval_flops(PAPER, 384, 40, 1000, 5000, rerank_k=k)
    print(f"paper scale, 1K images x 5K texts, 384px, 40 tokens (forward FLOPs, counted): image encoder "
          f"{f['image_encoder'] / 1e9:.1f} G, text encoder {f['text_encoder'] / 1e9:.1f} G, fusion + head "
          f"{f['fusion_and_head'] / 1e9:.1f} G per pair")
    print(f"  per pair (METER): {f['per_pair'] / 1e15:.0f} PFLOP; encode-once: {f['encode_once'] / 1e15:.0f} PFLOP "
          f"-> bound on encode-once's speed-up {f['bound']:.2f}x")
    print(f"  re-rank k={k}: {f['rerank_fusion_passes']:.0f} fusion passes ({5e6 / f['rerank_fusion_passes']:.0f}x "
          f"fewer), {f['rerank'] / 1e15:.1f} PFLOP ({f['per_pair'] / f['rerank']:.0f}x below per pair)")


def tiny_side_by_side(images: int, k: int) -> None:
    from harness.models import build_model

    spec = ModelSpec(vision="clip-vit-224/32", text="bert", scale="tiny", weights="random", hidden=32, heads=2,
                     fusion_layers=1, max_text_len=12)
    torch.manual_seed(0)
    model = build_model(spec, objectives=("itm",), image_size=32).eval()
    g = torch.Generator().manual_seed(0)
    texts_n = 5 * images
    pixels = torch.randn(images, 3, 32, 32, generator=g)
    ids = torch.randint(5, int(model.text.vocab_size), (texts_n, 12), generator=g)
    gold = [t // 5 for t in range(texts_n)]
    with torch.no_grad():
        img, txt = encode_all(model, pixels, ids, torch.ones_like(ids))
        t0 = time.perf_counter()
        exact = score_matrix(model, img, txt, images, texts_n, head="itm", pair_batch=4096)
        exact_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        reranked, passes = rerank_score_matrix(model, img, txt, k, head="itm", pair_batch=4096)
        rerank_s = time.perf_counter() - t0
    a, b = retrieval_recalls(exact, gold), retrieval_recalls(reranked, gold)
    print(f"tiny METER (random weights), {images} images x {texts_n} texts, CPU, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores:")
    print(f"  exact: {images * texts_n} fusion passes, {exact_s:.2f}s; re-rank k={k}: {passes} passes "
          f"({images * texts_n / passes:.1f}x fewer), {rerank_s:.2f}s ({exact_s / rerank_s:.1f}x faster)")
    for key in ("ir_r1", "tr_r1", "ir_r5", "tr_r5"):
        print(f"  {key}: exact {a[key]:.3f}, re-ranked {b[key]:.3f} (difference {100 * (b[key] - a[key]):+.1f} points)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--skip-paper", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if not args.skip_paper:
        paper_bound(args.k)
    tiny_side_by_side(args.images, args.k)
    return 0


if __name__ == "__main__":
    sys.exit(main())
