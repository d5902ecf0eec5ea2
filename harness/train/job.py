"""``run_job(job, results)``: train one compiled job in its run folder and record it.

Order of the records: runs row "running" → training (``progress.json``, checkpoints) →
final weights, metrics rows, ``result.json`` → runs row "done" last. Every final file is
written under a temporary name and renamed, so nothing half-written is ever visible. A
failure writes ``error.txt`` and a "failed" row, then raises (so executors see it too).
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from harness.models.provenance import generated_inputs
from harness.paths import run_dir as run_folder
from harness.spec.schema import JobSpec
from harness.train.checkpoint import write_json_atomic
from harness.train.errors import TrainingFailed
from harness.train.interrupt import Interrupt, from_env
from harness.train.loop import LoopResult, Trainer
from harness.train.record import ProgressFile, ResultSink, executor_info, git_state, utc_now, versions

RESULT_FILE = "result.json"


def _configure_torch(job: JobSpec) -> None:
    exp = job.experiment
    torch.set_num_threads(exp.resources.threads)
    if exp.train.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    # Only when it changes something: the call imports torch._inductor (~2-3 s of CPU, ~6 % of a
    # local job) to set inductor's flag too, which a run that never asked for determinism leaves as is.
    if exp.train.deterministic != torch.are_deterministic_algorithms_enabled():
        torch.use_deterministic_algorithms(exp.train.deterministic)


def _save_weights(model: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import save_file

    # clone: tied or shared tensors cannot be saved as views of one storage
    state = {k: v.detach().contiguous().clone().cpu() for k, v in model.state_dict().items()}
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    save_file(state, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, path)


class _Recorder:
    """Runs rows, metrics rows and files of one job; only the main process writes."""

    def __init__(self, job: JobSpec, results: Path, main: bool) -> None:
        self.job, self.main = job, main
        self.folder = run_folder(results, job.run_id)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.sink = ResultSink(results, self.folder) if main else None
        self.t0 = time.time()
        commit, dirty = git_state()
        info = executor_info()
        # What the run is computed from beyond its spec (the tiny zoo, the synthetic world): result.json
        # keeps it, so an upgrade that changes either shows this result as stale (harness.models.provenance).
        self.inputs = generated_inputs(job)
        self.base: dict[str, Any] = {
            "spec": job, "start_time": utc_now(), "git_commit": commit, "git_dirty": dirty,
            "versions": versions(), "host": info["host"], "executor": info["executor"],
            "slurm_job_id": info["slurm_job_id"], "requeues": info["requeues"],
        }

    def run_row(self, status: str, **fields: Any) -> None:
        if self.sink is None:
            return
        row = {**self.base, "status": status, **fields}
        if status != "running":
            wall = time.time() - self.t0
            row.update(end_time=utc_now(), wall_s=wall)
        self.sink.run(row)

    def fail(self, reason: str, tb: str | None) -> None:
        if not self.main:
            return
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        (self.folder / "error.txt").write_text(f"[{stamp} UTC] failed: {reason}\n" + (f"\n{tb}" if tb else ""))
        write_json_atomic(self.folder / "progress.json", {
            **_read_json(self.folder / "progress.json"), "state": "failed", "error": reason, "updated": utc_now()})
        self.run_row("failed", error=reason)

    def finish(self, result: LoopResult, wall_s: float, num_devices: int) -> dict[str, Any]:
        stats, job = result.stats, self.job
        device_hours = wall_s * num_devices / 3600
        summary = {
            "run_id": job.run_id, "status": result.status, "reason": result.reason, "step": result.step,
            "resumed_from": result.resumed_from, "metrics": result.final_metrics,
            "stats": {**stats, "wall_s": wall_s, "device_hours": device_hours}, "inputs": self.inputs,
        }
        if not self.main or self.sink is None:
            return summary
        if result.status == "done":
            assert result.model is not None
            _save_weights(result.model, self.folder / "model.safetensors")
        final_rows = [{"stage": job.stage, "task": job.task or "pretrain", "split": "train", "metric": k,
                       "value": float(v), "step": result.step}
                      for k, v in (("samples_per_s", stats["samples_per_s"]), ("step_time_s", stats["step_time_s"]),
                                   ("flops_per_step", stats["flops_per_step"]), ("mfu", stats["mfu"]),
                                   ("peak_mem_mb", stats["peak_mem_mb"]), ("wall_s", wall_s)) if v is not None]
        self.sink.metrics(job.run_id, result.history + final_rows + _baseline_rows(job))
        write_json_atomic(self.folder / RESULT_FILE, summary)
        progress = ProgressFile(self.folder, job.run_id, result.step, result.resumed_from)
        progress.write(result.status, result.step, metrics=result.final_metrics)
        resumed = result.resumed_from or {}
        self.run_row(result.status, device_hours=device_hours, throughput=stats["samples_per_s"],
                     peak_mem_gb=stats["peak_mem_mb"] / 1024, error=result.reason,
                     resumed_from_step=resumed.get("step"), resumed_from=resumed.get("checkpoint"))
        return summary


def _baseline_rows(job: JobSpec) -> list[dict[str, Any]]:
    """Chance and blind-prior scores of a synthetic task, for the report to show beside ours."""
    if job.stage != "finetune" or job.task is None:
        return []
    from harness.data.pipeline import baselines

    return [{"stage": job.stage, "task": job.task, "split": "baseline", "metric": kind, "value": float(value),
             "step": 0} for kind, value in baselines(job.experiment, job.task).items()]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def run_job(job: JobSpec, results: Path, *, on_eval: Callable[[int, dict[str, float]], None] | None = None,
            stop_after: int | None = None) -> dict[str, Any]:
    """Train ``job`` in ``<results>/runs/<run_id>/`` (resuming from its latest checkpoint).

    Returns the summary written to ``result.json``: status "done" or "pruned" (``on_eval``
    raised ``StopTraining``). A failure is recorded ("failed", error.txt) and re-raised.
    ``stop_after`` raises ``SimulatedKill`` after that many steps (in-process tests);
    $HARNESS_STOP_AFTER_STEPS / $HARNESS_HOLD_AFTER_STEPS kill or hold the process (``harness.train.interrupt``).
    Raises ``harness.claim.RunBusy`` (writing nothing) when another live process trains the run.
    """
    results = Path(results)
    # One claim per run id (harness.claim): whatever asked for this run, it never trains twice at
    # once. Rank 0 claims for a multi-process job; the claim is re-entrant for a worker that holds it.
    if os.environ.get("RANK", "0") != "0":
        return _run_claimed(job, results, on_eval, stop_after)
    from harness.claim import hold

    with hold(run_folder(results, job.run_id), by=f"grid {job.grid}"):
        return _run_claimed(job, results, on_eval, stop_after)


def _run_claimed(job: JobSpec, results: Path, on_eval: Callable[[int, dict[str, float]], None] | None,
                 stop_after: int | None) -> dict[str, Any]:
    from accelerate import PartialState

    from harness.plugins import import_plugins
    from harness.train.assemble import build_parts

    import_plugins([p.module for p in job.plugins])  # a job handed over without validation (pickled)
    done = _read_json(run_folder(results, job.run_id) / RESULT_FILE)
    if done.get("status") == "done":
        from harness.store.runrecord import sync

        sync(results, [job.run_id], metrics=True)  # a lost or quarantined "done" row is recorded again
        return done  # finished before (e.g. a requeue after the end): nothing to redo
    interrupt = Interrupt(stop_after) if stop_after is not None else from_env()
    # cpu=True without a GPU: Accelerate only sets up multi-process CPU (gloo) DDP when told.
    state = PartialState(cpu=not torch.cuda.is_available())
    recorder = _Recorder(job, results, state.is_main_process)
    recorder.run_row("running")
    try:
        _configure_torch(job)
        parts, settings = build_parts(job, results, state.num_processes)
        trainer = Trainer(parts, settings, recorder.folder, job.run_id, on_eval=on_eval, interrupt=interrupt)
        result = trainer.run()
        summary = recorder.finish(result, time.time() - recorder.t0, state.num_processes)
    except torch.cuda.OutOfMemoryError as exc:
        recorder.fail(f"CUDA out of memory ({exc}); lower per_device_batch (accumulation keeps the global batch)",
                      traceback.format_exc())
        raise TrainingFailed("out of memory") from exc
    except Exception as exc:
        recorder.fail(f"{type(exc).__name__}: {exc}", traceback.format_exc())
        raise
    state.wait_for_everyone()
    return summary
