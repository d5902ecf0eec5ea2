"""Two CPU processes under torchrun (gloo DDP) end like one process with the same global batch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from train_jobs import finetune_job, pretrain_job

from harness.spec.runs import write_spec
from harness.store import Store
from harness.train import run_job


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _train(run_dir: Path, processes: int) -> subprocess.CompletedProcess[str]:
    """``harness train`` under torchrun (`accelerate launch --cpu --num_processes 2` runs ONE process)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}",
               f"--master_port={_free_port()}", "-m", "harness", "train", str(run_dir)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def _curve(results: Path, run_id: str, metric: str) -> list[float]:
    frame = Store(results).metrics(run_ids=[run_id])
    rows = frame[(frame["split"] == "train") & (frame["metric"] == metric)].sort_values("step")
    return rows["value"].tolist()


@pytest.mark.slow
def test_two_processes_match_one(tmp_path: Path) -> None:
    # SNLI-VE: its samples carry no per-process randomness (MLM masks and ITM negatives do).
    job = finetune_job("snli-ve", steps=4, finetune={"per_device_batch": None},
                       train={"log_every": 1, "deterministic": True})
    runs = {}
    for processes in (1, 2):
        results = tmp_path / f"p{processes}"
        folder = write_spec(job, results).parent
        if processes == 1:  # in this process: its imports are paid already
            run_job(job, results)
        else:
            done = _train(folder, processes)
            assert done.returncode == 0, done.stderr[-3000:]
        runs[processes] = results
    stats = {p: Store(r).runs().iloc[0] for p, r in runs.items()}
    assert stats[1]["status"] == stats[2]["status"] == "done"
    for processes, results in runs.items():
        summary = json.loads((results / "runs" / job.run_id / "result.json").read_text())
        assert summary["stats"]["num_processes"] == processes
        assert summary["stats"]["per_device_batch"] == 8 // processes
    one, two = _curve(runs[1], job.run_id, "loss"), _curve(runs[2], job.run_id, "loss")
    assert len(one) == len(two) == 4
    # Same samples, same initial weights, no dropout (model.dropout 0 reaches the text encoder too):
    # two processes of 4 with averaged gradients equal one of 8 up to float summation order (~1e-7).
    # That they really were two processes is checked above (num_processes, per_device_batch).
    assert two == pytest.approx(one, rel=1e-5), (one, two)


@pytest.mark.slow
def test_two_processes_with_unused_parameters(tmp_path: Path) -> None:
    """MLM only: the ITM pooler gets no gradient; DDP must be told, or it hangs or fails."""
    job = pretrain_job(steps=2, objectives=("mlm",), pretrain={"per_device_batch": None, "zero_shot": None})
    folder = write_spec(job, tmp_path).parent
    done = _train(folder, 2)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((folder / "result.json").read_text())
    assert summary["status"] == "done" and summary["stats"]["num_processes"] == 2
