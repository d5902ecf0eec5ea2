"""Starting search workers: W local processes, or a SLURM array of W workers (submitit).

Every worker runs ``run_worker`` against the same study, so either way the study ends with
the requested number of finished trials. A local worker that dies is replaced (its trial is
retried by the next worker's recovery pass); a SLURM worker is requeued on preemption.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from harness.search.study import count_states, finished, open_study
from harness.search.worker import WorkerConfig, run_worker

Echo = Callable[[str], None]
STOP_GRACE_S = 10.0


def worker_command(config_file: Path, index: int) -> list[str]:
    return [sys.executable, "-m", "harness.search.launch", str(config_file), str(index)]


def import_paths(extra: list[str] | None, more: list[str] | None = None) -> list[str]:
    """Folders a worker must import from beyond the interpreter's own (e.g. a test's folder holding
    an injected job function): ``extra``, this process's non-library ``sys.path`` entries, ``more``."""
    own = (sys.prefix, sys.base_prefix, sys.exec_prefix)
    found = [p for p in sys.path if p and Path(p).is_dir() and not p.startswith(own)]
    return [p for p in dict.fromkeys([*(extra or []), *found, *(more or [])]) if p]


def _study_done(config: WorkerConfig) -> bool:
    study = open_study(config.spec(), config.storage, config.study_name)
    return finished(count_states(study)) >= config.trials


def _tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_local(config: WorkerConfig, workers: int, *, folder: Path | None = None,
              extra_path: list[str] | None = None, replacements: int | None = None, echo: Echo = print) -> None:
    """W worker subprocesses; a worker that dies early is replaced while the study is unfinished.

    Workers are fresh interpreters (``python -m harness.search.launch CONFIG``): nothing is
    inherited but the environment, and each runs in its own session so that Ctrl-C reaches
    only this process, which then stops them. Their output goes to ``worker-<i>.log``.
    """
    folder = Path(folder or Path(config.results) / "search" / config.study_name)
    folder.mkdir(parents=True, exist_ok=True)
    config_file = folder / "worker-config.json"
    config_file.write_text(json.dumps(asdict(config), indent=1))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(import_paths(extra_path, env.get("PYTHONPATH", "").split(os.pathsep)))
    budget = workers if replacements is None else replacements

    def start(index: int) -> tuple[subprocess.Popen[bytes], Path]:
        log = folder / f"worker-{index}.log"
        with log.open("wb") as handle:
            proc = subprocess.Popen(worker_command(config_file, index), stdout=handle, stderr=subprocess.STDOUT,
                                    env=env, start_new_session=True)
        return proc, log

    alive = {i: start(i) for i in range(workers)}
    echo(f"{workers} search workers started (logs: {folder}/worker-*.log)")
    next_index, failures = workers, 0
    progress = _Progress(config, echo)
    try:
        while alive:
            time.sleep(0.2)
            progress.maybe_report()
            for index, (proc, log) in list(alive.items()):
                if proc.poll() is None:
                    continue
                del alive[index]
                if proc.returncode == 0 or _study_done(config):
                    continue
                failures += 1
                echo(f"search worker {index} ended with exit code {proc.returncode}; {log}:\n{_tail(log)}")
                if failures > budget:
                    raise RuntimeError(f"{failures} search workers failed; giving up (logs in {folder})")
                alive[next_index] = start(next_index)
                next_index += 1
    finally:
        _stop(proc for proc, _ in alive.values())


class _Progress:
    """Prints the study's trial counts when they change (looked up every ``every_s`` seconds)."""

    def __init__(self, config: WorkerConfig, echo: Echo, every_s: float = 5.0) -> None:
        self.config, self.echo, self.every_s = config, echo, every_s
        self.last_check, self.last_line = time.monotonic(), ""

    def maybe_report(self) -> None:
        if time.monotonic() - self.last_check < self.every_s:
            return
        self.last_check = time.monotonic()
        try:
            counts = count_states(open_study(self.config.spec(), self.config.storage, self.config.study_name))
        except Exception:  # noqa: BLE001 - progress is best effort; the workers report real errors
            return
        line = ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()))
        if line != self.last_line:
            self.last_line = line
            self.echo(f"[{time.strftime('%H:%M:%S')}] trials: {line} (target: {self.config.trials} finished)")


