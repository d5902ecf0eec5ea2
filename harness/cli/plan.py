"""``harness plan grids/X.yaml``: the jobs a grid compiles into, their status and cost.

Cost (harness/dispatch/cost.py): parameters of the job's own model (the count `harness ls --params`
prints), FLOPs, steps from the task's own dataset size, GPU-hours, the per-device batch and
accumulation, and the estimated peak memory per GPU; a job whose estimate exceeds its time_min
is named with the requeues it needs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from harness.cli.common import add_grid_args, load_grid, results_path


def configure(parser: argparse.ArgumentParser) -> None:
    add_grid_args(parser)
    parser.add_argument("--json", action="store_true", help="print the jobs as JSON")
    parser.add_argument("--limit", type=int, default=200, help="table rows to print (0: all)")


def job_status(results: Path) -> dict[str, str]:
    """run id → state from the results store; empty (all "new") while no store exists."""
    if not (results / "store").exists():
        return {}
    from harness.store import Store

    return Store(results).status()


def plan_rows(grid: Any, status: dict[str, str]) -> list[dict[str, Any]]:
    from harness.dispatch.cost import job_cost, time_warning

    rows = []
    for job in grid.jobs:
        cost = job_cost(job)
        rows.append({
            "run_id": job.run_id, "stage": job.stage, "task": job.task or "-", "factors": job.factors,
            "seed": job.seed, "depends_on": job.depends_on, "status": status.get(job.run_id, "new"),
            "params_m": cost.params / 1e6, "gflops_per_step": cost.flops_per_step / 1e9, "steps": cost.steps,
            "total_pflops": cost.total_flops / 1e15, "gpu_hours": cost.gpu_hours, "gpus": cost.gpus,
            "per_device_batch": cost.per_device_batch, "accumulation": cost.accumulation,
            "peak_mem_gb": cost.peak_mem_gb, "wall_hours": cost.wall_hours, "time_warning": time_warning(job, cost),
        })
    return rows


def _table(rows: list[dict[str, Any]], factors: tuple[str, ...], limit: int) -> str:
    header = ["id", "stage", "task", *factors, "seed", "after", "status", "params", "GFLOP/step", "steps",
              "PFLOP", "GPU-h", "GPUs", "batch/GPU×acc", "mem/GPU"]
    body = []
    for r in rows[: limit or None]:
        body.append([r["run_id"][:10], r["stage"], r["task"], *(r["factors"].get(f, "*") for f in factors),
                     str(r["seed"]), (r["depends_on"] or "-")[:10], r["status"], f"{r['params_m']:.1f}M",
                     f"{r['gflops_per_step']:.3g}", str(r["steps"]), f"{r['total_pflops']:.3g}",
                     f"{r['gpu_hours']:.3g}", str(r["gpus"]), f"{r['per_device_batch']}×{r['accumulation']}",
                     f"~{r['peak_mem_gb']:.3g}G"])
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in [header, *body]]
    if limit and len(rows) > limit:
        lines.append(f"... {len(rows) - limit} more jobs (--limit 0 shows all)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    grid = load_grid(args)
    rows = plan_rows(grid, job_status(results_path(args)))
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"grid {grid.name} (profile {grid.profile or '-'}): {grid.cells} cells × {len(grid.seeds)} seeds → "
          f"{len(rows)} jobs ({sum(r['stage'] == 'pretrain' for r in rows)} pre-training)")
    print(_table(rows, grid.factors, args.limit))
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    total_h = sum(r["gpu_hours"] for r in rows)
    tflops = grid.jobs[0].experiment.resources.assumed_tflops
    print(f"status: {', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}")
    print(f"estimated cost: {sum(r['total_pflops'] for r in rows):.4g} PFLOP ≈ {total_h:.4g} GPU-hours "
          f"at an assumed {tflops:g} TFLOP/s sustained per GPU; mem/GPU: estimated peak (weights, gradients, "
          f"AdamW states, activations of one per-device batch)")
    for r in rows:
        if r["time_warning"]:
            print(f"warning: {r['time_warning']}")
    return 0
