"""The local executor: jobs in parallel worker processes on this machine.

Each job runs in its own subprocess (``python -m harness.dispatch.local RESULTS RUN_DIR``), in its
own session so that a terminal's Ctrl-C reaches only the dispatcher, which then stops the
workers itself and records them as cancelled. Worker output goes to ``<run>/log.txt``; a
crash leaves ``<run>/error.txt`` (traceback) and a failed runs row, and the other jobs go on.
Default: one worker per core, one torch thread each (on 2 cores that gave 1.5× the
throughput of one job with two threads).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeGuard

from harness.dispatch import JobEvent, OnProgress
from harness.dispatch.gpus import GpuPool, detect_gpus
from harness.dispatch.records import LOG, PROGRESS, read_progress, record_end, store_status
from harness.dispatch.view import ProgressView, job_label
from harness.paths import run_dir

if TYPE_CHECKING:
    from harness.spec.schema import JobSpec

DEFAULT_JOB_FN = "harness.train:run_job"
# Tests and tools may point workers at another job function ("module:function").
JOB_FN_ENV = "HARNESS_JOB_FN"
STOP_GRACE_S = 10.0
EXIT_BUSY = 75  # EX_TEMPFAIL: another process holds the run's claim; nothing was recorded


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def job_fn_ref(job_fn: str | Callable[..., Any] | None) -> tuple[str, list[str]]:
    """``"module:function"`` for a worker to import, and extra sys.path entries it needs."""
    if job_fn is None:
        return os.environ.get(JOB_FN_ENV) or DEFAULT_JOB_FN, []
    if isinstance(job_fn, str):
        if ":" not in job_fn:
            raise ValueError(f"job function '{job_fn}' should read 'module:function'")
        return job_fn, []
    module = sys.modules.get(job_fn.__module__)
    file = getattr(module, "__file__", None)
    # A test module imported from its own folder (rootdir-relative) needs that folder on the path.
    paths = [str(Path(file).resolve().parent)] if file else []
    return f"{job_fn.__module__}:{job_fn.__qualname__}", paths


def load_job_fn(ref: str) -> Callable[[Any, Path], Any]:
    module_name, _, attr = ref.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    return target  # type: ignore[no-any-return]


@dataclass
class Worker:
    job: JobSpec
    proc: subprocess.Popen[bytes]
    log: IO[bytes]
    gpus: list[str]
    stale_progress: float | None = None  # mtime of progress.json before this attempt
    started: float = field(default_factory=time.monotonic)


class LocalExecutor:
    """Runs jobs in worker subprocesses, ``workers`` at a time, waiting for all of them."""

    name = "local"
    waits = True

    def __init__(
        self,
        workers: int | None = None,
        job_fn: str | Callable[..., Any] | None = None,
        *,
        poll_s: float = 0.2,
        refresh_s: float = 1.0,
        stream: IO[str] | None = None,
        gpus: Sequence[str] | None = None,
    ) -> None:
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self.gpus = gpus  # None: detect at submit (CUDA_VISIBLE_DEVICES, else nvidia-smi)
        self.job_fn, self.extra_paths = job_fn_ref(job_fn)
        self.poll_s = poll_s
        self.refresh_s = refresh_s
        self.stream = stream

    # ---- Executor protocol ----------------------------------------------------------------

    def submit(self, jobs: Sequence[JobSpec], results: Path, *, on_progress: OnProgress | None = None) -> None:
        run = _Dispatch(self, list(jobs), Path(results), on_progress)
        previous = _on_sigterm_raise_interrupt()
        try:
            run.loop()
        except BaseException as exc:  # Ctrl-C, harness cancel, or a bug here: leave no orphan workers
            reason = ("stopped by the user (Ctrl-C or harness cancel)" if isinstance(exc, KeyboardInterrupt)
                      else f"the dispatcher stopped: {type(exc).__name__}: {exc}")
            with _interrupts_held():  # a second Ctrl-C must not cut the clean-up short
                run.stop_all(reason)
            raise
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    def cancel(self, jobs: Sequence[JobSpec], results: Path) -> list[str]:
        """Signal the running workers of ``jobs`` (pid from progress.json, this host only)."""
        signalled = []
        for job in jobs:
            progress = read_progress(run_dir(Path(results), job.run_id)) or {}
            pid, host = progress.get("pid"), progress.get("host")
            if progress.get("state") == "running" and host in (None, _hostname()) and _is_harness_process(pid):
                _terminate(int(pid))
                signalled.append(job.run_id)
        return signalled

    def worker_count(self, jobs: Sequence[JobSpec]) -> int:
        if self.workers:
            return self.workers
        threads = max((j.experiment.resources.threads for j in jobs), default=1)
        return max(1, available_cores() // threads)

    def command(self, job: JobSpec, results: Path) -> list[str]:
        folder = run_dir(results, job.run_id)
        return [sys.executable, "-m", "harness.dispatch.local", "--job-fn", self.job_fn, str(results), str(folder)]

    def environment(self, job: JobSpec, gpus: Sequence[str] = ()) -> dict[str, str]:
        """The worker's environment: its torch threads and exactly its GPUs ("" hides them all)."""
        env = dict(os.environ)
        threads = str(job.experiment.resources.threads)
        env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, PYTHONUNBUFFERED="1", HARNESS_EXECUTOR="local",
                   CUDA_VISIBLE_DEVICES=",".join(gpus))
        if self.extra_paths:
            env["PYTHONPATH"] = os.pathsep.join(self.extra_paths + [env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        return env


class _Dispatch:
    """One ``submit``: start jobs as dependencies allow, reap them, keep the view fresh."""

    def __init__(self, ex: LocalExecutor, jobs: list[JobSpec], results: Path, on_progress: OnProgress | None) -> None:
        self.ex, self.results, self.on_progress = ex, results, on_progress
        self.pending = jobs
        self.in_batch = {j.run_id for j in jobs}
        self.outcome: dict[str, str] = {}
        self.running: dict[str, Worker] = {}
        self.slots = ex.worker_count(jobs)
        self.pool = GpuPool(detect_gpus() if ex.gpus is None else ex.gpus)
        for job in jobs:  # fail before anything starts, not half-way through the grid
            self.pool.check(_gpus_needed(job), f"job {job.short_id} ({job_label(job)})")
        self.view = ProgressView(ex.stream or sys.stdout, refresh_s=ex.refresh_s)

    def emit(self, job: JobSpec, state: str, detail: str = "") -> None:
        self.view.event(job, state, detail)
        if self.on_progress is not None:
            self.on_progress(JobEvent(job.run_id, state, detail))

    def loop(self) -> None:
        self.view.start(len(self.pending), self.slots)
        if self.pool.all and not any(_gpus_needed(j) for j in self.pending):
            self.view.note(f"note: the jobs ask for no GPU (resources.gpus_per_node: 0), so the {len(self.pool.all)} "
                           "visible GPU(s) stay unused; --set resources.gpus_per_node=1 puts each job on one")
        while self.pending or self.running:
            self.reap()
            self.start_ready()
            self.view.draw(self.running_progress(), self.tally())
            time.sleep(self.ex.poll_s)
        self.view.close()

    def ready(self, job: JobSpec) -> bool:
        dep = job.depends_on
        return dep is None or dep not in self.in_batch or self.outcome.get(dep) == "done"

    def start_ready(self) -> None:
        for job in list(self.pending):
            if len(self.running) >= self.slots:
                return
            if self.ready(job) and self.pool.can_take(_gpus_needed(job)):
                self.pending.remove(job)
                self.start(job, self.pool.take(_gpus_needed(job)))

    def start(self, job: JobSpec, gpus: list[str]) -> None:
        folder = run_dir(self.results, job.run_id)
        folder.mkdir(parents=True, exist_ok=True)
        log = open(folder / LOG, "ab")  # noqa: SIM115 - lives as long as the worker
        log.write(f"\n== {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC: local worker starts ==\n".encode())
        log.flush()
        stale = _mtime(folder / PROGRESS)
        proc = subprocess.Popen(
            self.ex.command(job, self.results),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.ex.environment(job, gpus),
            start_new_session=True,  # Ctrl-C reaches the dispatcher only; it stops workers itself
        )
        self.running[job.run_id] = Worker(job, proc, log, gpus, stale_progress=stale)
        self.emit(job, "running", f"pid {proc.pid}" + (f", GPU {','.join(gpus)}" if gpus else ""))

    def reap(self) -> None:
        for rid, worker in list(self.running.items()):
            code = worker.proc.poll()
            if code is None:
                continue
            worker.log.close()
            self.pool.give_back(worker.gpus)
            del self.running[rid]
            self.finished(worker, code)

    def finished(self, worker: Worker, code: int) -> None:
        job, took = worker.job, time.monotonic() - worker.started
        if code == EXIT_BUSY:  # trained by another process right now: not ours to record
            self.outcome[job.run_id] = "busy"
            self.emit(job, "skipped", "running in another process (its claim is live); harness status follows it")
            self.drop_dependants(job)
            return
        stored = store_status(self.results).get(job.run_id)
        if code == 0 and stored in (None, "running", "done"):
            recorded = "done"  # the store's word if it has one; a job function may not write rows
        elif code != 0 and stored not in ("failed", "cancelled"):  # died before it could say so
            record_end(job, self.results, "failed", f"worker exited with code {code}; see log.txt")
            recorded = "failed"
        else:  # the store's own word (not None: both branches above take that case)
            recorded = str(stored)
        self.outcome[job.run_id] = recorded
        if recorded == "done":
            self.emit(job, "done", f"in {took:.0f}s")
            return
        self.emit(job, recorded, f"exit {code} after {took:.0f}s; harness logs {job.short_id}")
        self.block_dependants(job)

    def drop_dependants(self, parent: JobSpec) -> None:
        for job in [j for j in self.pending if j.depends_on == parent.run_id]:
            self.pending.remove(job)
            self.outcome[job.run_id] = "busy"
            self.emit(job, "skipped", f"its pre-training run {parent.short_id} runs elsewhere; run again later")
            self.drop_dependants(job)

    def block_dependants(self, failed: JobSpec) -> None:
        for job in [j for j in self.pending if j.depends_on == failed.run_id]:
            self.pending.remove(job)
            reason = f"not run: its pre-training run {failed.short_id} ended {self.outcome[failed.run_id]}"
            record_end(job, self.results, "failed", reason)
            self.outcome[job.run_id] = "failed"
            self.emit(job, "failed", reason)
            self.block_dependants(job)

    def tally(self) -> str:
        ended = list(self.outcome.values())
        parts = [f"{ended.count('done')} done", f"{len(ended) - ended.count('done')} failed/cancelled",
                 f"{len(self.running)} running", f"{len(self.pending)} waiting"]
        return ", ".join(parts)

    def running_progress(self) -> list[tuple[JobSpec, dict[str, Any]]]:
        """progress.json of each running job; the file an earlier attempt left counts as none."""
        shown = []
        for rid, worker in self.running.items():
            path = run_dir(self.results, rid) / PROGRESS
            fresh = _mtime(path) != worker.stale_progress
            shown.append((worker.job, (read_progress(path) or {}) if fresh else {}))
        return shown

    def stop_all(self, reason: str) -> None:
        """Terminate every running worker, wait for them, and make sure each is marked cancelled."""
        for worker in self.running.values():
            _terminate(worker.proc.pid)
        deadline = time.monotonic() + STOP_GRACE_S
        for worker in self.running.values():
            try:
                worker.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _terminate(worker.proc.pid, signal.SIGKILL)
                worker.proc.wait()
            worker.log.close()
        stored = store_status(self.results)
        for rid, worker in self.running.items():
            if stored.get(rid) not in ("cancelled", "done"):
                record_end(worker.job, self.results, "cancelled", reason)
            self.outcome[rid] = "done" if stored.get(rid) == "done" else "cancelled"
            self.emit(worker.job, self.outcome[rid], reason)
        self.running.clear()
        self.view.close()


def _is_harness_process(pid: object) -> TypeGuard[int]:
    """A live process whose command line mentions harness (a recycled pid must not be signalled)."""
    from harness.dispatch.records import process_alive

    if not isinstance(pid, int) or not process_alive(pid):
        return False
    try:
        return b"harness" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc (not Linux): the liveness check is all there is


def _gpus_needed(job: JobSpec) -> int:
    return job.experiment.resources.gpus_per_node


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _hostname() -> str:
    import socket

    return socket.gethostname()


def _terminate(pid: int, sig: int = signal.SIGTERM) -> None:
    """Signal a worker's whole process group (it leads its own session), else just the pid."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN), signal.signal(signal.SIGTERM, signal.SIG_IGN)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _on_sigterm_raise_interrupt() -> Any:
    """SIGTERM (harness cancel) stops a dispatcher like Ctrl-C does. Main thread only."""
    try:
        return signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:  # not the main thread: leave signals alone
        return None


# ---- the worker process -------------------------------------------------------------------


def worker_main(argv: Sequence[str] | None = None) -> int:
    """Run one job: ``python -m harness.dispatch.local [--job-fn M:F] RESULTS RUN_DIR``."""
    parser = argparse.ArgumentParser(prog="python -m harness.dispatch.local")
    parser.add_argument("--job-fn", default=os.environ.get(JOB_FN_ENV) or DEFAULT_JOB_FN)
    parser.add_argument("results", type=Path)
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args(argv)
    from harness.spec.runs import read_spec

    job = read_spec(args.run_dir)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    print(f"run {job.run_id} ({job.stage} {job.task or ''}) with {args.job_fn}, pid {os.getpid()}", flush=True)
    from harness.claim import RunBusy, acquire

    try:  # claimed before anything else: a dead worker's run shows "interrupted", never "running" for ever
        claim = acquire(args.run_dir, by=f"grid {job.grid} (local worker)")
    except RunBusy as exc:
        print(f"not started: {exc}", flush=True)
        return EXIT_BUSY
    try:
        return _call_job_fn(job, args.job_fn, args.results)
    finally:
        claim.release()


def _call_job_fn(job: JobSpec, job_fn: str, results: Path) -> int:
    from harness.claim import RunBusy
    from harness.dispatch.records import format_traceback

    try:
        load_job_fn(job_fn)(job, results)
    except RunBusy as exc:
        print(f"not started: {exc}", flush=True)
        return EXIT_BUSY
    except KeyboardInterrupt:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal must not cut the record short
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        record_end(job, results, "cancelled", "stopped by a signal (Ctrl-C or harness cancel)")
        print("cancelled", flush=True)
        return 130
    except SystemExit as exc:
        if not exc.code:  # the job function ended the process on purpose, successfully
            return 0
        record_end(job, results, "failed", f"the job function exited with code {exc.code}")
        return 1
    except BaseException as exc:  # noqa: BLE001 - any crash is recorded, then reported by exit code
        tb = format_traceback(exc)
        print(tb, file=sys.stderr, flush=True)
        record_end(job, results, "failed", f"{type(exc).__name__}: {exc}", tb)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(worker_main())
