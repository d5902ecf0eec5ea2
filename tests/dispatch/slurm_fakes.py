"""Shared bits of the SLURM tests: small grids, job functions that run inside SLURM tasks, waits.

Job functions here are imported by SLURM tasks by name ("slurm_fakes:quick_job"); the executor
puts this folder on the task's sys.path (``JobEntry.extra_paths``).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.dispatch.clusterinfo import cluster_answers
from harness.paths import run_dir

GRID = """\
name: {name}
base:
  model: {{scale: tiny, weights: random, hidden: 16, heads: 2, fusion_layers: 1, max_text_len: 8}}
  pretrain: {{objectives: [mlm, itm], steps: 4, batch: 4, image_size: 32, datasets: [synthetic], zero_shot: null}}
  finetune:
    vqa: {{steps: 4, batch: 4, image_size: 32, dataset: synthetic, eval_splits: [test]}}
  resources: {{threads: 1, mem_gb: 1, time_min: 5}}
factors:
  model.text: [{levels}]
seeds: 1
"""


def write_grid(folder: Path, name: str = "slurmgrid", levels: str = "bert, roberta") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(GRID.format(name=name, levels=levels))
    return path




needs_cluster = pytest.mark.skipif(not cluster_answers(), reason="no SLURM cluster answers (sinfo failed); "
                                   "start one with slurm/start-local-cluster.sh --fake-gpus 2")


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.5) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")


@pytest.fixture
def cancel_leftovers(tmp_path: Path):  # type: ignore[no-untyped-def]
    """After the test, scancel (by id) whatever it submitted that is still queued or running."""
    yield
    from harness.dispatch.slurm import active_jobs

    ids = set()
    for record_file in tmp_path.glob("**/slurm/*/submissions.jsonl"):
        for line in record_file.read_text().splitlines():
            ids.update(json.loads(line)["jobs"].values())
    if ids:
        left = sorted(ids & set(active_jobs()))
        if left:
            subprocess.run(["scancel", *left], check=False, capture_output=True, timeout=60)


def store_statuses(results: Path) -> dict[str, str]:
    from harness.dispatch.state import store_status

    return store_status(results)


# ---- job functions (run inside SLURM tasks) -------------------------------------------------


def _journal(results: Path, what: str, run_id: str, **extra: object) -> None:
    line = json.dumps({"t": time.time(), "what": what, "run_id": run_id, **extra})
    with open(Path(results) / "journal.jsonl", "a") as fh:
        fh.write(line + "\n")


def read_journal(results: Path) -> list[dict]:  # type: ignore[type-arg]
    path = Path(results) / "journal.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def quick_job(job, results: Path) -> dict:  # type: ignore[no-untyped-def]
    """Keeps the trainer's contract (store rows, model file) without torch; sleeps FAKE_SLEEP_S.

    Crashes when FAKE_CRASH lists "<stage>:<text level>", e.g. "pretrain:roberta".
    """
    from harness.store import Store

    results = Path(results)
    store = Store(results)
    store.write_run({"spec": job, "status": "running"})
    _journal(results, "start", job.run_id, slurm=os.environ.get("SLURM_JOB_ID"))
    if job.depends_on and not (run_dir(results, job.depends_on) / "model.safetensors").exists():
        raise RuntimeError("pre-training weights missing")
    time.sleep(float(os.environ.get("FAKE_SLEEP_S", "0.2")))
    if f"{job.stage}:{job.factors.get('model.text')}" in os.environ.get("FAKE_CRASH", "").split(","):
        raise RuntimeError(f"fake crash in {job.stage} {job.factors}")
    (run_dir(results, job.run_id) / "model.safetensors").write_bytes(b"weights")
    store.write_run({"spec": job, "status": "done"})
    _journal(results, "end", job.run_id)
    return {"ok": 1.0}


def gloo_job(job, results: Path) -> dict:  # type: ignore[no-untyped-def]
    """Every rank joins one gloo process group through the env:// variables the entry exported."""
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    total = torch.tensor([float(rank + 1)])
    dist.all_reduce(total)
    seen = {"rank": rank, "world": world, "sum": float(total.item()),
            "cuda_visible": os.environ.get("CUDA_VISIBLE_DEVICES"), "local_rank": os.environ.get("LOCAL_RANK")}
    (run_dir(Path(results), job.run_id) / f"rank{rank}.json").write_text(json.dumps(seen))
    dist.barrier()
    dist.destroy_process_group()
    return seen
