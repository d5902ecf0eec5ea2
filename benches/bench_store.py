"""Results store + report at scale: 10,000 runs × 50 metrics, then the report table.

    .venv/bin/python benches/bench_store.py [--runs 10000] [--metrics 50] [--writers 2] [--cold] [--store DIR]

Phases (targets on a 2-core CPU: ingest ≤ 2 s, report table ≤ 2 s):
  write   every run writes its runs row and its metrics through the Store API (20,000 atomic
          Parquet files; automatic compaction merges them as they accumulate). In real use
          these writes are spread over 10,000 jobs; the bench does them back to back.
  ingest  a fresh Store reads every run (latest row per run) and every metric row.
  report  build_report(..., with_figures=False) over the 10,000 jobs: cells, stats, tables.
  --cold  also time reading the same 20,000 one-write files with compaction switched off.
Each phase prints wall and CPU seconds and the load average: on a shared machine the CPU
time is the figure to compare with the target.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path

TEXTS = [f"text{i}" for i in range(10)]
LRS = [f"{i}e-5" for i in range(1, 11)]
SIZES = [str(64 + 32 * i) for i in range(10)]


def make_jobs(n_runs: int):  # type: ignore[no-untyped-def]
    from harness.spec.schema import ExperimentSpec, FinetuneSpec, JobSpec

    exp = ExperimentSpec(finetune={"vqa": FinetuneSpec(steps=10, eval_splits=("test",))})
    cells = [(t, lr, s) for t in TEXTS for lr in LRS for s in SIZES]
    jobs = []
    for i in range(n_runs):
        text, lr, size = cells[i % len(cells)]
        jobs.append(JobSpec.model_construct(
            run_id=f"{i:064x}", grid="bench", stage="finetune", task="vqa", seed=i // len(cells),
            factors={"model.text": text, "optim.lr": lr, "finetune.vqa.image_size": size}, depends_on=None,
            experiment=exp))
    return jobs


def _write_share(root: str, n_runs: int, n_metrics: int, writer: int, writers: int, compact_at: int) -> None:
    from harness.store import Store

    store = Store(root, compact_at=compact_at)
    for job in make_jobs(n_runs)[writer::writers]:
        store.write_run({"spec": job, "status": "done", "wall_s": 60.0, "device_hours": 0.02, "host": "bench"})
        base = (int(job.run_id, 16) % 97) / 200
        rows = [{"stage": "finetune", "task": "vqa", "split": "test", "metric": "vqa_score", "value": 0.4 + base,
                 "step": 10},
                {"stage": "finetune", "task": "vqa", "split": "test", "metric": "accuracy", "value": 0.5 + base,
                 "step": 10}]
        rows += [{"stage": "finetune", "task": "vqa", "split": "train", "metric": "loss", "value": 2.0 / (s + 1),
                  "step": s} for s in range(n_metrics - 2)]
        store.write_metrics(job.run_id, rows)


def write_all(root: Path, n_runs: int, n_metrics: int, writers: int, compact_at: int) -> float:
    start = time.perf_counter()
    ctx = mp.get_context("forkserver")
    procs = [ctx.Process(target=_write_share, args=(str(root), n_runs, n_metrics, w, writers, compact_at))
             for w in range(writers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    if any(p.exitcode for p in procs):
        raise SystemExit("a writer failed")
    return time.perf_counter() - start


class Timer:
    """Wall and CPU seconds of this process: on a shared machine the CPU time is the steadier figure."""

    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu

    def __str__(self) -> str:
        return f"{self.wall:6.2f} s wall {self.cpu:6.2f} s CPU"


def ingest(root: Path, compact_at: int = 64) -> tuple[Timer, int, int]:
    from harness.store import Store

    with Timer() as timer:
        store = Store(root, compact_at=compact_at)
        runs, metrics = store.runs(), store.metrics()
    return timer, len(runs), len(metrics)


def report(root: Path, n_runs: int) -> tuple[Timer, int]:
    from harness.report import build_report
    from harness.spec.report import ReportMetric, ReportSpec
    from harness.store import Store

    jobs = make_jobs(n_runs)
    spec = ReportSpec(rows=("model.text", "optim.lr"), columns=("finetune.vqa.image_size",), metrics=(
        ReportMetric(name="vqa", task="vqa", metric="vqa_score"),
        ReportMetric(name="acc", task="vqa", metric="accuracy")))
    with Timer() as timer:
        result = build_report(jobs, spec, Store(root), "bench", root / "report", with_figures=False)
    return timer, result.table.measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--metrics", type=int, default=50)
    parser.add_argument("--writers", type=int, default=2, help="writer processes")
    parser.add_argument("--cold", action="store_true", help="also read 20,000 uncompacted files")
    parser.add_argument("--store", help="results root of an earlier run to measure again (skips writing)")
    args = parser.parse_args()
    mp.get_context("forkserver").set_forkserver_preload(["harness.store.store", "harness.spec.schema"])
    import harness.report.build  # noqa: F401 - imports (pandas, pyarrow) are not part of the timings
    import harness.store.store  # noqa: F401

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.store or tmp)
        if not (root / "store").exists():
            seconds = write_all(root, args.runs, args.metrics, args.writers, compact_at=64)
            print(f"write   {seconds:6.2f} s wall  {2 * args.runs} Store writes by {args.writers} processes "
                  f"({1e3 * seconds * args.writers / (2 * args.runs):.2f} ms per write per process)")
        timer, n_runs, n_rows = ingest(root)
        print(f"ingest  {timer}  {n_runs} runs, {n_rows} metric rows  [target ≤ 2 s]")
        timer, measured = report(root, args.runs)
        print(f"report  {timer}  table of {measured} measured cells (incl. reading the store) [target ≤ 2 s]")
        if args.cold:
            cold = root / "cold"
            write_all(cold, args.runs, args.metrics, args.writers, compact_at=0)
            timer, n_runs, n_rows = ingest(cold, compact_at=0)
            print(f"cold    {timer}  reading {2 * args.runs} one-write files without compaction")
        print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

if __name__ == "__main__":
    main()
