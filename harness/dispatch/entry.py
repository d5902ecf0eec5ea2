"""What a SLURM task runs for one job: a small picklable, checkpointable callable.

``JobEntry`` carries only the run id, the results root and the job function's name. All
mutable state (checkpoints, progress) lives in the run folder, so a requeued job — whether
submitit resubmits it after a timeout/preemption or Slurm requeues the original pickle after
a node failure — resumes "run <id> from its latest checkpoint on disk".

The SLURM job id ("123_4" for an array task) and the requeue count (``SLURM_RESTART_COUNT``)
reach the runs row through the trainer (``harness.train.record.executor_info`` reads Slurm's
variables). For jobs with more than one task (one per GPU) the entry exports MASTER_ADDR,
MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE before anything creates an
``Accelerator`` (Accelerate reads no ``SLURM_*`` variables).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import submitit


def slurm_info() -> dict[str, Any]:
    """``{"slurm_job_id": "123_4", "requeues": 1}`` inside a SLURM job (submitit's view)."""
    return {
        "slurm_job_id": str(submitit.JobEnvironment().job_id),
        "requeues": int(os.environ.get("SLURM_RESTART_COUNT") or 0),
    }


def export_distributed() -> int:
    """Export torch.distributed's env:// variables when the job has several tasks; the world size."""
    env = submitit.JobEnvironment()
    if env.num_tasks > 1:
        dist = submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
        # Each task sees one GPU, as Accelerate expects: the local rank's entry of the job's list
        # (Slurm may give a job GPUs "4,5,6,7"; submitit would set the bare rank number).
        devices = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d]
        if len(devices) > dist.local_rank:
            os.environ["CUDA_VISIBLE_DEVICES"] = devices[dist.local_rank]
    return int(env.num_tasks)


def _cancel_waiting_arrays(job: Any, results: Path, slurm_id: str) -> None:
    """A failed pre-training job: its afterok dependants would wait forever; cancel and record them."""
    from harness.dispatch.queue import cancel_blocked_by

    try:
        cancelled = cancel_blocked_by(results, job, slurm_id)
    except Exception as exc:  # noqa: BLE001 - the job's own failure is what must surface
        print(f"could not cancel the jobs waiting on {slurm_id}: {exc}", flush=True)
        return
    if cancelled:
        print(f"cancelled {len(cancelled)} job(s) waiting (afterok) on {slurm_id}", flush=True)


class JobEntry(submitit.helpers.Checkpointable):
    """Run job ``run_id`` of ``results`` with ``job_fn`` ("module:function", called as fn(job, results))."""

    def __init__(self, run_id: str, results: str, job_fn: str, extra_paths: tuple[str, ...] = ()) -> None:
        self.run_id = run_id
        self.results = str(results)
        self.job_fn = job_fn
        self.extra_paths = tuple(extra_paths)

    def __call__(self) -> Any:
        from harness.claim import RunBusy, hold
        from harness.dispatch.local import load_job_fn
        from harness.dispatch.records import format_traceback, record_end
        from harness.paths import run_dir
        from harness.spec.runs import read_spec

        for path in reversed(self.extra_paths):
            if path not in sys.path:
                sys.path.insert(0, path)
        os.environ["HARNESS_EXECUTOR"] = "slurm"
        info = slurm_info()
        world = export_distributed()
        results = Path(self.results)
        job = read_spec(run_dir(results, self.run_id))
        threads = str(job.experiment.resources.threads)
        os.environ.setdefault("OMP_NUM_THREADS", threads)
        os.environ.setdefault("MKL_NUM_THREADS", threads)
        rank = submitit.JobEnvironment().global_rank
        print(f"run {job.run_id} ({job.stage} {job.task or ''}) slurm job {info['slurm_job_id']}, "
              f"requeues {info['requeues']}, rank {rank}/{world}, fn {self.job_fn}", flush=True)
        try:
            if rank != 0:
                return load_job_fn(self.job_fn)(job, results)
            with hold(run_dir(results, self.run_id), by=f"grid {job.grid} (slurm {info['slurm_job_id']})"):
                return load_job_fn(self.job_fn)(job, results)
        except SystemExit:
            raise  # submitit exits this way after requeueing the job: not a failure
        except RunBusy as exc:  # another live process trains this run: its record is not ours to write
            print(f"not started: {exc}", flush=True)
            raise
        except BaseException as exc:
            if rank == 0:
                record_end(job, results, "failed", f"{type(exc).__name__}: {exc}", format_traceback(exc))
                if job.stage == "pretrain":
                    _cancel_waiting_arrays(job, results, info["slurm_job_id"])
            raise

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        """Called by submitit on rank 0 at timeout/preemption: resume this run from disk."""
        print(f"requeue: run {self.run_id} will resume from its latest checkpoint on disk", flush=True)
        # submitit requeues right after this returns, with `scontrol requeue` in a child process. The
        # preemption's SIGTERM reaches every process of the step, that child too if it is still running, and
        # a killed scontrol leaves the job failed instead of requeued (seen in CI: "scontrol requeue died with
        # SIGTERM"). An ignored signal stays ignored across exec, so from here on neither this process (which
        # exits after the requeue) nor the child is stopped by it; Slurm's SIGKILL still ends the step.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        return submitit.helpers.DelayedSubmission(JobEntry(self.run_id, self.results, self.job_fn, self.extra_paths))