def _stop(procs: Iterable[subprocess.Popen[bytes]]) -> None:
    procs = list(procs)
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    """Entry of a local worker process: ``python -m harness.search.launch CONFIG_JSON INDEX``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or not args[1].isdigit():
        print("usage: python -m harness.search.launch WORKER_CONFIG_JSON WORKER_INDEX", file=sys.stderr)
        return 2
    data = json.loads(Path(args[0]).read_text())
    config = WorkerConfig(**{**data, "sets": tuple(data["sets"]), "only": tuple(data["only"]),
                             "worker_index": int(args[1])})
    try:
        ran = run_worker(config)
    except Exception as exc:
        print(f"search worker failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        raise
    print(f"search worker done: {ran}", flush=True)
    return 0


class SlurmSearchWorker:
    """A submitit task that runs ``run_worker``; on preemption or timeout it requeues itself.

    Only the config travels in the pickle: where the study stands is read from the storage,
    so a requeued worker (or Slurm's requeue of the original pickle) simply carries on.
    """

    def __init__(self, config: WorkerConfig, index: int, extra_paths: tuple[str, ...] = ()) -> None:
        self.config = replace(config, worker_index=index)
        self.extra_paths = tuple(extra_paths)

    def __call__(self) -> dict[str, int]:
        for path in reversed(self.extra_paths):
            if path not in sys.path:
                sys.path.insert(0, path)
        os.environ["HARNESS_EXECUTOR"] = "slurm"
        return run_worker(self.config)

    def checkpoint(self) -> Any:
        import submitit

        return submitit.helpers.DelayedSubmission(self)


def slurm_parameters(config: WorkerConfig, workers: int, cluster: str | Path | None) -> tuple[dict[str, Any], int]:
    """sbatch parameters for the worker array (the SLURM executor's profile rules) and its requeues.

    A worker asks what one trial job asks (its ``resources`` with the cluster profile on top),
    for as long as its share of the trials takes; longer studies continue after a requeue.
    """
    from harness.dispatch.cluster import load_profile, resolve_request
    from harness.dispatch.sbatch import job_name, sbatch_parameters
    from harness.search.trial_jobs import probe_values, trial_jobs

    spec = config.spec()
    job = trial_jobs(config.grid_path, config.profile, spec, probe_values(spec), config.sets, config.only)[-1]
    profile = load_profile(cluster or "local")
    request = resolve_request(job.experiment.resources, profile)
    params = sbatch_parameters(request, profile, name=job_name(job.grid, "search"), array_parallelism=workers)
    share = -(-config.trials // workers)
    params["time"] = request.time_min * share if profile.time_min is None else request.time_min
    return params, request.requeues


def run_slurm(config: WorkerConfig, workers: int, *, cluster: str | Path | None, folder: Path,
              extra_path: list[str] | None = None, echo: Echo = print) -> list[dict[str, int]]:
    """A SLURM array of ``workers`` search workers through submitit; waits for all of them."""
    import shlex

    import submitit

    params, requeues = slurm_parameters(config, workers, cluster)
    folder.mkdir(parents=True, exist_ok=True)
    executor = submitit.SlurmExecutor(folder=folder, max_num_timeout=requeues, python=shlex.quote(sys.executable))
    executor.update_parameters(**params)
    paths = tuple(import_paths(extra_path))
    with executor.batch():
        handles = [executor.submit(SlurmSearchWorker(config, i, paths)) for i in range(workers)]
    array_id = str(handles[0].job_id).split("_")[0]
    echo(f"submitted {workers} search workers as SLURM array {array_id} (logs in {folder})")
    outcomes: list[dict[str, int]] = []
    progress = _Progress(config, echo, every_s=10.0)
    pending = list(handles)
    try:
        while pending:
            time.sleep(1.0)
            progress.maybe_report()
            for handle in [h for h in pending if h.done()]:
                pending.remove(handle)
                try:
                    outcomes.append(handle.result())
                except Exception as exc:  # a failed worker: the others may still finish the study
                    echo(f"search worker {handle.job_id} failed: {str(exc).strip().splitlines()[-1][:300]}")
    except KeyboardInterrupt:
        for handle in handles:
            with contextlib.suppress(Exception):
                handle.cancel(check=False)
        echo(f"cancelled SLURM array {array_id}")
        raise
    return outcomes


if __name__ == "__main__":
    sys.exit(main())
