"""Job states, read from the results store and the run folders (torch-free).

The store is the authority for how a job ended (its latest runs row); the run folder's
``progress.json`` says how far a running job is and which process runs it, so a "running"
job whose process is gone on this host shows as "interrupted". For a grid sent to SLURM the
queue has a say too: pending there means "queued" (a newer attempt than the store's row);
gone from it while the files still say queued/running means "interrupted".
Also here: ``record_end`` (error.txt + runs row for jobs the trainer could not finish) and
the plain-text display (``ProgressView``, tables) shared by ``harness run`` and ``status``.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.claim import holder_alive, read_claim
from harness.paths import run_dir

if TYPE_CHECKING:
    from harness.spec.schema import JobSpec

PROGRESS = "progress.json"
BUSY_STATES = ("queued", "running")
ERROR = "error.txt"
LOG = "log.txt"


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


def read_progress(path: Path) -> dict[str, Any] | None:
    """``progress.json`` of a run folder (or the file itself); None when absent or half-written."""
    file = path / PROGRESS if path.is_dir() else path
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def process_alive(pid: int | None, host: str | None = None) -> bool:
    """Whether ``pid`` runs on this host (a zombie counts as dead). Other hosts: assumed alive."""
    if host and host != socket.gethostname():
        return True
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # "Z" in /proc/PID/stat: exited, not yet reaped
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def store_status(results: Path) -> dict[str, str]:
    """run id → latest status in the store ({} when the store is empty or absent)."""
    from harness.paths import store_dir

    if not store_dir(results).exists():
        return {}
    from harness.store import Store

    return dict(Store(results).status())


def first_paragraph(path: Path) -> str:
    """error.txt's reason: its lines up to the first blank line (the traceback follows it), "" when
    absent. Whole, not its first line: a missing-weights reason goes on with "Looked in:" and the fix."""
    try:
        text = path.read_text().strip()
    except OSError:
        return ""
    return text.split("\n\n", 1)[0][:4000] if text else ""


def error_reason(folder: Path, state: str) -> str:
    """The reason in error.txt, without its time stamp and state word."""
    reason = re.sub(r"^\[[^\]]*\]\s*", "", first_paragraph(folder / ERROR))
    # The "(recorded <time> UTC)" line that record_failure writes under the reason is not part of it.
    reason = re.sub(r"\n\(recorded [^)\n]*\)$", "", reason, flags=re.MULTILINE)
    return reason.removeprefix(f"{state}: ")


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


@dataclass(frozen=True)
class SlurmView:
    """The run ids a grid ever sent to SLURM, and those SLURM still holds ("queued"/"running")."""

    submitted: frozenset[str]
    queue: dict[str, str]


def slurm_view(results: Path, grid: str) -> SlurmView | None:
    """None when the grid never went to SLURM here, or no cluster answers (then files alone decide)."""
    try:
        from harness.dispatch.slurm import queue_states, submitted_ids
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


def record_end(job: JobSpec, results: Path, status: str, reason: str, tb: str | None = None) -> None:
    """Mark ``job`` failed or cancelled: ``error.txt`` and the runs row in its run folder, then in the store."""
    from harness.store.runrecord import record_run

    folder = run_dir(results, job.run_id)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    (folder / ERROR).write_text(f"{status}: {reason}\n(recorded {stamp} UTC)\n" + (f"\n{tb}" if tb else ""))
    # The store fills the identity columns (run id, grid, stage, task, seed, factors) from the spec.
    row = {"spec": job, "status": status, "error": reason, "end_time": time.time(), "host": socket.gethostname(),
           "executor": os.environ.get("HARNESS_EXECUTOR") or "local"}
    record_run(results, row)


def format_traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


# ---- display ------------------------------------------------------------------------------


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return "-"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def fmt_factors(factors: Mapping[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in factors.items()) or "-"


def fmt_step(step: int | None, total: int | None) -> str:
    if step is None:
        return "-"
    return f"{step}/{total}" if total else str(step)


def fmt_metric(metrics: Mapping[str, Any]) -> str:
    """The last metric a job reported, e.g. ``val/vqa_score=0.412`` (a loss only when nothing else)."""
    numeric = [(k, v) for k, v in metrics.items() if isinstance(v, (int, float))]
    if not numeric:
        return "-"
    scores = [(k, v) for k, v in numeric if not k.endswith("loss")]
    key, value = (scores or numeric)[-1]
    return f"{key}={value:.4g}"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Left-aligned plain-text table."""
    rows = [list(map(str, r)) for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def count_states(states: Iterable[JobState]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for st in states:
        counts[st.state] = counts.get(st.state, 0) + 1
    return counts


def job_label(job: JobSpec) -> str:
    """``pretrain`` or ``finetune:vqa``, then the factor levels and seed."""
    stage = job.stage if job.task is None else f"{job.stage}:{job.task}"
    return f"{stage} {fmt_factors(job.factors)} seed={job.seed}"


class ProgressView:
    """Live lines for running jobs, redrawn in place on a terminal; plain log lines otherwise.

    Events (started, done, failed) are permanent lines; on a terminal the block of running
    jobs below them is redrawn about every ``refresh_s``. Off a terminal, a job's progress
    line is printed again only when its step moved and ``plain_every_s`` passed.
    """

    def __init__(self, stream: Any, *, refresh_s: float = 1.0, plain_every_s: float = 10.0) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.refresh_s, self.plain_every_s = refresh_s, plain_every_s
        self.drawn = 0
        self.last_draw = 0.0
        self.last_plain: dict[str, tuple[float, Any]] = {}

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def _clear(self) -> None:
        if self.tty and self.drawn:
            self._write(f"\x1b[{self.drawn}F\x1b[J")
        self.drawn = 0

    def start(self, jobs: int, workers: int) -> None:
        self._write(f"running {jobs} job(s), {workers} at a time (Ctrl-C stops them and keeps finished results)\n")

    def note(self, text: str) -> None:
        self._clear()
        self._write(text + "\n")

    def event(self, job: JobSpec, state: str, detail: str = "") -> None:
        self._clear()
        stamp = time.strftime("%H:%M:%S")
        tail = f"  ({detail})" if detail else ""
        self._write(f"[{stamp}] {state:<9} {job.short_id}  {job_label(job)}{tail}\n")
        self.last_draw = 0.0

    def line(self, job: JobSpec, progress: Mapping[str, Any]) -> str:
        loss = progress.get("loss")
        loss_text = f"{loss:.4f}" if isinstance(loss, (int, float)) else "-"
        if progress.get("step") is None:
            return f"  {job.short_id}  {job_label(job)}  starting"
        step = fmt_step(progress.get("step"), progress.get("total"))
        eta = fmt_duration(progress.get("eta_s"))
        return f"  {job.short_id}  {job_label(job)}  step {step}  loss {loss_text}  ETA {eta}"

    def draw(self, running: Sequence[tuple[JobSpec, Mapping[str, Any]]], tally: str = "") -> None:
        now = time.monotonic()
        if now - self.last_draw < self.refresh_s:
            return
        self.last_draw = now
        if self.tty:
            self._clear()
            lines = [self.line(job, progress) for job, progress in running]
            lines += [f"  [{tally}]"] if tally else []
            if lines:
                self._write("\n".join(lines) + "\n")
            self.drawn = len(lines)
            return
        for job, progress in running:
            seen = self.last_plain.get(job.run_id)
            step = progress.get("step")
            if step is not None and (seen is None or (seen[1] != step and now - seen[0] >= self.plain_every_s)):
                self.last_plain[job.run_id] = (now, step)
                self._write(self.line(job, progress).lstrip() + "\n")

    def close(self) -> None:
        self._clear()
