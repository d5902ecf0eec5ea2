"""GPU check: paper-scale METER-CLIP-ViT-B/16 + RoBERTa-base, MLM+ITM pre-training steps in bf16.

Random weights and random input tensors (no download, no data). For each resolution (224,
288) the per-device batch is doubled until CUDA runs out of memory; each size runs a few
harness-trainer steps. Prints samples/s, MFU and peak memory per size, then one JSON line.

    python benches/gpu_check.py                   # on a GPU machine, ~3-5 minutes
    python benches/gpu_check.py --tiny --sizes 32 --max-batch 8 --steps 4   # CPU smoke test
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from harness.models.config import ModelSpec
from harness.train.errors import TrainingFailed
from harness.train.flops import train_flops_per_sample
from harness.train.loop import Trainer, TrainParts
from harness.train.settings import TrainSettings

TEXT_LEN = 50


def model_spec(tiny: bool) -> ModelSpec:
    if tiny:
        return ModelSpec(vision="clip-vit-224/16", text="roberta", scale="tiny", weights="random", hidden=32,
                         heads=2, fusion_layers=1)
    return ModelSpec(vision="clip-vit-224/16", text="roberta", scale="paper", weights="random")


def synthetic_batch(batch: int, image_size: int, vocab: int, device: torch.device) -> dict[str, dict[str, Any]]:
    """MLM + ITM sub-batches of random tensors, already on the device."""
    g = torch.Generator(device="cpu").manual_seed(0)

    def pair() -> dict[str, torch.Tensor]:
        return {"input_ids": torch.randint(5, vocab, (batch, TEXT_LEN), generator=g),
                "attention_mask": torch.ones(batch, TEXT_LEN, dtype=torch.long),
                "pixel_values": torch.randn(batch, 3, image_size, image_size, generator=g)}

    mlm, itm = pair(), pair()
    labels = torch.full((batch, TEXT_LEN), -100, dtype=torch.long)
    chosen = torch.rand(batch, TEXT_LEN, generator=g) < 0.15
    labels[chosen] = mlm["input_ids"][chosen]
    mlm["mlm_labels"] = labels
    itm["itm_labels"] = torch.randint(0, 2, (batch,), generator=g)
    return {k: {n: t.to(device) for n, t in sub.items()} for k, sub in {"mlm": mlm, "itm": itm}.items()}


def settings_for(batch: int, steps: int, precision: str) -> TrainSettings:
    return TrainSettings(
        stage="pretrain", task=None, seed=0, total_steps=steps, global_batch=batch, per_device_batch=batch,
        num_processes=1, accumulation=1, image_size=0, lrs={"pretrained": 1e-5, "random": 5e-5, "head": 5e-5},
        precision=precision, log_every=max(1, steps // 2), checkpoint_at_end=False,  # type: ignore[arg-type]
        objectives=("mlm", "itm"),
    )


def try_batch(model: torch.nn.Module, groups: Any, batch: int, image_size: int, steps: int, precision: str,
              device: torch.device) -> dict[str, Any] | None:
    """Train ``steps`` steps at this per-device batch; None when it does not fit in memory."""
    gc.collect()  # the previous size's optimizer state must be gone before measuring this one
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    try:
        data = synthetic_batch(batch, image_size, int(model.text.vocab_size), device)
        parts = TrainParts(model=model, groups=groups, batches=lambda rank, world: itertools.repeat(data),
                           flops_per_sample=lambda m, b: train_flops_per_sample(m, b, batch))
        with tempfile.TemporaryDirectory() as tmp:
            result = Trainer(parts, settings_for(batch, steps, precision), Path(tmp), "gpu-check").run()
    except (torch.cuda.OutOfMemoryError, TrainingFailed) as exc:
        if isinstance(exc, TrainingFailed) and "out of memory" not in str(exc):
            raise
        return None
    finally:
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    # The second log window leaves out the first steps (allocator and kernel warm-up).
    window = [r for r in result.history if r["metric"] == "step_time_s"][-1]["value"]
    flops_step = result.stats["flops_per_step"]
    peak = result.stats["peak_mem_mb"]
    from harness.train.flops import mfu, peak_flops

    return {"per_device_batch": batch, "step_time_s": window, "samples_per_s": batch / window,
            "mfu": mfu(flops_step, window, 1, peak_flops(precision, device)), "peak_mem_gb": peak / 1024,
            "tflops_per_step": flops_step / 1e12}


def check_resolution(spec: ModelSpec, image_size: int, args: argparse.Namespace,
                     device: torch.device) -> dict[str, Any]:
    from harness.models import build_model
    from harness.models.groups import param_groups

    torch.manual_seed(0)
    started = time.perf_counter()
    with torch.device(device):
        model = build_model(spec, objectives=("mlm", "itm"), image_size=image_size)
    groups = param_groups(model)
    params = sum(p.numel() for p in model.parameters())
    print(f"[{image_size}px] model built in {time.perf_counter() - started:.1f}s: {params / 1e6:.1f}M parameters",
          flush=True)
    fits: list[dict[str, Any]] = []
    batch = args.start_batch
    while batch <= args.max_batch:
        out = try_batch(model, groups, batch, image_size, args.steps, args.precision, device)
        if out is None:
            print(f"[{image_size}px] batch {batch}: out of memory", flush=True)
            break
        fits.append(out)
        mfu_text = f"{out['mfu']:.1%}" if out["mfu"] is not None else "n/a"
        print(f"[{image_size}px] batch {batch}: {out['samples_per_s']:.1f} samples/s, "
              f"step {out['step_time_s']:.3f}s, MFU {mfu_text}, peak {out['peak_mem_gb']:.1f} GB", flush=True)
        batch *= 2
    del model, groups
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {"image_size": image_size, "params_m": params / 1e6, "largest": fits[-1] if fits else None,
            "all": fits}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 288])
    parser.add_argument("--start-batch", type=int, default=16)
    parser.add_argument("--max-batch", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=6, help="steps per batch size (the last half is timed)")
    parser.add_argument("--precision", default="bf16", choices=["bf16", "fp16", "fp32"])
    parser.add_argument("--tiny", action="store_true", help="CPU-sized model (smoke test of this script)")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu" and not args.tiny:
        print("no GPU: run with --tiny for a CPU smoke test", file=sys.stderr)
        return 2
    if device.type == "cpu":
        args.precision = "fp32"
    torch.backends.cuda.matmul.allow_tf32 = True
    started = time.perf_counter()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    results = [check_resolution(model_spec(args.tiny), size, args, device) for size in args.sizes]
    summary = {"device": name, "precision": args.precision, "model": "METER-CLIP-ViT-B/16 + RoBERTa-base"
               + (" (tiny)" if args.tiny else ""), "objectives": ["mlm", "itm"], "text_len": TEXT_LEN,
               "results": results, "wall_s": time.perf_counter() - started}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
