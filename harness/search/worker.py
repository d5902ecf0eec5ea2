"""One search worker: runs trials of the shared study until it has enough finished trials.

Local workers are processes on this machine, SLURM workers are array tasks; both call
``run_worker(config)``. Each trial runs the trial's harness jobs in-process through the job
runner (``harness.train:run_job`` unless a test injects another), with torch on one thread.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.locks import file_lock
from harness.search.config import SearchSpec
from harness.search.objective import metric_from_eval, read_objective
from harness.search.study import (
    ERROR,
    HEARTBEAT,
    LOST,
    count_states,
    finished,
    open_study,
    recover_lost_trials,
    worker_identity,
)
from harness.search.trial_jobs import suggest, trial_jobs

if TYPE_CHECKING:
    import optuna

    from harness.spec.schema import JobSpec

JobRunner = Callable[..., Any]


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a worker needs; plain data so it pickles for processes and submitit."""

    grid_path: str
    profile: str | None
    results: str
    storage: str
    study_name: str
    search: dict[str, Any]
    trials: int
    sets: tuple[str, ...] = ()
    only: tuple[str, ...] = ()
    job_runner: str = "harness.train:run_job"
    threads: int = 1
    # Which worker this is (local: its position, SLURM: its array task): seeds its sampler.
    worker_index: int = 0
    # A worker gives up after this many of its trials failed in a row (a broken grid or trainer).
    max_failures: int = 3

    def spec(self) -> SearchSpec:
        return SearchSpec.model_validate(self.search)


def load_runner(dotted: str) -> JobRunner:
    module, _, name = dotted.partition(":")
    return getattr(importlib.import_module(module), name)


