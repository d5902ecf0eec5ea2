"""The SLURM executor: one job array per stage and resource shape, submitted through submitit.

    ex = SlurmExecutor(cluster="local")          # slurm/clusters/local.yaml, or a path
    ex.submit(plan.run, results)                 # returns at once; jobs wait in the queue
    ex.cancel(jobs, results)                     # scancel what is still queued or running

``submit`` checks everything first (profile keys, partition/account/QOS, GPUs, time limit,
CPUs, memory, shell injection), then submits the pre-training arrays, then the fine-tuning
arrays with ``--dependency=afterok:<pre-training array ids>``: one command queues a whole
grid. Arrays are split at MaxArraySize (or the profile's ``max_array_size``) and throttled
with ``%array_parallelism``. With ``arrays=False`` every job is its own sbatch call, with an
``afterok`` on its own pre-training job (the benchmark's baseline).

Every submission is appended to ``<results>/slurm/<grid>/submissions.jsonl`` (run id → SLURM
job id), which ``cancel`` and ``queue_states`` read; submitit's pickles, sbatch files and
logs live in ``<results>/slurm/<grid>/submitit/``.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.dispatch import JobEvent, OnProgress
from harness.dispatch.cluster import ClusterProfile, SlurmRequest, load_profile, resolve_request
from harness.dispatch.queue import (
    SUBMISSIONS,
    active_jobs,
    cancel_blocked_by,
    queue_states,
    read_records,
    slurm_folder,
    submitted_ids,
)
from harness.dispatch.sbatch import job_name, sbatch_parameters
from harness.paths import run_dir

if TYPE_CHECKING:
    from harness.dispatch.clusterinfo import ClusterInfo
    from harness.spec.schema import JobSpec

STAGES = ("pretrain", "finetune")


@dataclass(frozen=True)
class ArrayPlan:
    """Jobs of one stage that share a request: one sbatch call (an array, or a single job)."""

    stage: str
    request: SlurmRequest
    jobs: tuple[JobSpec, ...]


def plan_arrays(jobs: Sequence[JobSpec], profile: ClusterProfile, max_size: int) -> list[ArrayPlan]:
    """Group by (stage, request) in job order, pre-training first; split groups at ``max_size``."""
    groups: dict[tuple[str, SlurmRequest], list[JobSpec]] = {}
    for stage in STAGES:
        for job in jobs:
            if job.stage == stage:
                key = (stage, resolve_request(job.experiment.resources, profile))
                groups.setdefault(key, []).append(job)
    plans = []
    for (stage, request), members in groups.items():
        for start in range(0, len(members), max_size):
            plans.append(ArrayPlan(stage, request, tuple(members[start:start + max_size])))
    return plans


class SlurmExecutor:
    """Queues jobs on a SLURM cluster and returns; see the module docstring."""

    name = "slurm"
    waits = False

    def __init__(
        self,
        cluster: str | os.PathLike[str] | ClusterProfile | None = None,
        job_fn: Any = None,
        *,
        arrays: bool = True,
        info: ClusterInfo | None = None,
        python: str | None = None,
        throttle_s: float = 0.2,
    ) -> None:
        from harness.dispatch.local import job_fn_ref

        self.cluster = cluster or "local"  # `harness run --executor slurm` without --cluster
        self.job_fn, self.extra_paths = job_fn_ref(job_fn)
        self.arrays = arrays
        self.info = info
        self.python = python or shlex.quote(sys.executable)
        # submitit waits this long between single-job sbatch calls (kind to slurmctld).
        self.throttle_s = throttle_s
        self._profile: ClusterProfile | None = None
        if cluster is not None:
            self._profile = load_profile(cluster)  # a bad --cluster fails before anything else happens

    @property
    def profile(self) -> ClusterProfile:
        """Given: loaded at once. Not given: "local", loaded on first use (``cancel`` needs none)."""
        if self._profile is None:
            self._profile = load_profile(self.cluster)
        return self._profile

    # ---- checks: everything before anything is submitted --------------------------------

    def prepare(self, jobs: Sequence[JobSpec]) -> list[tuple[ArrayPlan, dict[str, Any]]]:
        """The arrays to submit with their sbatch parameters; ClusterError on any problem."""
        from harness.dispatch.clusterinfo import ClusterInfo, check_requests

        profile = self.profile
        info = self.info or ClusterInfo.query()
        max_size = min(profile.max_array_size or info.max_array_size, info.max_array_size)
        plans = plan_arrays(jobs, profile, max_size if self.arrays else 1)
        check_requests(profile, [p.request for p in plans], info)
        return [(p, sbatch_parameters(p.request, profile, name=job_name(p.jobs[0].grid, p.stage))) for p in plans]

    # ---- Executor protocol --------------------------------------------------------------

    def submit(self, jobs: Sequence[JobSpec], results: Path, *, on_progress: OnProgress | None = None) -> None:
        """Queue ``jobs`` (dependency order, spec.json written) and return without waiting."""
        jobs = list(jobs)
        if not jobs:
            return
        results = Path(results).resolve()
        prepared = self.prepare(jobs)
        slurm_ids: dict[str, str] = {}  # run id → "123_4" (array task) or "123"
        master_ids: dict[str, str] = {}  # run id → "123" (what afterok names in array mode)
        for plan, params in prepared:
            ids = self._submit_plan(plan, params, results, master_ids)
            for job in plan.jobs:
                slurm_ids[job.run_id] = ids[job.run_id]
                master_ids[job.run_id] = ids[job.run_id] if not self.arrays else ids[job.run_id].split("_")[0]
                if on_progress is not None:
                    on_progress(JobEvent(job.run_id, "queued", f"slurm job {ids[job.run_id]}"))

    def _submit_plan(
        self, plan: ArrayPlan, params: dict[str, Any], results: Path, master_ids: dict[str, str]
    ) -> dict[str, str]:
        import submitit

        from harness.dispatch.entry import JobEntry

        grid = plan.jobs[0].grid
        folder = slurm_folder(results, grid) / "submitit"
        executor = submitit.SlurmExecutor(folder=folder, max_num_timeout=plan.request.requeues, python=self.python)
        executor._throttling = self.throttle_s  # submitit has no public knob for it (1.5.x)
        entries = [JobEntry(j.run_id, str(results), self.job_fn, tuple(self.extra_paths)) for j in plan.jobs]
        previous = [_mark_queued(results, job) for job in plan.jobs]
        try:
            if len(plan.jobs) > 1:
                deps = sorted({master_ids[j.depends_on] for j in plan.jobs if j.depends_on in master_ids})
                executor.update_parameters(**params, **_dependency(deps))
                with executor.batch():
                    handles = [executor.submit(entry) for entry in entries]
            else:
                dep = plan.jobs[0].depends_on
                executor.update_parameters(**params, **_dependency([master_ids[dep]] if dep in master_ids else []))
                handles = [executor.submit(entries[0])]
        except Exception:
            for job, before in zip(plan.jobs, previous, strict=True):
                _restore_progress(results, job, before)
            raise
        ids = {job.run_id: str(h.job_id) for job, h in zip(plan.jobs, handles, strict=True)}
        for job, handle in zip(plan.jobs, handles, strict=True):
            _link_logs(results, job, handle)
        _append_record(results, grid, plan, ids, executor.parameters.get("dependency"))
        return ids

    def cancel(self, jobs: Sequence[JobSpec], results: Path) -> list[str]:
        """``scancel`` the queued or running SLURM jobs of ``jobs``; record them as cancelled."""
        from harness.dispatch.records import record_end

        results = Path(results).resolve()
        wanted = {j.run_id: j for j in jobs}
        ids = {rid: sid for grid in {j.grid for j in jobs} for rid, sid in submitted_ids(results, grid).items()}
        active = active_jobs()
        targets = {rid: ids[rid] for rid in wanted if rid in ids and ids[rid] in active}
        if not targets:
            return []
        subprocess.run(["scancel", *sorted(set(targets.values()))], check=True, capture_output=True, timeout=60)
        for rid, sid in targets.items():
            record_end(wanted[rid], results, "cancelled", f"scancel {sid} (harness cancel)")
        return list(targets)


def _dependency(ids: Sequence[str]) -> dict[str, str]:
    return {"dependency": "afterok:" + ":".join(ids)} if ids else {}


# ---- the run folder's progress.json: "queued" until the trainer takes over -----------------


def _mark_queued(results: Path, job: JobSpec) -> str | None:
    """Write a queued progress.json before sbatch (a job may start before sbatch returns)."""
    path = run_dir(results, job.run_id) / "progress.json"
    try:
        before = path.read_text()
    except OSError:
        before = None
    path.parent.mkdir(parents=True, exist_ok=True)
    marker = {"run_id": job.run_id, "state": "queued", "step": None, "total": None, "updated": time.time()}
    tmp = path.with_name(f".progress.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(marker))
    os.replace(tmp, path)
    return before


def _restore_progress(results: Path, job: JobSpec, before: str | None) -> None:
    path = run_dir(results, job.run_id) / "progress.json"
    if before is None:
        path.unlink(missing_ok=True)
    else:
        path.write_text(before)


def _link_logs(results: Path, job: JobSpec, handle: Any) -> None:
    """``<run>/slurm/<id>_log.out|err`` → submitit's files, for ``harness logs`` (may dangle until it starts)."""
    folder = run_dir(results, job.run_id) / "slurm"
    folder.mkdir(parents=True, exist_ok=True)
    for target in (handle.paths.stdout, handle.paths.stderr):
        link = folder / Path(target).name
        if not link.is_symlink():
            link.symlink_to(Path(target).resolve())


# ---- the submission record ----------------------------------------------------------------


def _append_record(results: Path, grid: str, plan: ArrayPlan, ids: dict[str, str], dependency: str | None) -> None:
    folder = slurm_folder(results, grid)
    folder.mkdir(parents=True, exist_ok=True)
    record = {
        "time": time.time(),
        "stage": plan.stage,
        "slurm_id": next(iter(ids.values())).split("_")[0],
        "size": len(ids),
        "dependency": dependency,
        "jobs": ids,
    }
    with (folder / SUBMISSIONS).open("a") as fh:  # one short line per write: appends stay whole
        fh.write(json.dumps(record) + "\n")


__all__ = ["SUBMISSIONS", "ArrayPlan", "SlurmExecutor", "active_jobs", "cancel_blocked_by", "plan_arrays",
           "queue_states", "read_records", "slurm_folder", "submitted_ids"]
