"""GPU check: METER-CLIP-ViT-B/16 + RoBERTa-base MLM+ITM pre-training steps in bf16, eager vs compiled, beside
METER's own code — samples/s, MFU and peak memory per image size × per-device batch, in one run.

Random weights and random input tensors (no download, no data). For each image size, each mode (eager, then
``train.compile``'s per-block compile) builds the model once and runs a few harness-trainer steps at every
per-device batch (a batch that runs out of memory ends that size and mode). With ``--meter-checkout`` and
``--meter-python``, METER's own step (``benches/meter_step.py``, METER's code under its pinned transformers 4.6.0)
runs at the same size and batch in a subprocess, so the harness / METER ratio is measured in the same run. The
run stops starting new measurements when ``--budget-s`` is spent (what was skipped is listed). Writes a table,
then one JSON line (also to ``--out``).

    python benches/gpu_check.py --out gpu_check.json                               # a GPU, ~10 min
    python benches/gpu_check.py --meter-checkout ~/METER --meter-python ~/meter-venv/bin/python
    python benches/gpu_check.py --smoke       # CPU: the tiny model, 2 batches, aot_eager compile; checks the script
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from harness.models.config import ModelSpec
from harness.train import speed
from harness.train.errors import TrainingFailed
from harness.train.flops import mfu, peak_flops, train_flops_per_sample
from harness.train.loop import Trainer, TrainParts
from harness.train.random_batch import TEXT_LEN, random_pretrain_batch
from harness.train.settings import TrainSettings

MODEL = "METER-CLIP-ViT-B/16 + RoBERTa-base"


def model_spec(tiny: bool) -> ModelSpec:
    if tiny:
        return ModelSpec(vision="clip-vit-224/16", text="roberta", scale="tiny", weights="random", hidden=32,
                         heads=2, fusion_layers=1)
    return ModelSpec(vision="clip-vit-224/16", text="roberta", scale="paper", weights="random")


def settings_for(batch: int, steps: int, precision: str) -> TrainSettings:
    return TrainSettings(
        stage="pretrain", task=None, seed=0, total_steps=steps, global_batch=batch, per_device_batch=batch,
        num_processes=1, accumulation=1, image_size=0, lrs={"pretrained": 1e-5, "random": 5e-5, "head": 5e-5},
        precision=precision, log_every=max(1, steps // 2), checkpoint_at_end=False,  # type: ignore[arg-type]
        objectives=("mlm", "itm"), compile=False,  # gpu_check compiles the model itself, once per size
    )


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def try_batch(model: torch.nn.Module, groups: Any, batch: int, image_size: int, args: argparse.Namespace,
              device: torch.device) -> dict[str, Any] | None:
    """Train ``args.steps`` steps at this per-device batch; None when it does not fit in memory."""
    _free(device)  # the previous size's optimizer state must be gone before measuring this one
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        data = random_pretrain_batch(batch, image_size, int(model.text.vocab_size), device, text_len=args.text_len)
        parts = TrainParts(model=model, groups=groups, batches=lambda rank, world: itertools.repeat(data),
                           flops_per_sample=lambda m, b: train_flops_per_sample(m, b, batch))
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            result = Trainer(parts, settings_for(batch, args.steps, args.precision), Path(tmp), "gpu-check").run()
        wall = time.perf_counter() - started
    except (torch.cuda.OutOfMemoryError, TrainingFailed) as exc:
        if isinstance(exc, TrainingFailed) and "out of memory" not in str(exc):
            raise
        return None
    finally:
        _free(device)
    # The second log window leaves out the first steps (compilation, allocator and kernel warm-up).
    window = [r for r in result.history if r["metric"] == "step_time_s"][-1]["value"]
    loss = [r for r in result.history if r["metric"] == "loss"][-1]["value"]
    flops_step = result.stats["flops_per_step"]
    return {"per_device_batch": batch, "step_time_s": window, "samples_per_s": batch / window,
            "mfu": mfu(flops_step, window, 1, peak_flops(args.precision, device)),
            "peak_mem_gb": result.stats["peak_mem_mb"] / 1024, "tflops_per_step": flops_step / 1e12,
            "loss": loss, "wall_s": wall}


def measure_size(image_size: int, mode: str, args: argparse.Namespace, device: torch.device,
                 deadline: float, skipped: list[str]) -> list[dict[str, Any]]:
    """Every per-device batch at one image size in one mode ("eager" | "compiled")."""
    from harness.models import build_model
    from harness.models.groups import param_groups

    torch.manual_seed(0)
    with torch.device(device):
        model = build_model(model_spec(args.smoke), objectives=("mlm", "itm"), image_size=image_size)
    if mode == "compiled":
        speed.speed_up_blocks(model, compile=True, checkpointing=False, backend=args.compile_backend)
    groups = param_groups(model)
    rows = []
    for batch in args.batches:
        if time.perf_counter() > deadline:
            skipped.append(f"{image_size}px {mode} batch {batch}")
            continue
        out = try_batch(model, groups, batch, image_size, args, device)
        if out is None:
            print(f"[{image_size}px {mode}] batch {batch}: out of memory", flush=True)
            break
        rows.append({"image_size": image_size, "mode": mode, **out})
        print(f"[{image_size}px {mode}] batch {batch}: {_line(out)}", flush=True)
    del model, groups
    _free(device)
    return rows


def _line(out: dict[str, Any]) -> str:
    mfu_text = f"{out['mfu']:.1%}" if out.get("mfu") is not None else "n/a"
    peak = f"{out['peak_mem_gb']:.1f} GB" if out.get("peak_mem_gb") is not None else "n/a"
    return f"{out['samples_per_s']:.1f} samples/s, step {out['step_time_s']:.3f}s, MFU {mfu_text}, peak {peak}"


def meter_row(image_size: int, batch: int, args: argparse.Namespace) -> dict[str, Any]:
    """METER's own step at this size and batch, in METER's interpreter (a subprocess)."""
    script = Path(__file__).with_name("meter_step.py")
    command = [args.meter_python, str(script), "--meter", args.meter_checkout, "--image-size", str(image_size),
               "--batch", str(batch), "--steps", str(args.steps), "--text-len", str(args.text_len)]
    if args.smoke:
        command.append("--tiny")
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.meter_timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return {"image_size": image_size, "per_device_batch": batch, "error": f"timed out ({args.meter_timeout_s}s)"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"image_size": image_size, "per_device_batch": batch, "error": " | ".join(tail)}
    return json.loads(lines[-1])


def ratios(rows: list[dict[str, Any]], meter: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """samples/s of compiled over eager, and of each harness mode over METER, per size and batch."""
    by = {(r["image_size"], r["mode"], r["per_device_batch"]): r["samples_per_s"] for r in rows}
    by.update({(m["image_size"], "meter", m["per_device_batch"]): m["samples_per_s"] for m in meter
               if "samples_per_s" in m})
    out = []
    for size, _, batch in sorted({(k[0], 0, k[2]) for k in by}):
        eager, compiled, met = (by.get((size, m, batch)) for m in ("eager", "compiled", "meter"))
        out.append({"image_size": size, "per_device_batch": batch,
                    "compiled_over_eager": compiled / eager if compiled and eager else None,
                    "eager_over_meter": eager / met if eager and met else None,
                    "compiled_over_meter": compiled / met if compiled and met else None})
    return out


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 288, 384, 576])
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 64, 128, 256], help="per-device batches")
    parser.add_argument("--modes", nargs="+", default=["eager", "compiled"], choices=["eager", "compiled"])
    parser.add_argument("--steps", type=int, default=6, help="steps per measurement (the last half is timed)")
    parser.add_argument("--text-len", type=int, default=TEXT_LEN)
    parser.add_argument("--precision", default="bf16", choices=["bf16", "fp16", "fp32"])
    parser.add_argument("--compile-backend", default=None, help="torch.compile backend (inductor; smoke: aot_eager)")
    parser.add_argument("--budget-s", type=float, default=480.0, help="no new measurement starts after this")
    parser.add_argument("--meter-checkout", help="a checkout of zdou0830/METER: also time METER's own step")
    parser.add_argument("--meter-python", help="the interpreter of METER's pinned environment (transformers 4.6.0)")
    parser.add_argument("--meter-timeout-s", type=float, default=300.0)
    parser.add_argument("--smoke", action="store_true",
                        help="CPU smoke test: tiny model, 32px, batches 2 4, 4 steps, fp32, aot_eager compile")
    parser.add_argument("--out", type=Path, help="also write the JSON summary here")
    args = parser.parse_args(argv)
    if bool(args.meter_checkout) != bool(args.meter_python):
        parser.error("--meter-checkout and --meter-python go together")
    if args.smoke:
        args.sizes, args.batches, args.steps, args.precision = [32], [2, 4], 4, "fp32"
        args.text_len = min(args.text_len, 12)
    args.compile_backend = args.compile_backend or ("aot_eager" if args.smoke else "inductor")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu" and not args.smoke:
        print("no GPU: run with --smoke for a CPU smoke test of this script", file=sys.stderr)
        return 2
    torch.backends.cuda.matmul.allow_tf32 = True
    started = time.perf_counter()
    deadline = started + args.budget_s
    skipped: list[str] = []
    rows = [row for size in args.sizes for mode in args.modes
            for row in measure_size(size, mode, args, device, deadline, skipped)]
    meter: list[dict[str, Any]] = []
    if args.meter_checkout:
        for size, batch in sorted({(r["image_size"], r["per_device_batch"]) for r in rows}):
            if time.perf_counter() > deadline:
                skipped.append(f"{size}px METER batch {batch}")
                continue
            meter.append(meter_row(size, batch, args))
            print(f"[{size}px METER] batch {batch}: " + (meter[-1].get("error") or _line(meter[-1])), flush=True)
    summary = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
               "precision": args.precision, "model": MODEL + (" (tiny)" if args.smoke else ""),
               "objectives": ["mlm", "itm"], "text_len": args.text_len, "compile_backend": args.compile_backend,
               "results": rows, "meter": meter, "ratios": ratios(rows, meter), "skipped_for_budget": skipped,
               # The smoke test's two tiny models differ in size (METER's is the golden test's preset): its
               # ratios check the plumbing only; at paper scale both are METER-CLIP-ViT-B/16 + RoBERTa-base.
               "like_for_like": not args.smoke,
               "wall_s": time.perf_counter() - started}
    for r in summary["ratios"]:
        shown = ", ".join(f"{k} {v:.2f}×" for k, v in r.items() if k.endswith(("eager", "meter")) and v)
        print(f"[{r['image_size']}px batch {r['per_device_batch']}] {shown or 'no ratio'}")
    if skipped:
        print(f"skipped for the time budget: {', '.join(skipped)}")
    text = json.dumps(summary)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
