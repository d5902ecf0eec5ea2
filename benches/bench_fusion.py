"""Fusion layer speed: our SDPA attention against plain eager attention, at METER's shapes.

One co-attention layer (text and image streams, each self-attn + cross-attn + FFN) and one
merged-attention layer over [text; image], width 768, 12 heads, text length 50, image 197
(224px, patch 16) and 577 (384px) tokens, batch 8, forward + backward in training mode.
The two implementations share weights and differ only in how attention is computed.

    .venv/bin/python benches/bench_fusion.py [--threads N] [--repeats R] [--batch B] [--device cuda]

Two dropout settings are timed: METER's attention dropout 0.1 (training) and none. On CPU,
PyTorch's fused SDPA kernel has no dropout, so with dropout SDPA runs its math kernel and
matches eager; the fused kernel's gain shows without dropout and on GPUs (flash kernels
support dropout). Timings are the minimum over repeats, SDPA and eager interleaved so
machine noise hits both alike; on a shared CPU the process-CPU-time ratio is steadier.
"""

from __future__ import annotations

import argparse
import time

import torch

from harness.models.fusion import CoAttentionFusion, MergedAttentionFusion

WIDTH, HEADS, TEXT_LEN = 768, 12, 50


def _inputs(batch: int, image_tokens: int) -> tuple[torch.Tensor, ...]:
    text = torch.randn(batch, TEXT_LEN, WIDTH, requires_grad=True)
    image = torch.randn(batch, image_tokens, WIDTH, requires_grad=True)
    text_mask = torch.ones(batch, TEXT_LEN, dtype=torch.long)
    text_mask[:, TEXT_LEN * 3 // 5:] = 0  # captions are shorter than the 50-token budget
    image_mask = torch.ones(batch, image_tokens, dtype=torch.long)
    return text, text_mask, image, image_mask


def _step(layer: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one forward + backward."""
    _sync(inputs[0].device)
    wall, cpu = time.perf_counter(), time.process_time()
    text, image = layer(*inputs)
    (text.sum() + image.sum()).backward()
    _sync(inputs[0].device)
    elapsed = time.perf_counter() - wall, time.process_time() - cpu
    layer.zero_grad(set_to_none=True)
    return elapsed


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def compare(kind: type[torch.nn.Module], batch: int, image_tokens: int, repeats: int, dropout: float,
            device: torch.device) -> dict[str, tuple[float, float]]:
    """{"sdpa" | "eager": (min wall s, min CPU s)}."""
    torch.manual_seed(0)
    sdpa = kind(WIDTH, HEADS, 1, dropout=dropout, attn_impl="sdpa").to(device).train()
    eager = kind(WIDTH, HEADS, 1, dropout=dropout, attn_impl="eager").to(device).train()
    eager.load_state_dict(sdpa.state_dict())
    inputs = tuple(t.to(device).detach().requires_grad_(t.is_floating_point()) for t in _inputs(batch, image_tokens))
    _step(sdpa, inputs), _step(eager, inputs)  # warm-up: allocator, kernels
    times: dict[str, list[tuple[float, float]]] = {"sdpa": [], "eager": []}
    for _ in range(repeats):
        times["sdpa"].append(_step(sdpa, inputs))
        times["eager"].append(_step(eager, inputs))
    return {impl: (min(t[0] for t in runs), min(t[1] for t in runs)) for impl, runs in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dropout", type=float, nargs="+", default=[0.1, 0.0])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {args.threads} threads"
    print(f"torch {torch.__version__}, {where}, batch {args.batch}, width {WIDTH}, {HEADS} heads, "
          f"text {TEXT_LEN} tokens; forward + backward of one layer, min of {args.repeats}")
    print(f"{'layer':<18}{'image':>6}{'dropout':>8}{'sdpa ms':>9}{'eager ms':>9}{'wall ×':>8}{'cpu ×':>7}")
    for dropout in args.dropout:
        for kind, label in ((CoAttentionFusion, "co-attention"), (MergedAttentionFusion, "merged-attention")):
            for image_tokens in (197, 577):
                t = compare(kind, args.batch, image_tokens, args.repeats, dropout, device)
                (fast, fast_cpu), (slow, slow_cpu) = t["sdpa"], t["eager"]
                print(f"{label:<18}{image_tokens:>6}{dropout:>8g}{fast * 1e3:>9.0f}{slow * 1e3:>9.0f}"
                      f"{slow / fast:>7.2f}×{slow_cpu / fast_cpu:>6.2f}×", flush=True)


if __name__ == "__main__":
    main()
