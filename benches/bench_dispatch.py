"""How long does queueing a 1,000-job grid take: job arrays vs one sbatch call per job?

    .venv/bin/python benches/bench_dispatch.py [--jobs 1000] [--cluster local] [--keep]

Needs a live cluster (slurm/start-local-cluster.sh). The grid has pre-training and fine-tuning
jobs (half each), so both modes submit afterok dependencies: arrays name the pre-training
array, single jobs their own pre-training job. Jobs exit at once; everything the benchmark
submitted is cancelled (by job id) right after each timing. Prints both times and the ratio.
Per-job mode runs without submitit's 0.2 s pause between sbatch calls, so it measures sbatch
itself (with the pause add 0.2 s × jobs).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LEVELS = ("bert", "roberta", "electra", "albert", "deberta")
GRID = """\
name: bench_dispatch
base:
  model: {{scale: tiny, weights: random, hidden: 16, heads: 2, fusion_layers: 1}}
  pretrain: {{objectives: [mlm], steps: 1, batch: 2, image_size: 32, datasets: [synthetic], zero_shot: null}}
  finetune:
    vqa: {{steps: 1, batch: 2, image_size: 32, dataset: synthetic}}
  resources: {{threads: 1, mem_gb: 0.5, time_min: 2}}
factors:
  model.text: [{levels}]
seeds: {seeds}
"""


def exit_at_once(job: object, results: Path) -> None:
    """The benchmark's job function: nothing to do."""


def grid_jobs(folder: Path, n_jobs: int) -> list:  # type: ignore[type-arg]
    from harness.spec.compile import compile_grid

    seeds = max(1, n_jobs // (2 * len(LEVELS)))
    path = folder / "bench_dispatch.yaml"
    path.write_text(GRID.format(levels=", ".join(LEVELS), seeds=seeds))
    return list(compile_grid(path).jobs)


def cancel_submitted(results: Path) -> int:
    from harness.dispatch.slurm import read_records

    ids = sorted({sid for record in read_records(results, "bench_dispatch") for sid in record["jobs"].values()})
    for start in range(0, len(ids), 500):
        subprocess.run(["scancel", *ids[start:start + 500]], check=False, capture_output=True)
    return len(ids)


def time_submit(jobs: list, results: Path, cluster: str, arrays: bool) -> float:  # type: ignore[type-arg]
    from harness.dispatch.order import write_specs
    from harness.dispatch.slurm import SlurmExecutor

    write_specs(jobs, results)
    import importlib

    # By module name, not __main__: SLURM tasks import it (its folder goes on their sys.path).
    job_fn = importlib.import_module("bench_dispatch").exit_at_once
    executor = SlurmExecutor(cluster, job_fn, arrays=arrays, throttle_s=0.0)
    started = time.perf_counter()
    executor.submit(jobs, results)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--cluster", default="local", help="cluster profile name or YAML path")
    parser.add_argument("--keep", action="store_true", help="keep the temporary results folder")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # tasks import this module by name
    root = Path(tempfile.mkdtemp(prefix="bench_dispatch_"))
    jobs = grid_jobs(root, args.jobs)
    print(f"grid: {len(jobs)} jobs ({sum(j.stage == 'pretrain' for j in jobs)} pre-training), cluster {args.cluster}")
    timings = {}
    for mode, arrays in (("arrays", True), ("one sbatch per job", False)):
        results = root / mode.replace(" ", "_")
        try:
            timings[mode] = time_submit(jobs, results, args.cluster, arrays)
        finally:
            cancelled = cancel_submitted(results)
        print(f"{mode:>20}: {timings[mode]:7.2f} s to queue {len(jobs)} jobs "
              f"({1000 * timings[mode] / len(jobs):.1f} ms/job); cancelled {cancelled} SLURM ids")
    ratio = timings["one sbatch per job"] / timings["arrays"]
    print(f"{'ratio':>20}: one sbatch per job takes {ratio:.1f}× as long as arrays")
    if not args.keep:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
