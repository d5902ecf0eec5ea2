"""Trainer overhead: harness ``Trainer`` vs a bare PyTorch loop, like for like, as ratios in one run.

Both sides train the same tiny METER object (MLM + ITM) on the same repeated synthetic batch
(data loading is not what is measured), with the same optimizer built by the same function
(``build_optimizer``, AdamW fused exactly when the trainer fuses it: ``fused_adamw``), the same
LR schedule and the same torch thread count; the bench prints both configurations as read
back from the optimizer objects, so a mismatch shows.

How a step is timed: both loops draw their batch from the same iterator, which reads the clocks
at every draw, so the time between draw k and draw k + 10 is exactly ten steps of that loop with
everything it does between them (the trainer's accumulation context, loss reduction, LR and loss
logging, progress.json every ``log_every`` = 10 steps; any 10 consecutive steps hold one log step).
Set-up (Accelerator, optimizer, progress file) falls before the first draw and the first
``WARMUP`` steps are dropped, so neither enters. Each run gives several 10-step blocks; a side's
cost in a run is the median of its blocks (a neighbour's burst hits one block, not the median).
Bare and harness runs alternate (bare, harness, harness, bare, ...: a slow drift of the load
cancels) and the overhead is the median over repeats of the ratio of each adjacent pair. On CPU
the headline is process CPU time (user + system, one torch thread): wall time on a shared
machine mostly measures the neighbours (it is printed too). ``--profile`` attributes the
trainer's own CPU time. Target: overhead ≤ 3 %.

    python benches/bench_trainer.py [--batch 8] [--blocks 5] [--repeats 15] [--profile]
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from harness.train.loop import Trainer, TrainParts
from harness.train.optim import build_optimizer, build_scheduler, fused_adamw
from harness.train.random_batch import random_pretrain_batch
from harness.train.settings import TrainSettings

BLOCK = 10  # steps per timed block: one log step (log_every) in each
WARMUP = 10  # steps dropped at the start of every run (first-step allocations, caches)
IMAGE_SIZE = 32
BETAS, EPS, WEIGHT_DECAY, WARMUP_RATIO = (0.9, 0.98), 1e-8, 0.01, 0.1


def tiny_model_and_batch(batch: int, device: torch.device) -> tuple[torch.nn.Module, dict[str, Any]]:
    from harness.models import build_model
    from harness.models.config import ModelSpec

    spec = ModelSpec(vision="clip-vit-224/32", text="bert", scale="tiny", weights="random", hidden=32, heads=2,
                     fusion_layers=1, max_text_len=50)
    torch.manual_seed(0)
    model = build_model(spec, objectives=("mlm", "itm"), image_size=IMAGE_SIZE)
    return model.to(device), random_pretrain_batch(batch, IMAGE_SIZE, int(model.text.vocab_size), device)


def settings(batch: int, steps: int) -> TrainSettings:
    return TrainSettings(stage="pretrain", task=None, seed=0, total_steps=steps, global_batch=batch,
                         per_device_batch=batch, num_processes=1, accumulation=1, image_size=IMAGE_SIZE,
                         lrs={"pretrained": 1e-4, "random": 5e-4, "head": 5e-4}, log_every=BLOCK,
                         checkpoint_at_end=False, objectives=("mlm", "itm"), betas=BETAS, eps=EPS,
                         weight_decay=WEIGHT_DECAY, warmup_ratio=WARMUP_RATIO, decay="linear")


def describe(optimizer: torch.optim.Optimizer) -> str:
    """What an optimizer really is, read back from the object (not from what was asked for)."""
    d = optimizer.defaults
    groups = len(optimizer.param_groups)
    tensors = sum(len(g["params"]) for g in optimizer.param_groups)
    return (f"{type(optimizer).__name__}(fused={d.get('fused')}, foreach={d.get('foreach')}, betas={d['betas']}, "
            f"eps={d['eps']}, weight_decay={d['weight_decay']}) over {groups} groups / {tensors} tensors, "
            f"{torch.get_num_threads()} torch thread(s)")


Clock = tuple[float, float]  # (wall seconds, process CPU seconds)


def clock() -> Clock:
    return time.perf_counter(), time.process_time()


class TimedBatches:
    """The same batch forever; the clocks are read at every draw (one draw per step on both sides)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.marks: list[Clock] = []
        self.sync = torch.cuda.is_available()  # on a GPU a step's time is its kernels', not their launch

    def __iter__(self) -> TimedBatches:
        return self

    def __next__(self) -> dict[str, Any]:
        if self.sync:
            torch.cuda.synchronize()
        self.marks.append(clock())
        return self.data


def block_costs(marks: list[Clock], index: int) -> list[float]:
    """Seconds per step of each whole BLOCK-step block after the warm-up (draw k to draw k + BLOCK)."""
    return [(marks[k + BLOCK][index] - marks[k][index]) / BLOCK for k in range(WARMUP, len(marks) - BLOCK, BLOCK)]


def bare_loop(model: torch.nn.Module, groups: Any, data: dict[str, Any], steps: int, seen: dict[str, str]) -> list[
        Clock]:
    """The minimum a training loop must do: forward, backward, AdamW step, LR step."""
    device = next(model.parameters()).device
    s = settings(1, steps)
    optimizer = build_optimizer(model, groups, s.lrs, weight_decay=s.weight_decay, betas=s.betas, eps=s.eps,
                                fused=fused_adamw(device), rules=s.param_rules,
                                adamw=s.adamw)
    scheduler = build_scheduler(optimizer, steps, s.warmup_ratio, s.decay)
    model.train()
    batches = TimedBatches(data)
    for batch in itertools.islice(batches, steps):
        model(batch)["loss"].backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seen["bare"] = describe(optimizer)
    return batches.marks


