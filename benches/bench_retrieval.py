"""Retrieval evaluation speed: encode-once fast path vs METER's full model per pair.

A 1,000-image × 5,000-caption synthetic evaluation (5M pairs) with a tiny METER. The fast
path encodes every image and caption once (timed in full), then runs fusion + ITM head per
pair; the per-pair paths are timed on a slice of the pairs and scaled linearly to 5M (both
cost the same per pair wherever the pair sits; ``--full`` times all of the fast path).

    python benches/bench_retrieval.py [--images 1000] [--texts 5000] [--full]
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from harness.train.retrieval import encode_all, naive_score_matrix, score_matrix, take


def tiny_model() -> torch.nn.Module:
    from harness.models import build_model
    from harness.models.config import ModelSpec

    spec = ModelSpec(vision="clip-vit-224/32", text="bert", scale="tiny", weights="random", hidden=32, heads=2,
                     fusion_layers=1, max_text_len=12)
    torch.manual_seed(0)
    return build_model(spec, objectives=("itm",), image_size=32).eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--texts", type=int, default=5000)
    parser.add_argument("--scored-images", type=int, default=40, help="images whose pairs the fast path times")
    parser.add_argument("--naive-pairs", type=int, default=2000, help="pairs the per-pair path times")
    parser.add_argument("--pair-batch", type=int, default=4096)
    parser.add_argument("--full", action="store_true", help="time the fast path on every pair")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = tiny_model()
    g = torch.Generator().manual_seed(0)
    pixels = torch.randn(args.images, 3, 32, 32, generator=g)
    ids = torch.randint(5, int(model.text.vocab_size), (args.texts, 12), generator=g)
    mask = torch.ones_like(ids)
    pairs = args.images * args.texts

    with torch.no_grad():
        t0 = time.perf_counter()
        images, texts = encode_all(model, pixels, ids, mask, batch_size=512)
        encode_s = time.perf_counter() - t0
        scored = args.images if args.full else min(args.images, args.scored_images)
        t0 = time.perf_counter()
        fast = score_matrix(model, take(images, torch.arange(scored)), texts, scored, args.texts, "itm",
                            args.pair_batch)
        fusion_s = (time.perf_counter() - t0) * args.images / scored
        fast_total = encode_s + fusion_s

        rows = max(1, args.naive_pairs // args.texts) if args.naive_pairs >= args.texts else 1
        cols = min(args.texts, args.naive_pairs)
        t0 = time.perf_counter()
        naive = naive_score_matrix(model, pixels[:rows], ids[:cols], mask[:cols], "itm", pair_batch=256)
        naive_total = (time.perf_counter() - t0) * pairs / (rows * cols)
    diff = float((fast[:rows, :cols] - naive).abs().max())

    print(f"{args.images} images x {args.texts} texts = {pairs / 1e6:.1f}M pairs, tiny METER, "
          f"{args.threads} thread(s)")
    print(f"fast path:  encode {encode_s:.1f}s + fusion/head {fusion_s:.1f}s"
          f"{'' if args.full else f' (timed on {scored} images, scaled)'} = {fast_total:.1f}s")
    print(f"full model per pair: {naive_total:.1f}s (timed on {rows * cols} pairs, scaled)")
    print(f"speed-up: {naive_total / fast_total:.2f}x; max |fast - per-pair| score difference {diff:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
