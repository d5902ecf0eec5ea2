"""What to run, in which order: the executor-independent half of ``harness run`` (torch-free).

compile (the lead's ``compile_grid``) → ``write_specs`` → ``plan_runs`` (skip done, pull in
unfinished dependencies, dependency order) → ``ensure_zoo_for`` → an executor's ``submit``.
Both the local and the SLURM executor receive a ``Plan.run`` and nothing else.
``dispatch_lock`` keeps a second dispatcher of the same grid and results root out meanwhile.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.spec.schema import JobSpec

# Which states a command picks up. Running/queued jobs are never started twice.
# "stale": done, but computed from other generated inputs than this install's (harness.models.provenance).
RUNNABLE = frozenset({"pending", "failed", "cancelled", "interrupted", "stale"})
RETRYABLE = frozenset({"failed", "cancelled", "interrupted"})
BUSY = frozenset({"running", "queued"})


@dataclass(frozen=True)
class Plan:
    """``run``: jobs to start, dependencies first. ``blocked``: run id → why it cannot start."""

    run: tuple[JobSpec, ...]
    done: tuple[JobSpec, ...]
    busy: tuple[JobSpec, ...]
    blocked: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        parts = [f"{len(self.run)} to run", f"{len(self.done)} already done"]
        if self.busy:
            parts.append(f"{len(self.busy)} running elsewhere")
        if self.blocked:
            parts.append(f"{len(self.blocked)} blocked")
        return ", ".join(parts)


def dependency_order(jobs: Sequence[JobSpec]) -> tuple[JobSpec, ...]:
    """Stable topological order: a job comes after its ``depends_on`` when that is in ``jobs``."""
    by_id = {j.run_id: j for j in jobs}
    placed: dict[str, JobSpec] = {}

    def place(job: JobSpec, trail: tuple[str, ...]) -> None:
        if job.run_id in placed:
            return
        if job.run_id in trail:
            raise ValueError(f"dependency cycle through run {job.short_id}")
        dep = by_id.get(job.depends_on or "")
        if dep is not None:
            place(dep, trail + (job.run_id,))
        placed[job.run_id] = job

    for job in jobs:
        place(job, ())
    return tuple(placed.values())


def plan_runs(
    jobs: Sequence[JobSpec], states: Mapping[str, str], *, select: Collection[str] = RUNNABLE
) -> Plan:
    """Pick the jobs whose state is in ``select``, plus any unfinished dependency they need.

    A dependency that is running elsewhere, or is not among ``jobs`` and not done, blocks
    its dependants (they are reported, not started).
    """
    by_id = {j.run_id: j for j in jobs}
    state = {j.run_id: states.get(j.run_id, "pending") for j in jobs}
    chosen = {rid for rid, st in state.items() if st in select and st not in BUSY and st != "done"}
    blocked: dict[str, str] = {}
    for rid in list(chosen):
        _pull_dependencies(by_id[rid], by_id, state, states, chosen, blocked)
    chosen -= set(blocked)
    return Plan(
        run=dependency_order([j for j in jobs if j.run_id in chosen]),
        done=tuple(j for j in jobs if state[j.run_id] == "done"),
        busy=tuple(j for j in jobs if state[j.run_id] in BUSY),
        blocked=blocked,
    )


def _pull_dependencies(
    job: JobSpec,
    by_id: Mapping[str, JobSpec],
    state: Mapping[str, str],
    outside: Mapping[str, str],
    chosen: set[str],
    blocked: dict[str, str],
) -> None:
    """Add ``job``'s unfinished dependency chain to ``chosen``, or mark ``job`` blocked."""
    dep_id = job.depends_on
    if not dep_id:
        return
    dep_state = state.get(dep_id, outside.get(dep_id, "pending"))
    if dep_state == "done":
        return
    if dep_id not in by_id:
        blocked[job.run_id] = f"its pre-training run {dep_id[:10]} is {dep_state} and not part of this grid selection"
    elif dep_state in BUSY:
        blocked[job.run_id] = f"its pre-training run {dep_id[:10]} is {dep_state}; run again once it is done"
    else:
        chosen.add(dep_id)
        _pull_dependencies(by_id[dep_id], by_id, state, outside, chosen, blocked)
        if dep_id in blocked:
            blocked[job.run_id] = f"its pre-training run {dep_id[:10]} is blocked: {blocked[dep_id]}"