def harness_loop(model: torch.nn.Module, groups: Any, data: dict[str, Any], steps: int, batch: int,
                 seen: dict[str, str]) -> list[Clock]:
    batches = TimedBatches(data)
    parts = TrainParts(model=model, groups=groups, batches=lambda rank, world: batches)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(parts, settings(batch, steps), Path(tmp), "bench")
        trainer.run()
    seen["harness"] = describe(trainer.optimizer.optimizer)  # the optimizer inside Accelerate's wrapper
    return batches.marks


def summary(bare: list[list[Clock]], harness: list[list[Clock]], index: int) -> str:
    """Median over repeats of the ratio harness/bare of each repeat's median block cost."""
    b = [statistics.median(block_costs(m, index)) for m in bare]
    h = [statistics.median(block_costs(m, index)) for m in harness]
    ratios = sorted(hi / bi for hi, bi in zip(h, b, strict=True))
    q = len(ratios) // 4
    return (f"overhead {statistics.median(ratios) - 1:+.1%} (median of {len(ratios)} per-repeat ratios; middle half "
            f"{ratios[q] - 1:+.1%} … {ratios[len(ratios) - 1 - q] - 1:+.1%}); medians: bare "
            f"{statistics.median(b) * 1000:.1f} ms/step, harness {statistics.median(h) * 1000:.1f} ms/step")


# Where the trainer's own per-step work lives (everything else is the model and the optimizer, as in the bare loop).
HARNESS_CODE = ("accelerate/", "harness/train/loop.py", "harness/train/record.py", "harness/progress.py",
                "harness/train/optim.py", "harness/train/checkpoint.py")


def profile(model: torch.nn.Module, groups: Any, data: dict[str, Any], steps: int, batch: int) -> None:
    """cProfile (CPU time) of both loops: where the harness's extra time per step goes."""
    import cProfile
    import pstats

    seen: dict[str, str] = {}
    for name, run in (("bare", lambda: bare_loop(model, groups, data, steps, seen)),
                      ("harness", lambda: harness_loop(model, groups, data, steps, batch, seen))):
        prof = cProfile.Profile(timer=time.process_time)
        prof.runcall(run)
        stats = pstats.Stats(prof)
        print(f"== {name}: top functions by own time ({steps} steps)")
        stats.sort_stats("tottime").print_stats(15)
        if name == "harness":
            own = sum(row[2] for key, row in stats.stats.items()  # type: ignore[attr-defined]
                      if any(part in key[0] for part in HARNESS_CODE))
            total = sum(row[2] for row in stats.stats.values())  # type: ignore[attr-defined]
            print(f"harness code's own CPU time (Accelerate, loop, progress, optimizer set-up, set-up included): "
                  f"{own / steps * 1000:.2f} ms/step of {total / steps * 1000:.1f} ms/step ({own / total:.1%})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--blocks", type=int, default=5, help=f"timed blocks of {BLOCK} steps per run")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="print cProfile tables of both loops instead")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from harness.models.groups import param_groups

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, data = tiny_model_and_batch(args.batch, device)
    groups = param_groups(model)
    if args.profile:
        profile(model, groups, data, WARMUP + args.blocks * BLOCK, args.batch)
        return 0
    seen: dict[str, str] = {}
    steps = WARMUP + args.blocks * BLOCK + 1  # the last draw closes the last block
    bare_loop(model, groups, data, WARMUP, seen)  # warm-up: allocator, kernels
    harness_loop(model, groups, data, WARMUP, args.batch, seen)
    load_before = os.getloadavg()[0]
    bare: list[list[Clock]] = []
    harness: list[list[Clock]] = []
    for repeat in range(args.repeats):  # interleaved, alternating which side goes first
        runs = [lambda: bare.append(bare_loop(model, groups, data, steps, seen)),
                lambda: harness.append(harness_loop(model, groups, data, steps, args.batch, seen))]
        for run in runs if repeat % 2 == 0 else runs[::-1]:
            gc.collect()
            run()
    load_after = os.getloadavg()[0]
    params = sum(p.numel() for p in model.parameters())
    print(f"model: tiny METER (clip-vit-224/32 + bert, hidden 32), {params:,} parameters, MLM + ITM, "
          f"batch {args.batch} repeated, {device.type}")
    print(f"bare optimizer:    {seen['bare']}")
    print(f"harness optimizer: {seen['harness']}")
    print(f"load average {load_before:.1f} → {load_after:.1f} on {os.cpu_count()} cores; {args.repeats} interleaved "
          f"repeats per side of {steps - 1} steps, each timed as {args.blocks} blocks of {BLOCK} steps after "
          f"{WARMUP} warm-up steps")
    cpu = device.type == "cpu"
    for index, name in ((1, "CPU time"), (0, "wall time")) if cpu else ((0, "wall time"),):
        print(f"{name:>9}: {summary(bare, harness, index)}")
    print(f"target: overhead <= +3% ({'CPU time' if cpu else 'wall time'})")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
