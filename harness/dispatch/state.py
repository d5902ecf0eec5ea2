"""Job states, read from the results store and the run folders (torch-free).

The store is the authority for how a job ended (its latest runs row); the run folder's
``progress.json`` says how far a running job is and which process runs it, so a "running"
job whose process is gone on this host shows as "interrupted". For a grid sent to SLURM the
queue has a say too: pending there means "queued" (a newer attempt than the store's row);
gone from it while the files still say queued/running means "interrupted".
The run-folder records (``record_end``, ``read_progress``, ...) are in ``records``, the text view
in ``view``; their names are re-exported here for the callers that import them from this module.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.claim import holder_alive, read_claim
from harness.dispatch.records import (
    ERROR,
    LOG,
    PROGRESS,
    error_reason,
    first_paragraph,
    format_traceback,
    process_alive,
    read_progress,
    record_end,
    store_status,
)
from harness.dispatch.view import (
    ProgressView,
    fmt_duration,
    fmt_factors,
    fmt_metric,
    fmt_step,
    job_label,
    table,
)
from harness.paths import run_dir

if TYPE_CHECKING:
    from harness.spec.schema import JobSpec

BUSY_STATES = ("queued", "running")
RESULT_FILE = "result.json"  # the trainer's summary of a finished run (harness.train.job)


@dataclass(frozen=True)
class JobState:
    """What is known about one job right now."""

    job: JobSpec
    state: str
    step: int | None = None
    total: int | None = None
    loss: float | None = None
    eta_s: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    pid: int | None = None
    host: str | None = None
    note: str = ""

    @property
    def run_id(self) -> str:
        return self.job.run_id


def job_state(job: JobSpec, results: Path, stored: str | None, slurm: SlurmView | None = None) -> JobState:
    """Combine the store's word on ``job`` with its run folder (and the SLURM queue, when it ran there)."""
    folder = run_dir(results, job.run_id)
    progress = read_progress(folder) or {}
    state = stored or str(progress.get("state") or "pending")
    pid, host = progress.get("pid"), progress.get("host")
    claim = read_claim(folder)
    live = holder_alive(claim)
    if live and claim:
        pid, host = claim.get("pid"), claim.get("host")
    local_pid = live and host == socket.gethostname()
    note = ""
    # The run's claim is the proof of life (taken before the first row or progress.json is written,
    # removed after the last): "running" without a live holder was interrupted, however early.
    if state == "running" and not live:
        state = "interrupted"
        note = "its process is gone" if claim is not None else "no process holds it"
    elif live and state not in ("done", "queued"):
        state = "running"  # e.g. a claim taken by another grid or a search sharing this run id
    if slurm is not None:
        state, note = _with_slurm_queue(job.run_id, state, stored, slurm, local_pid)
    if state in ("failed", "cancelled"):
        note = error_reason(folder, state)
    if state == "done":
        stale = _stale_note(job, folder)
        state, note = ("stale", stale) if stale else (state, note)
    return JobState(
        job=job,
        state=state,
        step=progress.get("step"),
        total=progress.get("total"),
        loss=progress.get("loss"),
        eta_s=progress.get("eta_s") if state == "running" else None,
        metrics=dict(progress.get("metrics") or {}),
        pid=pid,
        host=host,
        note=note,
    )


def _with_slurm_queue(
    run_id: str, state: str, stored: str | None, slurm: SlurmView, local_pid: bool
) -> tuple[str, str]:
    """(state, note) once the SLURM queue has had its say."""
    in_queue = slurm.queue.get(run_id)
    if in_queue == "queued" and state != "done":
        return "queued", ""  # pending in SLURM: a new attempt (resubmitted or requeued), newer than the store
    if in_queue == "running" and (stored is None or state == "interrupted"):
        return "running", ""  # started; the trainer has not claimed the run or written its first row yet
    # (A "running" job whose store row says cancelled/failed is completing after scancel: keep the row.)
    if in_queue is None and run_id in slurm.submitted and state in BUSY_STATES and not local_pid:
        return "interrupted", "no longer in the SLURM queue"
    return state, ""


def _stale_note(job: JobSpec, folder: Path) -> str | None:
    """Why the finished run in ``folder`` is stale (computed from other generated inputs), else None."""
    from harness.models.provenance import stale_note

    try:
        recorded = json.loads((folder / RESULT_FILE).read_text()).get("inputs")
    except (OSError, ValueError, AttributeError):
        return None  # no readable result: nothing recorded to compare
    return stale_note(job, recorded)


@dataclass(frozen=True)
class SlurmView:
    """The run ids a grid ever sent to SLURM, and those SLURM still holds ("queued"/"running")."""

    submitted: frozenset[str]
    queue: dict[str, str]


def slurm_view(results: Path, grid: str) -> SlurmView | None:
    """None when the grid never went to SLURM here, or no cluster answers (then files alone decide)."""
    try:
        from harness.dispatch.queue import queue_states, submitted_ids
    except ImportError:  # submitit missing: nothing can have been submitted from here
        return None
    submitted = submitted_ids(results, grid)
    if not submitted:
        return None
    try:
        queue = queue_states(results, grid)
    except Exception:  # noqa: BLE001 - squeue missing or failing: fall back to the run folders
        return None
    return SlurmView(frozenset(submitted), dict(queue))


def job_states(jobs: Sequence[JobSpec], results: Path) -> dict[str, JobState]:
    """run id → JobState for every job of a grid, in the grid's order."""
    slurm = slurm_view(results, jobs[0].grid) if jobs else None  # asked first: a job may end meanwhile
    from harness.store.runrecord import sync

    sync(results, [j.run_id for j in jobs])  # the run folders are the truth; the store follows them
    stored = store_status(results)
    return {job.run_id: job_state(job, results, stored.get(job.run_id), slurm) for job in jobs}


# ---- display ------------------------------------------------------------------------------


def count_states(states: Iterable[JobState]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for st in states:
        counts[st.state] = counts.get(st.state, 0) + 1
    return counts


__all__ = ["BUSY_STATES", "ERROR", "LOG", "PROGRESS", "JobState", "ProgressView", "SlurmView", "count_states",
           "error_reason", "first_paragraph", "fmt_duration", "fmt_factors", "fmt_metric", "fmt_step",
           "format_traceback", "job_label", "job_state", "job_states", "process_alive", "read_progress",
           "record_end", "slurm_view", "store_status", "table"]
