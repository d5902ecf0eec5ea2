"""Dispatch: run a compiled grid's jobs on this machine (``local``) or on SLURM (``slurm``).

Executor-independent steps live in ``harness.dispatch.order`` (write specs → skip done →
dependency order → zoo), job states in ``harness.dispatch.state``. An executor only has to
satisfy ``Executor`` below; ``harness.registry.EXECUTORS`` builds one by name:

    EXECUTORS.build("local", workers=2)          # LocalExecutor
    EXECUTORS.build("slurm", cluster=Path(...))  # SlurmExecutor

Rule shared by every executor: a job's ``depends_on`` that is not among the submitted jobs
is already done (the planner guarantees it), so only dependencies inside the batch wait.

Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from harness.spec.schema import JobSpec

# States a job can be in, as `harness status` shows them. The store knows running, done,
# failed and cancelled; "pending" (never started), "queued" (submitted, not started) and
# "interrupted" (a running job whose process is gone) come from the run folder; "stale" (done,
# but from other generated inputs than this install's: harness.models.provenance) from both.
STATES = ("pending", "queued", "running", "done", "failed", "cancelled", "interrupted", "stale")
NOT_FINISHED_OK = frozenset({"failed", "cancelled", "interrupted"})


@dataclass(frozen=True)
class JobEvent:
    """Something that happened to one job: ``state`` is one of ``STATES``; ``detail`` says more."""

    run_id: str
    state: str
    detail: str = ""


OnProgress = Callable[[JobEvent], None]


@runtime_checkable
class Executor(Protocol):
    """Runs jobs somewhere. ``waits``: True when ``submit`` returns only once every job ended."""

    name: str
    waits: bool

    def submit(self, jobs: Sequence[JobSpec], results: Path, *, on_progress: OnProgress | None = None) -> None:
        """Run (or queue) ``jobs``, given in dependency order, whose spec.json files are written."""
        ...

    def cancel(self, jobs: Sequence[JobSpec], results: Path) -> list[str]:
        """Stop whichever of ``jobs`` are queued or running; return the run ids it signalled."""
        ...


__all__ = ["STATES", "NOT_FINISHED_OK", "Executor", "JobEvent", "OnProgress"]
