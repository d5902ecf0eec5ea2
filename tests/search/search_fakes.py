"""Cheap stand-ins for the trainer, injected into real search workers (``module:function`` refs).

``fake_run_job`` behaves like ``harness.train.run_job`` as the search sees it: it writes a runs
row and metrics rows to the real store, calls ``on_eval(step, {"val/vqa_score": x})`` at each
evaluation, and honours ``StopTraining`` by ending the run early. Its score is a smooth
function of the job's ``optim.lr`` and ``optim.lr_ratio`` (best near lr 1e-3, ratio 5), so a
search has something to find. Every call is appended to ``<results>/fake_calls.jsonl``.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from harness.train import StopTraining

EVALS = 5  # evaluations per job, every STEP_EVERY steps
STEP_EVERY = 10
SLEEP_ENV = "FAKE_SEARCH_SLEEP_S"
HANG_ENV = "FAKE_SEARCH_HANG_FILE"


def final_score(lr: float, lr_ratio: float) -> float:
    """In (0, 1]: 1 at lr=1e-3, lr_ratio=5; falls off in log space."""
    return math.exp(-((math.log10(lr) + 3) ** 2) - 0.5 * (math.log10(lr_ratio) - math.log10(5)) ** 2)


def _log_call(results: Path, job: Any, event: str) -> None:
    with (results / "fake_calls.jsonl").open("a") as handle:
        handle.write(json.dumps({"run_id": job.run_id, "event": event, "pid": os.getpid(),
                                 "lr": job.experiment.optim.lr, "lr_ratio": job.experiment.optim.lr_ratio}) + "\n")


def _runs_row(job: Any, status: str, error: str | None = None) -> dict[str, Any]:
    return {"run_id": job.run_id, "grid": job.grid, "stage": job.stage, "task": job.task, "seed": job.seed,
            "factors": dict(job.factors), "status": status, "error": error}


def fake_run_job(job: Any, results: Path, *, on_eval: Any = None) -> dict[str, Any]:
    from harness.store import Store  # imported here: the config tests need no store

    results = Path(results)
    store = Store(results)
    store.write_run(_runs_row(job, "running"))
    _log_call(results, job, "start")
    hang = os.environ.get(HANG_ENV)
    if hang and not Path(hang).exists():  # the first job to get here hangs (a worker about to be killed)
        Path(hang).write_text(str(os.getpid()))
        time.sleep(3600)
    optim = job.experiment.optim
    target = final_score(optim.lr, optim.lr_ratio)
    rows = []
    for i in range(1, EVALS + 1):
        time.sleep(float(os.environ.get(SLEEP_ENV, "0.02")))
        step = i * STEP_EVERY
        value = target * (1 - 0.5 ** i)  # a learning curve rising towards the final score
        rows.append({"stage": job.stage, "task": job.task, "split": "val", "metric": "vqa_score",
                     "value": value, "step": step})
        if on_eval is None:
            continue
        try:
            on_eval(step, {"val/vqa_score": value, "val/loss": 1 - value})
        except StopTraining as stop:
            store.write_metrics(job.run_id, rows)
            store.write_run(_runs_row(job, "cancelled", stop.reason))
            _log_call(results, job, f"pruned@{step}")
            return {"status": "pruned", "step": step}
    store.write_metrics(job.run_id, rows)
    store.write_run(_runs_row(job, "done"))
    _log_call(results, job, "done")
    return {"status": "done", "step": EVALS * STEP_EVERY}


def failing_run_job(job: Any, results: Path, *, on_eval: Any = None) -> dict[str, Any]:
    """A trainer that always crashes (a broken grid or trainer, as the search sees it)."""
    raise RuntimeError(f"boom in run {job.run_id[:10]}")


def taken_over_run_job(job: Any, results: Path, *, on_eval: Any = None) -> dict[str, Any]:
    """The first call finds its trial declared lost by "another worker" (marked FAIL, params
    enqueued again, as ``recover_lost_trials`` does), then finishes its job anyway."""
    marker = Path(results) / "taken_over"
    if not marker.exists():
        marker.write_text("1")
        import optuna

        from harness.search.study import LOST, make_storage

        study = optuna.load_study(study_name="search_toy",
                                  storage=make_storage(str(Path(results) / "search" / "search_toy" / "journal.log")))
        for trial in study.get_trials(states=(optuna.trial.TrialState.RUNNING,)):
            study._storage.set_trial_user_attr(trial._trial_id, LOST, True)
            study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
            study.enqueue_trial(trial.params)
    return fake_run_job(job, results, on_eval=on_eval)


def hanging_worker(config: Any, hang_file: str) -> None:
    """A real search worker whose first job hangs (until the test kills the process)."""
    from harness.search.worker import run_worker

    os.environ[HANG_ENV] = hang_file
    run_worker(config)


def calls(results: Path) -> list[dict[str, Any]]:
    path = Path(results) / "fake_calls.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


GRID = """\
name: search_toy
base:
  model: {scale: tiny, hidden: 16, heads: 2, fusion_layers: 1, max_text_len: 8}
  optim: {lr: 1.0e-3, lr_ratio: 5}
  finetune:
    vqa: {steps: 50, batch: 8, image_size: 32, dataset: synthetic, eval_splits: [val], eval_every: 10}
search:
  params:
    lr: {path: optim.lr, type: float, low: 1.0e-5, high: 1.0e-1, log: true}
    lr_ratio: {path: optim.lr_ratio, type: float, low: 1, high: 50, log: true}
  objective: {task: vqa, split: val, metric: vqa_score}
  sampler: {name: tpe, seed: 0, n_startup_trials: 4}
  pruner: none
  trials: 8
"""


def write_grid(folder: Path, text: str = GRID) -> Path:
    path = folder / "search_toy.yaml"
    path.write_text(text)
    return path
