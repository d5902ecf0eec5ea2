"""Trainer overhead: harness ``Trainer`` vs a bare PyTorch loop, like for like, as ratios in one run.

Both sides train the same tiny METER model (MLM + ITM; two copies with the same initial weights,
which swap sides every repeat so that neither copy's memory layout favours one side) on the same
repeated synthetic batch
(data loading is not what is measured), with the same optimizer built by the same function
(``build_optimizer``, AdamW fused exactly when the trainer fuses it: ``fused_adamw``), the same
LR schedule and the same torch thread count; the bench prints both configurations as read
back from the optimizer objects, so a mismatch shows.

How a step is timed — paired steps: the bare loop runs on its own copy of the model (same
initial weights) *inside* the harness's batch iterator. At every draw the iterator first runs one
bare step and times it, then reads the clocks and returns the batch; the harness's step is the time
from that return to its next draw, with everything the trainer does in between (accumulation
context, loss reduction, LR and loss logging, progress.json every ``log_every`` = 10 steps).
So the two loops alternate step by step and any change of the machine's load hits both alike
(separate runs of each loop, even interleaved, scattered by ±5–10 % on a shared machine). Steps
are summed over blocks of 10 (one log step in each); set-up (Accelerator, optimizer, progress
file) and the first ``WARMUP`` steps are dropped. The overhead is the median over all blocks of
all repeats of harness/bare, with a bootstrap 95 % interval over repeats. On CPU the headline is
process CPU time (one torch thread): wall time on a shared machine mostly measures the
neighbours (printed too). ``--profile`` attributes the trainer's own CPU time. Target: ≤ 3 %.

    python benches/bench_trainer.py [--batch 8] [--blocks 8] [--repeats 9] [--profile]
"""

from __future__ import annotations

import argparse
import copy
import gc
import itertools
import os
import random
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


class BareLoop:
    """The minimum a training loop must do, one step per call: forward, backward, AdamW step, LR step."""

    def __init__(self, model: torch.nn.Module, groups: Any, data: dict[str, Any], steps: int) -> None:
        s = settings(1, steps)
        self.model, self.data = model, data
        self.optimizer = build_optimizer(model, groups, s.lrs, weight_decay=s.weight_decay, betas=s.betas, eps=s.eps,
                                         fused=fused_adamw(next(model.parameters()).device), rules=s.param_rules,
                                         adamw=s.adamw)
        self.scheduler = build_scheduler(self.optimizer, steps, s.warmup_ratio, s.decay)
        model.train()

    def step(self) -> None:
        self.model(self.data)["loss"].backward()
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)


class PairedBatches:
    """The harness's batches. At each draw: one bare step (timed), then the clocks that start the
    harness's step; ``bare[k]`` and ``harness[k]`` are step k of each loop (Clock differences)."""

    def __init__(self, bare: BareLoop, data: dict[str, Any]) -> None:
        self.bare_loop, self.data = bare, data
        self.sync = torch.cuda.is_available()  # on a GPU a step's time is its kernels', not their launch
        self.bare: list[Clock] = []
        self.harness: list[Clock] = []
        self.started: Clock | None = None

    def __iter__(self) -> PairedBatches:
        return self

    def _clock(self) -> Clock:
        if self.sync:
            torch.cuda.synchronize()
        return clock()

    def __next__(self) -> dict[str, Any]:
        ended = self._clock()
        if self.started is not None:
            self.harness.append((ended[0] - self.started[0], ended[1] - self.started[1]))
        self.bare_loop.step()
        self.started = self._clock()
        self.bare.append((self.started[0] - ended[0], self.started[1] - ended[1]))
        return self.data


def paired_run(models: tuple[torch.nn.Module, torch.nn.Module], data: dict[str, Any], steps: int, batch: int,
               seen: dict[str, str]) -> list[tuple[float, float, float, float]]:
    """One harness run of ``steps`` steps with the bare loop paired in; per block of BLOCK steps after
    the warm-up: (bare wall, harness wall, bare CPU, harness CPU) seconds per step."""
    from harness.models.groups import param_groups

    bare_model, harness_model = models
    bare = BareLoop(bare_model, param_groups(bare_model), data, steps + 1)
    batches = PairedBatches(bare, data)
    parts = TrainParts(model=harness_model, groups=param_groups(harness_model), batches=lambda rank, world: batches)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(parts, settings(batch, steps), Path(tmp), "bench")
        trainer.run()
    seen["bare"], seen["harness"] = describe(bare.optimizer), describe(trainer.optimizer.optimizer)
    blocks = []
    for k in range(WARMUP, len(batches.harness) - BLOCK + 1, BLOCK):
        b, h = batches.bare[k: k + BLOCK], batches.harness[k: k + BLOCK]
        blocks.append(tuple(sum(c[i] for c in side) / BLOCK for i in (0, 1) for side in (b, h)))
    return blocks  # type: ignore[return-value]