def limit_threads(threads: int) -> None:
    """One thread per worker: W workers share the machine's cores.

    torch reads OMP_NUM_THREADS when it is first imported (by the trainer); one already
    imported is told directly.
    """
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def heartbeat(study: optuna.Study, trial: optuna.Trial, every_s: float) -> Iterator[None]:
    """Stamp the trial's heartbeat every ``every_s`` seconds while the block runs."""
    storage, trial_id = study._storage, trial._trial_id
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every_s):
            with contextlib.suppress(Exception):  # the trial may have ended meanwhile
                storage.set_trial_user_attr(trial_id, HEARTBEAT, time.time())

    thread = threading.Thread(target=beat, name="search-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


@contextlib.contextmanager
def run_lock(results: Path, run_id: str) -> Iterator[None]:
    """One process at a time per run id (two trials may share a pre-training run)."""
    with file_lock(results / "search" / "locks" / f"{run_id}.lock"):
        yield


def run_status(results: Path, run_id: str) -> str | None:
    from harness.dispatch.state import store_status

    return store_status(results).get(run_id)


def _retire_if_stale(job: JobSpec, results: Path) -> bool:
    """Whether ``job``'s finished result was stale (other generated inputs) and is now moved aside to retrain."""
    from harness.dispatch.order import retire_stale
    from harness.dispatch.state import job_states

    states = {rid: st.state for rid, st in job_states([job], results).items()}
    return bool(retire_stale([job], states, results, echo=lambda _: None))


class TrialRunner:
    """The objective function: one trial = the trial's jobs, the last one scored and prunable."""

    def __init__(self, config: WorkerConfig, study: optuna.Study) -> None:
        self.config = config
        self.spec = config.spec()
        self.study = study
        self.results = Path(config.results)
        self.runner = load_runner(config.job_runner)
        self.current_trial_id: int | None = None

    def __call__(self, trial: optuna.Trial) -> float:
        import optuna

        self.current_trial_id = trial._trial_id
        for key, value in {**worker_identity(), HEARTBEAT: time.time()}.items():
            trial.set_user_attr(key, value)
        try:
            return self._trial(trial)
        except optuna.TrialPruned:
            raise
        except Exception as exc:  # kept in the study so the report can say why
            trial.set_user_attr(ERROR, f"{type(exc).__name__}: {exc}"[:2000])
            raise

    def _trial(self, trial: optuna.Trial) -> float:
        with heartbeat(self.study, trial, self.spec.heartbeat_s):
            values = suggest(trial, self.spec)
            jobs = trial_jobs(self.config.grid_path, self.config.profile, self.spec, values,
                              self.config.sets, self.config.only)
            trial.set_user_attr("run_id", jobs[-1].run_id)
            trial.set_user_attr("run_ids", [j.run_id for j in jobs])
            for job in jobs[:-1]:
                self._must_be_done(job, self._run(job))
            return self._score(trial, jobs[-1])

    def _run(self, job: JobSpec, on_eval: Callable[[int, Any], None] | None = None) -> str | None:
        """Train ``job`` unless the store says it is done; its store status afterwards."""
        from harness.spec.runs import write_spec

        with run_lock(self.results, job.run_id):
            if run_status(self.results, job.run_id) == "done" and not _retire_if_stale(job, self.results):
                return "done"  # an earlier trial (or `harness run`) already trained exactly this job
            write_spec(job, self.results)
            if on_eval is None:
                self.runner(job, self.results)
            else:
                self.runner(job, self.results, on_eval=on_eval)
            return run_status(self.results, job.run_id)

    def _must_be_done(self, job: JobSpec, status: str | None) -> None:
        if status != "done":
            raise RuntimeError(f"run {job.short_id} ended '{status}'; see {self.results}/runs/{job.run_id}")

    def _score(self, trial: optuna.Trial, job: JobSpec) -> float:
        import optuna

        from harness.train import StopTraining

        objective = self.spec.objective
        metric = objective.metric_name()
        pruned: list[str] = []

        def on_eval(step: int, metrics: Any) -> None:
            value = metric_from_eval(metrics, objective.split, metric, job.task)
            if value is None:
                return
            trial.report(value, step)
            if trial.should_prune():
                pruned.append(f"pruned at step {step}: {objective.split}/{metric}={value:.4g}")
                raise StopTraining(pruned[-1])

        try:
            status = self._run(job, on_eval)
        except StopTraining as stop:  # a runner that lets the exception through
            raise optuna.TrialPruned(stop.reason) from None
        if pruned:
            raise optuna.TrialPruned(pruned[-1])
        self._must_be_done(job, status)
        value = read_objective(self.results, job.run_id, objective.task, objective.split, metric)
        if value is None:
            raise RuntimeError(f"run {job.short_id} stored no {objective.task}/{objective.split}/{metric}; "
                               f"check search.objective against the grid's eval splits")
        return value


def run_worker(config: WorkerConfig, poll_s: float = 2.0) -> dict[str, int]:
    """Run trials until the study has ``config.trials`` finished ones; counts of what this worker ran.

    When the last trials run in other workers, this one waits for them rather than leaving:
    should their worker die, this one retries the lost trial (``recover_lost_trials``).
    """
    limit_threads(config.threads)
    spec = config.spec()
    study = open_study(spec, config.storage, config.study_name, worker_index=config.worker_index)
    objective = TrialRunner(config, study)
    ran: dict[str, int] = {}
    failed_in_a_row = [0]

    def tally(_study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        ran[trial.state.name] = ran.get(trial.state.name, 0) + 1
        failed_in_a_row[0] = failed_in_a_row[0] + 1 if trial.state.name == "FAIL" else 0

    while True:
        recover_lost_trials(study, spec)
        counts = count_states(study)
        if finished(counts) >= config.trials:
            break
        if failed_in_a_row[0] >= config.max_failures:
            raise RuntimeError(f"{failed_in_a_row[0]} trials in a row failed in this worker; the last error: "
                               f"{last_error(study)}")
        if finished(counts) + counts.get("RUNNING", 0) >= config.trials and not counts.get("WAITING", 0):
            time.sleep(poll_s)  # the last trials are running in other workers
            continue
        try:
            study.optimize(objective, n_trials=1, catch=(Exception,), callbacks=[tally])
        except Exception:
            if not taken_over(study, objective.current_trial_id):
                raise
            # Another worker judged this trial's worker dead (a stale heartbeat), marked it FAIL
            # and enqueued its parameters again; optuna then refuses our result. Not an error here.
            print(f"search worker: trial id {objective.current_trial_id} was taken over by another worker; "
                  f"going on", flush=True)
    return ran


def taken_over(study: optuna.Study, trial_id: int | None) -> bool:
    """Whether another worker marked ``trial_id`` lost (see ``recover_lost_trials``)."""
    if trial_id is None:
        return False
    try:
        return bool(study._storage.get_trial(trial_id).user_attrs.get(LOST))
    except Exception:  # noqa: BLE001 - the storage's own error is the one worth raising
        return False


def last_error(study: optuna.Study) -> str:
    for t in reversed(study.get_trials(deepcopy=False)):
        if ERROR in t.user_attrs:
            return f"trial {t.number}: {t.user_attrs[ERROR]}"
    return "(none recorded)"
