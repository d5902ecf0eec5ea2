"""Retrieval evaluation speed: encode-once fast path vs METER's full model per pair.

A 1,000-image × 5,000-caption synthetic evaluation (5M pairs) with a tiny METER. The fast
path encodes every image and caption once, then runs fusion + ITM head per pair; it is timed
on every pair (``--fast-images N`` times the first N images only, for a quick look, and says
it scaled). The per-pair path (both encoders per pair, as METER did) would take hours, so it
is timed on two samples of whole caption rows (default 2 and 8 images × 5,000 captions): its
cost per pair must agree between them (within ``--tolerance``) before the 5M figure is scaled
from the larger one. Every line says whether its figure was measured or scaled. Both paths
give the same scores on the sampled pairs (the max difference is printed). Times are the
process's CPU time (one torch thread): on a shared machine wall time measures the neighbours
and changes with them between the two paths' runs; the fast path's wall time is printed too.

    python benches/bench_retrieval.py [--images 1000] [--texts 5000] [--samples 1 4] [--fast-images N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from harness.train.retrieval import encode_all, naive_score_matrix, score_matrix, take

TEXT_LEN = 12


def tiny_model() -> torch.nn.Module:
    from harness.models import build_model
    from harness.models.config import ModelSpec

    spec = ModelSpec(vision="clip-vit-224/32", text="bert", scale="tiny", weights="random", hidden=32, heads=2,
                     fusion_layers=1, max_text_len=TEXT_LEN)
    torch.manual_seed(0)
    return build_model(spec, objectives=("itm",), image_size=32).eval()


def per_pair_sample(model: torch.nn.Module, pixels: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor,
                    rows: int) -> tuple[float, torch.Tensor]:
    """Seconds per pair of the full-model path on ``rows`` images × every caption, and its scores."""
    t0 = time.process_time()
    scores = naive_score_matrix(model, pixels[:rows], ids, mask, "itm", pair_batch=256)
    return (time.process_time() - t0) / (rows * len(ids)), scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--texts", type=int, default=5000)
    parser.add_argument("--fast-images", type=int, help="time the fast path's fusion on the first N images only "
                        "(scaled; default: all of them, measured)")
    parser.add_argument("--samples", type=int, nargs=2, default=(2, 8), metavar=("SMALL", "LARGE"),
                        help="image rows (× every caption) the per-pair path is timed on")
    parser.add_argument("--tolerance", type=float, default=0.15, help="allowed per-pair cost difference")
    parser.add_argument("--pair-batch", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = tiny_model()
    g = torch.Generator().manual_seed(0)
    pixels = torch.randn(args.images, 3, 32, 32, generator=g)
    ids = torch.randint(5, int(model.text.vocab_size), (args.texts, TEXT_LEN), generator=g)
    mask = torch.ones_like(ids)
    pairs = args.images * args.texts
    fast_rows = min(args.images, args.fast_images or args.images)
    load_before = os.getloadavg()[0]

    with torch.no_grad():
        t0, wall0 = time.process_time(), time.perf_counter()
        images, texts = encode_all(model, pixels, ids, mask, batch_size=512)
        encode_s = time.process_time() - t0
        t0 = time.process_time()
        fast = score_matrix(model, take(images, torch.arange(fast_rows)), texts, fast_rows, args.texts, "itm",
                            args.pair_batch)
        fusion_s = (time.process_time() - t0) * args.images / fast_rows
        fast_wall = time.perf_counter() - wall0
        small, large = sorted(args.samples)
        naive_score_matrix(model, pixels[:1], ids[:256], mask[:256], "itm", pair_batch=256)  # warm-up
        small_s, _ = per_pair_sample(model, pixels, ids, mask, small)
        large_s, naive = per_pair_sample(model, pixels, ids, mask, large)
    rows = min(large, fast_rows)
    diff = float((fast[:rows] - naive[:rows]).abs().max())
    naive_total = large_s * pairs
    fast_total = encode_s + fusion_s
    agree = abs(large_s / small_s - 1) <= args.tolerance

    fast_how = "measured on every pair" if fast_rows == args.images else \
        f"scaled ×{args.images / fast_rows:g} from {fast_rows} images"
    print(f"{args.images} images x {args.texts} texts = {pairs / 1e6:.1f}M pairs, tiny METER, {args.threads} "
          f"thread(s); load average {load_before:.1f} → {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"fast path (CPU time):  encode {encode_s:.1f}s [measured] + fusion/head {fusion_s:.1f}s [{fast_how}] "
          f"= {fast_total:.1f}s (wall {fast_wall:.0f}s)")
    print(f"per pair, full model (CPU time): {small_s * 1e3:.3f} ms/pair on {small * args.texts:,} pairs [measured], "
          f"{large_s * 1e3:.3f} ms/pair on {large * args.texts:,} pairs [measured]: "
          f"{'agree' if agree else 'DO NOT agree'} within {args.tolerance:.0%} ({large_s / small_s - 1:+.1%})")
    print(f"per pair, full model, all pairs: {naive_total:.0f}s [scaled ×{pairs / (large * args.texts):g} "
          f"from the {large * args.texts:,}-pair sample]")
    print(f"speed-up: {naive_total / fast_total:.2f}x; max |fast - per-pair| score difference {diff:.2e} "
          f"on {rows * args.texts:,} pairs")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
