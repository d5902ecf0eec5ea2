"""What a job leaves behind: ``progress.json`` as it goes, runs and metrics rows in the store.

The runs row is the job's public state: "running" at start, then "done" only after the
weights, metrics and result file are all written, or "failed"/"pruned" with the reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.spec.schema import JobSpec
from harness.train.checkpoint import write_json_atomic

_REPO = Path(__file__).resolve().parents[2]


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def git_state(repo: Path = _REPO) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the harness checkout, or (None, None) outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                                capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit or None, bool(status.strip())


def versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for package in ("meter-harness", "torch", "transformers", "timm", "accelerate", "tokenizers"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[package] = metadata.version(package)
    return out


def executor_info() -> dict[str, Any]:
    """Where this process runs: SLURM's variables when there, else the dispatcher's hint."""
    slurm_id = os.environ.get("SLURM_ARRAY_JOB_ID") or os.environ.get("SLURM_JOB_ID")
    if slurm_id and os.environ.get("SLURM_ARRAY_TASK_ID"):
        slurm_id = f"{slurm_id}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    return {
        "host": socket.gethostname(),
        "executor": os.environ.get("HARNESS_EXECUTOR") or ("slurm" if slurm_id else "local"),
        "slurm_job_id": slurm_id,
        "requeues": int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0),
    }


def run_row(job: JobSpec, status: str, **fields: Any) -> dict[str, Any]:
    """One runs-table row: identity, factors (``f_<name>``), the spec, plus ``fields``."""
    row: dict[str, Any] = {
        "run_id": job.run_id, "grid": job.grid, "stage": job.stage, "task": job.task, "seed": job.seed,
        "status": status, "depends_on": job.depends_on,
        "spec_json": json.dumps(job.model_dump(mode="json"), sort_keys=True),
    }
    row.update({f"f_{name}": level for name, level in job.factors.items()})
    row.update(fields)
    return row


class ProgressFile:
    """``progress.json``: what ``harness status`` shows while a job runs (main process only)."""

    def __init__(self, run_dir: Path, run_id: str, total: int, resumed_from: dict[str, Any] | None = None) -> None:
        self.path = run_dir / "progress.json"
        self.run_id, self.total = run_id, total
        self.host, self.pid = socket.gethostname(), os.getpid()
        self._start = time.monotonic()
        # This attempt's first step: resumed_from {"step", "checkpoint"} when it restored a checkpoint.
        self.resumed_from = resumed_from
        self._start_step = int(resumed_from["step"]) if resumed_from else 0

    def write(self, state: str, step: int, loss: float | None = None,
              metrics: dict[str, float] | None = None) -> None:
        done = step - self._start_step  # optimizer steps this attempt ran
        elapsed = time.monotonic() - self._start
        eta = elapsed / done * (self.total - step) if done > 0 and state == "running" else None
        write_json_atomic(self.path, {
            "run_id": self.run_id, "state": state, "step": step, "total": self.total, "loss": loss,
            "metrics": metrics or {}, "eta_s": eta, "updated": utc_now(), "pid": self.pid, "host": self.host,
            "resumed_from": self.resumed_from, "steps_run": done,
        })


class ResultSink:
    """Runs and metrics rows of one run: its folder's record first, then the results store
    (``harness.store.runrecord``: the store can always be rebuilt from the run folders)."""

    def __init__(self, results: Path, run_dir: Path) -> None:
        self.results = results

    def run(self, row: dict[str, Any]) -> None:
        from harness.store.runrecord import record_run

        record_run(self.results, row)

    def metrics(self, run_id: str, rows: list[dict[str, Any]]) -> None:
        from harness.store.runrecord import record_metrics

        record_metrics(self.results, run_id, rows)
