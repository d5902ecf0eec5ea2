"""Trainer overhead: harness ``Trainer`` steps/s vs a bare PyTorch loop, same tiny METER, data, batch.

Both loops run MLM + ITM steps on one repeated synthetic batch (data loading is not what is
measured). Per-step cost is the wall-time difference between a short and a long run, so
set-up (Accelerator, optimizer, progress file) cancels out while everything the trainer does
per step (accumulation context, loss reduction, LR and loss logging, progress.json) counts.
Runs alternate and the median is kept: the machine may be shared. Target: overhead ≤ 5%.

    python benches/bench_trainer.py [--batch 16] [--steps 60] [--repeats 3]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from harness.train.loop import Trainer, TrainParts
from harness.train.optim import build_optimizer, build_scheduler
from harness.train.settings import TrainSettings

SHORT = 5
IMAGE_SIZE = 32


def tiny_model_and_batch(batch: int, device: torch.device) -> tuple[torch.nn.Module, dict[str, Any]]:
    from gpu_check import synthetic_batch  # same random MLM + ITM sub-batches

    from harness.models import build_model
    from harness.models.config import ModelSpec

    spec = ModelSpec(vision="clip-vit-224/32", text="bert", scale="tiny", weights="random", hidden=32, heads=2,
                     fusion_layers=1, max_text_len=50)
    torch.manual_seed(0)
    model = build_model(spec, objectives=("mlm", "itm"), image_size=IMAGE_SIZE)
    return model.to(device), synthetic_batch(batch, IMAGE_SIZE, int(model.text.vocab_size), device)


def settings(batch: int, steps: int) -> TrainSettings:
    return TrainSettings(stage="pretrain", task=None, seed=0, total_steps=steps, global_batch=batch,
                         per_device_batch=batch, num_processes=1, accumulation=1, image_size=IMAGE_SIZE,
                         lrs={"pretrained": 1e-4, "random": 5e-4, "head": 5e-4}, log_every=10,
                         checkpoint_at_end=False, objectives=("mlm", "itm"))


def bare_loop(model: torch.nn.Module, groups: Any, data: dict[str, Any], steps: int) -> float:
    """The minimum a training loop must do: forward, backward, AdamW step, LR step."""
    started = time.perf_counter()
    cuda = next(model.parameters()).is_cuda
    optimizer = build_optimizer(model, groups, settings(1, steps).lrs, weight_decay=0.01, betas=(0.9, 0.98), eps=1e-8,
                                fused=cuda)
    scheduler = build_scheduler(optimizer, steps, 0.1, "linear")
    model.train()
    for _ in range(steps):
        model(data)["loss"].backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - started


def harness_loop(model: torch.nn.Module, groups: Any, data: dict[str, Any], steps: int, batch: int) -> float:
    started = time.perf_counter()
    parts = TrainParts(model=model, groups=groups, batches=lambda rank, world: itertools.repeat(data))
    with tempfile.TemporaryDirectory() as tmp:
        Trainer(parts, settings(batch, steps), Path(tmp), "bench").run()
    return time.perf_counter() - started


def per_step(run: Any, steps: int) -> float:
    return (run(steps) - run(SHORT)) / (steps - SHORT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from harness.models.groups import param_groups

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, data = tiny_model_and_batch(args.batch, device)
    groups = param_groups(model)
    bare_loop(model, groups, data, SHORT)  # warm-up: allocator, kernels
    bare, harness = [], []
    for _ in range(args.repeats):
        bare.append(per_step(lambda n: bare_loop(model, groups, data, n), args.steps))
        harness.append(per_step(lambda n: harness_loop(model, groups, data, n, args.batch), args.steps))
    b, h = statistics.median(bare), statistics.median(harness)
    print(f"bare PyTorch loop: {1 / b:.2f} steps/s ({b * 1000:.1f} ms/step, runs {[round(x * 1000, 1) for x in bare]})")
    print(f"harness trainer:   {1 / h:.2f} steps/s ({h * 1000:.1f} ms/step, runs "
          f"{[round(x * 1000, 1) for x in harness]})")
    print(f"overhead: {h / b - 1:+.1%} (target <= +5%); batch {args.batch}, {args.steps} steps, "
          f"{args.threads} thread(s), {device.type}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