def overhead(blocks: list[list[tuple[float, float, float, float]]], index: int, rng: random.Random) -> str:
    """Median of harness/bare over every block, and its bootstrap 95 % interval over repeats."""
    def median_ratio(repeats: list[list[tuple[float, float, float, float]]]) -> float:
        return statistics.median(blk[index + 1] / blk[index] for rep in repeats for blk in rep)

    boot = sorted(median_ratio(rng.choices(blocks, k=len(blocks))) for _ in range(2000))
    every = [blk for rep in blocks for blk in rep]
    return (f"overhead {median_ratio(blocks) - 1:+.1%} (median over {len(every)} blocks of {BLOCK} steps; bootstrap "
            f"95 % interval {boot[50] - 1:+.1%} … {boot[1949] - 1:+.1%}); median step: bare "
            f"{statistics.median(b[index] for b in every) * 1000:.1f} ms, harness "
            f"{statistics.median(b[index + 1] for b in every) * 1000:.1f} ms")


def bare_loop(model: torch.nn.Module, groups: Any, data: dict[str, Any], steps: int) -> None:
    loop = BareLoop(model, groups, data, steps)
    for _ in range(steps):
        loop.step()


def harness_loop(model: torch.nn.Module, groups: Any, data: dict[str, Any], steps: int, batch: int) -> None:
    parts = TrainParts(model=model, groups=groups, batches=lambda rank, world: itertools.repeat(data))
    with tempfile.TemporaryDirectory() as tmp:
        Trainer(parts, settings(batch, steps), Path(tmp), "bench").run()


# Where the trainer's own per-step work lives (everything else is the model and the optimizer, as in the bare loop).
HARNESS_CODE = ("accelerate/", "harness/train/loop.py", "harness/train/record.py", "harness/progress.py",
                "harness/train/optim.py", "harness/train/checkpoint.py")


def profile(model: torch.nn.Module, groups: Any, data: dict[str, Any], steps: int, batch: int) -> None:
    """cProfile (CPU time) of both loops: where the harness's extra time per step goes."""
    import cProfile
    import pstats

    for name, run in (("bare", lambda: bare_loop(model, groups, data, steps)),
                      ("harness", lambda: harness_loop(model, groups, data, steps, batch))):
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
    parser.add_argument("--blocks", type=int, default=8, help=f"timed blocks of {BLOCK} steps per run")
    parser.add_argument("--repeats", type=int, default=9)
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
    bare_model = copy.deepcopy(model)  # the same initial weights on both sides
    paired_run((bare_model, model), data, WARMUP + 1, args.batch, seen)  # warm-up: allocator, kernels
    load_before = os.getloadavg()[0]
    blocks = []
    for repeat in range(args.repeats):
        gc.collect()
        pair = (bare_model, model) if repeat % 2 == 0 else (model, bare_model)
        blocks.append(paired_run(pair, data, steps, args.batch, seen))
    load_after = os.getloadavg()[0]
    params = sum(p.numel() for p in model.parameters())
    print(f"model: tiny METER (clip-vit-224/32 + bert, hidden 32), {params:,} parameters, MLM + ITM, "
          f"batch {args.batch} repeated, {device.type}")
    print(f"bare optimizer:    {seen['bare']}")
    print(f"harness optimizer: {seen['harness']}")
    print(f"load average {load_before:.1f} → {load_after:.1f} on {os.cpu_count()} cores; {args.repeats} runs of "
          f"{steps - 1} paired steps (bare, harness, bare, ...), each timed as {args.blocks} blocks of {BLOCK} steps "
          f"after {WARMUP} warm-up steps")
    cpu, rng = device.type == "cpu", random.Random(0)
    for index, name in ((2, "CPU time"), (0, "wall time")) if cpu else ((0, "wall time"),):
        print(f"{name:>9}: {overhead(blocks, index, rng)}")
    print(f"target: overhead <= +3% ({'CPU time' if cpu else 'wall time'})")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
