"""METER's own MLM + ITM training step, timed in METER's pinned environment (for ``gpu_check.py``).

    METER_PYTHON benches/meter_step.py --meter PATH/TO/METER --image-size 288 --batch 64 --steps 6

Runs under METER's interpreter (transformers 4.6.0; see ``tools/meter_golden.py`` for the venv), not
the harness's: it imports no ``harness`` module. The model is METER's ``METERTransformerSS``, built by
``tools/meter_golden.build_meter`` (METER's CLIP class and RoBERTa at METER-CLIP-ViT-B/16 + RoBERTa-base
sizes, random weights; ``--tiny``: the golden test's tiny preset). A step is METER's
``objectives.compute_mlm`` + ``objectives.compute_itm`` on ``--batch`` random image-text pairs (each
objective its own forward, as the harness's MLM and ITM sub-batches), backward, and METER's optimizer
(transformers 4.6 ``AdamW``), under ``torch.autocast`` in bf16 on a GPU. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def random_batch(p: dict, batch: int, device: torch.device) -> dict:
    gen = torch.Generator().manual_seed(0)
    length, size = p["length"], p["image_size"]
    ids = torch.randint(3, p["vocab"] - 1, (batch, length), generator=gen)
    mask = torch.ones(batch, length, dtype=torch.long)
    mask[:, length - length // 4:] = 0
    labels = torch.full_like(ids, -100)
    chosen = (torch.rand(batch, length, generator=gen) < 0.15) & mask.bool()
    labels[chosen] = ids[chosen]
    out = {"text_ids": ids, "text_masks": mask, "text_labels": torch.full_like(ids, -100), "text_ids_mlm": ids,
           "text_labels_mlm": labels, "image": [torch.randn(batch, 3, size, size, generator=gen)],
           "false_image_0": [torch.randn(batch, 3, size, size, generator=gen)]}
    out = {k: [t.to(device) for t in v] if isinstance(v, list) else v.to(device) for k, v in out.items()}
    out["text"] = ["x"] * batch  # compute_itm counts the pairs by it
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--meter", type=Path, required=True, help="a checkout of zdou0830/METER")
    parser.add_argument("--image-size", type=int, default=288)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=6, help="the last half is timed")
    parser.add_argument("--text-len", type=int, default=50)
    parser.add_argument("--tiny", action="store_true", help="the golden test's tiny preset (CPU smoke test)")
    args = parser.parse_args()
    sys.path.insert(0, str(TOOLS))
    import meter_golden  # the harness's recipe for building METER's model offline (tools/meter_golden.py)
    import transformers
    from transformers.optimization import AdamW

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    p = dict(meter_golden.PRESETS["tiny" if args.tiny else "paper"], image_size=args.image_size,
             length=args.text_len)
    p["text_positions"] = max(p["text_positions"], args.text_len + 2)
    torch.manual_seed(0)
    model = meter_golden.build_meter(args.meter, p).to(device).train()
    from meter.modules import objectives

    optimizer = AdamW(model.parameters(), lr=1e-5, eps=1e-8, betas=(0.9, 0.98), weight_decay=0.01)
    batch = random_batch(p, args.batch, device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    times = []
    for _ in range(args.steps):
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        sync()
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=device.type == "cuda"):
            loss = objectives.compute_mlm(model, batch)["mlm_loss"] + objectives.compute_itm(model, batch)["itm_loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync()
        times.append(time.perf_counter() - start)
    timed = times[len(times) // 2:]
    step = sum(timed) / len(timed)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    print(json.dumps({"meter": True, "image_size": args.image_size, "per_device_batch": args.batch,
                      "step_time_s": step, "samples_per_s": args.batch / step, "peak_mem_gb": peak,
                      "loss": float(loss.detach()), "transformers": transformers.__version__, "device": device.type}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