SUPERSEDED = "superseded"  # <run>/superseded/<UTC time>/: a stale run's earlier files, kept
_KEEP = frozenset({"spec.json", "claim.json", SUPERSEDED})


def retire_stale(jobs: Sequence[JobSpec], states: Mapping[str, str], results: Path,
                 echo: Callable[[str], None] = print) -> list[Path]:
    """Move each stale job's files (result, weights, checkpoints, logs, records) into
    ``<run>/superseded/<UTC time>/`` and record it as "stale", so that its trainer starts afresh instead of
    returning the old result or resuming an old checkpoint. Nothing is deleted. Returns the new folders."""
    from harness.claim import holder_alive, read_claim
    from harness.paths import run_dir
    from harness.store.runrecord import record_run

    moved = []
    for job in (j for j in jobs if states.get(j.run_id) == "stale"):
        folder = run_dir(results, job.run_id)
        if holder_alive(read_claim(folder)):
            continue  # a live process holds it (it re-checks its own result): leave its files alone
        aside = folder / SUPERSEDED / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        aside.mkdir(parents=True, exist_ok=True)
        for path in folder.iterdir():
            if path.name not in _KEEP:
                os.replace(path, aside / path.name)
        record_run(results, {"spec": job, "status": "stale", "end_time": time.time(), "host": socket.gethostname(),
                             "error": f"superseded: its earlier files are in {aside.relative_to(folder)}"})
        moved.append(aside)
    if moved:
        echo(f"{len(moved)} stale run(s) start afresh; their earlier files are kept in <run>/{SUPERSEDED}/")
    return moved


def write_specs(jobs: Sequence[JobSpec], results: Path) -> list[Path]:
    """``<results>/runs/<run_id>/spec.json`` for every job (the lead's ``write_spec``)."""
    from harness.spec.runs import write_spec

    return [write_spec(job, results) for job in jobs]


def zoo_entries(jobs: Sequence[JobSpec]) -> list[tuple[str, str]]:
    """Tiny-zoo entries ((kind, name) pairs) the jobs load: encoders of tiny models with pre-trained weights."""
    from harness.models.provenance import uses_zoo

    needed: dict[tuple[str, str], None] = {}
    for job in jobs:
        if uses_zoo(job):
            needed[("vision", job.experiment.model.vision)] = None
            needed[("text", job.experiment.model.text)] = None
    return list(needed)


def ensure_zoo_for(jobs: Sequence[JobSpec], echo: Callable[[str], None] = print) -> None:
    """Build the tiny-zoo entries ``jobs`` need once, here, before any worker starts (no races)."""
    entries = zoo_entries(jobs)
    if not entries:
        return
    from harness.models.zoo import ensure_zoo

    echo(f"tiny zoo: making sure {', '.join(name for _, name in entries)} are built (once, before any job) ...")
    started = time.monotonic()
    ensure_zoo(entries, progress=True)
    echo(f"tiny zoo: ready ({time.monotonic() - started:.1f}s)")


# ---- one dispatcher per grid and results root; which executor last dispatched it ----------


class GridBusy(RuntimeError):
    """Another ``harness run``/``retry`` of the same grid holds the results root."""


@contextlib.contextmanager
def dispatch_lock(results: Path, grid: str) -> Iterator[None]:
    """Held while a grid is planned and dispatched: two dispatchers would start the same jobs twice.

    An flock, so a dispatcher that dies (even by SIGKILL) releases it at once.
    """
    path = results / "dispatch" / f"{grid}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise GridBusy(f"grid {grid} is already being dispatched in {results} (by {holder}); "
                           "see `harness status`, or stop it with `harness cancel`") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        yield



def dispatch_record_path(results: Path, grid: str) -> Path:
    return results / "dispatch" / f"{grid}.json"


def write_dispatch_record(results: Path, grid: str, executor: str, run_ids: Sequence[str], **extra: Any) -> Path:
    path = dispatch_record_path(results, grid)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"executor": executor, "pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
    record.update(run_ids=list(run_ids), **extra)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(path)
    return path


def read_dispatch_record(results: Path, grid: str) -> dict[str, Any] | None:
    try:
        data = json.loads(dispatch_record_path(results, grid).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
