"""The Optuna study behind a search: storage, sampler, pruner, and recovery of lost trials.

Storage is a journal file by default: SQLite locks break on NFS with concurrent writers,
while the journal backend appends with its own lock and works on a shared filesystem.
Any database URL is accepted too. Re-opening a study resumes it (``load_if_exists``).

A trial whose worker died (killed, preempted, node lost) would stay RUNNING forever. Each
running trial records its worker's host, pid and a heartbeat in its user attrs; any worker
that finds a RUNNING trial whose process is gone (same host) or whose heartbeat is stale
marks it FAIL and enqueues its parameters again, at most ``max_retries`` times.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.claim import process_start
from harness.search.config import SearchSpec

if TYPE_CHECKING:
    import optuna

# User-attr keys a running trial carries (see harness.search.worker).
HOST, PID, PID_START, HEARTBEAT = "worker_host", "worker_pid", "worker_pid_start", "heartbeat"
RETRY_OF, RETRIES, LOST, ERROR = "retry_of", "retries", "lost_worker", "error"
FINISHED_STATES = ("COMPLETE", "PRUNED")


def make_storage(location: str) -> optuna.storages.BaseStorage:
    """A database URL → RDBStorage; anything else is a journal file path (parents created)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    if "://" in location:
        return optuna.storages.RDBStorage(location)
    path = Path(location)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The open(O_EXCL)-based lock works on NFS, where the default symlink lock may not.
    return JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))


def worker_seed(base: int | None, worker_index: int, trials_so_far: int) -> int | None:
    """A sampler seed per worker and resume point.

    Workers seeded alike would propose the same parameters in parallel, and a resumed study
    would replay the first run's proposals; mixing in the worker index and the number of
    trials already in the study avoids both while staying reproducible for a given history.
    """
    if base is None:
        return None
    return (base * 1_000_003 + worker_index * 7_919 + trials_so_far) % 2**31


def make_sampler(spec: SearchSpec, seed: int | None = None) -> optuna.samplers.BaseSampler:
    """The configured sampler; ``seed`` (see ``worker_seed``) replaces the spec's seed when given."""
    import optuna

    s = spec.sampler.model_copy(update={"seed": seed}) if seed is not None else spec.sampler
    startup: dict[str, Any] = {} if s.n_startup_trials is None else {"n_startup_trials": s.n_startup_trials}
    if s.name == "tpe":
        return optuna.samplers.TPESampler(seed=s.seed, **startup)
    if s.name == "random":
        return optuna.samplers.RandomSampler(seed=s.seed)
    if s.name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=s.seed, **startup)
    space = {name: p.grid_values() for name, p in spec.params.items()}
    return optuna.samplers.GridSampler(space, seed=s.seed)


def make_pruner(spec: SearchSpec) -> optuna.pruners.BasePruner:
    import optuna

    p = spec.pruner
    if p.name == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=p.n_startup_trials, n_warmup_steps=p.n_warmup_steps, interval_steps=p.interval_steps
        )
    if p.name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=p.min_resource, max_resource=p.max_resource, reduction_factor=p.reduction_factor
        )
    return optuna.pruners.NopPruner()


def open_study(spec: SearchSpec, storage_location: str, study_name: str,
               worker_index: int | None = None) -> optuna.Study:
    """Create the study, or load it when it exists (a re-run continues it).

    ``worker_index``: open it for a worker, whose sampler gets its own seed (``worker_seed``).
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = make_storage(storage_location)
    study = optuna.create_study(
        storage=storage, study_name=study_name, direction=spec.objective.direction,
        sampler=make_sampler(spec), pruner=make_pruner(spec), load_if_exists=True,
    )
    if worker_index is not None:
        seed = worker_seed(spec.sampler.seed, worker_index, len(study.get_trials(deepcopy=False)))
        study.sampler = make_sampler(spec, seed)
    existing = study.user_attrs.get("objective")
    wanted = spec.objective.model_dump(mode="json")
    if existing is None:
        study.set_user_attr("objective", wanted)
        study.set_user_attr("params", {k: v.model_dump(mode="json") for k, v in spec.params.items()})
    elif existing != wanted:
        raise ValueError(
            f"study '{study_name}' in {storage_location} optimises {existing}, but the grid now asks for "
            f"{wanted}; give the search a new 'study:' name or a new storage"
        )
    return study




def worker_identity() -> dict[str, Any]:
    pid = os.getpid()
    return {HOST: socket.gethostname(), PID: pid, PID_START: process_start(pid) or ""}


def _worker_gone(trial: optuna.trial.FrozenTrial, stale_after_s: float, now: float) -> bool:
    attrs = trial.user_attrs
    # Before its first heartbeat a trial's sign of life is its start time.
    started = trial.datetime_start.timestamp() if trial.datetime_start else now
    if now - float(attrs.get(HEARTBEAT, started)) > stale_after_s:
        return True
    if attrs.get(HOST) != socket.gethostname():
        return False  # another machine: only its heartbeat can tell
    if attrs.get(PID) is None or not attrs.get(PID_START):
        # The worker writes its identity one attribute at a time: until the process start time
        # is recorded there is nothing to compare a live process with, so only the heartbeat tells.
        return False
    start = process_start(int(attrs[PID]))
    return start is None or start != attrs[PID_START]


def recover_lost_trials(study: optuna.Study, spec: SearchSpec, now: float | None = None) -> list[int]:
    """Mark RUNNING trials of dead workers FAIL and enqueue their params again; their numbers."""
    from optuna.trial import TrialState

    now = time.time() if now is None else now
    lost = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not _worker_gone(trial, spec.stale_after_s, now):
            continue
        try:
            study._storage.set_trial_user_attr(trial._trial_id, LOST, True)
            study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        except Exception:  # another worker claimed it first (or it just finished): not ours to retry
            continue
        lost.append(trial.number)
        retries = int(trial.user_attrs.get(RETRIES, 0))
        if retries < spec.max_retries and trial.params:
            study.enqueue_trial(
                trial.params, user_attrs={RETRY_OF: trial.number, RETRIES: retries + 1}, skip_if_exists=False
            )
    return lost


def count_states(study: optuna.Study) -> dict[str, int]:
    counts: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    return counts


def finished(counts: dict[str, int]) -> int:
    return sum(counts.get(s, 0) for s in FINISHED_STATES)
