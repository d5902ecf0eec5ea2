"""What SLURM holds of a grid: the submissions record (``<results>/slurm/<grid>/submissions.jsonl``),
the queue (``squeue``), and cancelling the jobs a failed one blocks. Below the executor, the job entry
and the state readers, which all ask it (no module of those imports another through it).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.paths import run_dir

if TYPE_CHECKING:
    from harness.spec.schema import JobSpec

SUBMISSIONS = "submissions.jsonl"


def slurm_folder(results: Path, grid: str) -> Path:
    return Path(results) / "slurm" / grid


def read_records(results: Path, grid: str) -> list[dict[str, Any]]:
    """Every submission of ``grid`` under ``results``, oldest first (unreadable lines skipped)."""
    path = slurm_folder(results, grid) / SUBMISSIONS
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def submitted_ids(results: Path, grid: str) -> dict[str, str]:
    """run id → its latest SLURM job id ("123_4" or "123")."""
    ids: dict[str, str] = {}
    for record in read_records(results, grid):
        ids.update(record.get("jobs") or {})
    return ids


def active_jobs() -> dict[str, str]:
    """SLURM job id → state ("PENDING", "RUNNING", ...) of every job in the queue, array tasks one by one."""
    done = subprocess.run(["squeue", "-h", "-r", "-o", "%i|%T"], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        from harness.dispatch.cluster import ClusterError

        raise ClusterError([f"no SLURM cluster answers: squeue failed: {done.stderr.strip()}"])
    return dict(line.split("|", 1) for line in done.stdout.split() if "|" in line)


def cancel_blocked_by(results: Path, failed: JobSpec, slurm_id: str) -> list[str]:
    """scancel every queued job whose afterok names ``slurm_id``'s array; record them cancelled.

    With one afterok per array, a failed pre-training task blocks its whole fine-tuning array:
    those jobs are cancelled with the reason, and ``harness retry`` submits them again.
    """
    from harness.dispatch.records import record_end
    from harness.spec.runs import read_spec

    master = slurm_id.split("_")[0]
    waiting: dict[str, Any] = {}
    for record in read_records(results, failed.grid):
        named = (record.get("dependency") or "").removeprefix("afterok:").split(":")
        if master in named or slurm_id in named:
            waiting.update(record.get("jobs") or {})
    active = active_jobs()
    targets = {rid: sid for rid, sid in waiting.items() if sid in active}
    if not targets:
        return []
    subprocess.run(["scancel", *sorted(set(targets.values()))], check=False, capture_output=True, timeout=60)
    reason = (f"waited (afterok) on SLURM job {master}, in which pre-training run {failed.short_id} failed; "
              "`harness retry` submits it again")
    for rid in targets:
        record_end(read_spec(run_dir(results, rid)), results, "cancelled", reason)
    return list(targets)


def queue_states(results: Path, grid: str) -> dict[str, str]:
    """run id → "queued" or "running" for the grid's jobs that SLURM still holds."""
    active = active_jobs()
    states = {}
    for rid, sid in submitted_ids(Path(results), grid).items():
        if sid in active:
            states[rid] = "running" if active[sid] in ("RUNNING", "COMPLETING") else "queued"
    return states
