"""The search machinery for real (Optuna journal storage, spawned workers, pruning, recovery),
with the trainer replaced by ``search_fakes.fake_run_job`` so that a trial takes ~0.1 s."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import time
from pathlib import Path

import pytest
import search_fakes
from search_fakes import GRID, calls, write_grid

from harness.search.config import SearchSpec, parse_search
from harness.search.launch import run_local
from harness.search.report import write_report
from harness.search.study import (
    HEARTBEAT,
    HOST,
    LOST,
    PID,
    RETRY_OF,
    count_states,
    finished,
    open_study,
    recover_lost_trials,
)
from harness.search.worker import WorkerConfig, run_worker

FAKE = "search_fakes:fake_run_job"


def _config(tmp_path: Path, trials: int, **search_patch: object) -> WorkerConfig:
    import yaml

    raw = {**yaml.safe_load(GRID)["search"], **search_patch}
    grid = write_grid(tmp_path)
    results = tmp_path / "results"
    return WorkerConfig(grid_path=str(grid), profile=None, results=str(results),
                        storage=str(results / "search" / "search_toy" / "journal.log"), study_name="search_toy",
                        search=parse_search(raw).model_dump(mode="json"), trials=trials, job_runner=FAKE)


def _study(config: WorkerConfig):  # type: ignore[no-untyped-def]
    return open_study(config.spec(), config.storage, config.study_name)


def _starts(results: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for call in calls(results):
        if call["event"] == "start":
            out[call["run_id"]] = out.get(call["run_id"], 0) + 1
    return out


@pytest.mark.slow
def test_two_local_workers_finish_and_a_rerun_continues(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(search_fakes.SLEEP_ENV, "0.06")  # ~0.3 s a trial: both workers get some
    config = _config(tmp_path, trials=8)
    results = Path(config.results)
    run_local(config, workers=2)
    study = _study(config)
    first = {t.number: t for t in study.trials}
    assert finished(count_states(study)) >= 8
    assert len({c["pid"] for c in calls(results)}) == 2, "both workers ran trials"
    run_ids = [t.user_attrs["run_id"] for t in study.trials]
    assert len(set(run_ids)) == len(run_ids), "workers' samplers are seeded apart: no trial proposed twice"
    out = write_report(study, config.spec(), results, "search_toy")
    best = json.loads((out / "best.json").read_text())
    top = max((t for t in study.trials if t.value is not None), key=lambda t: t.value)
    assert best["best"]["number"] == top.number and best["best"]["params"] == top.params
    assert best["best"]["run_id"] == top.user_attrs["run_id"]
    for name in ("summary.md", "trials.csv", "history.png", "slice.png", "importances.json"):
        assert (out / name).stat().st_size > 0, name
    assert set(best["importances"]) == {"lr", "lr_ratio"}
    from harness.store import Store

    rows = Store(results).metrics()
    search_rows = rows[rows["split"] == "search"]
    assert len(search_rows) == finished(count_states(study))
    assert set(search_rows["run_id"]) == {t.user_attrs["run_id"] for t in study.trials}

    rerun = WorkerConfig(**{**config.__dict__, "trials": 11})
    run_local(rerun, workers=2)
    study = _study(config)
    assert finished(count_states(study)) >= 11
    for number, old in first.items():  # finished trials kept as they were
        assert study.trials[number].params == old.params and study.trials[number].value == old.value
    assert min(t.number for t in study.trials if t.number not in first) == max(first) + 1
    assert all(n == 1 for n in _starts(results).values()), "no trial's job was trained twice"


def test_median_pruner_stops_a_clearly_bad_trial_early(tmp_path: Path) -> None:
    config = _config(tmp_path, trials=3, pruner={"name": "median", "n_startup_trials": 2})
    study = _study(config)
    for params in ({"lr": 1e-3, "lr_ratio": 5.0}, {"lr": 2e-3, "lr_ratio": 4.0}, {"lr": 1e-5, "lr_ratio": 50.0}):
        study.enqueue_trial(params)
    run_worker(config)
    study = _study(config)
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "COMPLETE", "PRUNED"]
    bad = study.trials[2]
    assert max(bad.intermediate_values) == search_fakes.STEP_EVERY, "pruned at its first evaluation"
    events = [c["event"] for c in calls(Path(config.results)) if c["run_id"] == bad.user_attrs["run_id"]]
    assert events == ["start", f"pruned@{search_fakes.STEP_EVERY}"]


@pytest.mark.slow
def test_a_killed_workers_trial_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    config = _config(tmp_path, trials=3)
    hang = tmp_path / "hang.pid"
    proc = multiprocessing.get_context("spawn").Process(target=search_fakes.hanging_worker, args=(config, str(hang)))
    proc.start()
    deadline = time.monotonic() + 60
    while not hang.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert hang.exists(), "the worker never started its trial"
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    (lost,) = _study(config).trials
    assert lost.state.name == "RUNNING"

    # Running the search again finds the dead worker's trial and runs it again.
    monkeypatch.setenv("HARNESS_JOB_FN", FAKE)
    assert main(["search", config.grid_path, "--trials", "3", "--workers", "1", "--results", config.results]) == 0
    assert "lost with their worker: trial(s) 0" in capsys.readouterr().out
    study = _study(config)
    assert study.trials[0].state.name == "FAIL" and study.trials[0].user_attrs[LOST]
    (retry,) = [t for t in study.trials if t.user_attrs.get(RETRY_OF) == 0]
    assert retry.state.name == "COMPLETE" and retry.params == lost.params
    assert retry.user_attrs["run_id"] == lost.user_attrs["run_id"], "the retry resumes the same run"
    assert finished(count_states(study)) == 3


def test_a_worker_gives_up_after_failures_in_a_row(tmp_path: Path) -> None:
    from dataclasses import replace

    config = replace(_config(tmp_path, trials=8), job_runner="search_fakes:failing_run_job")
    with pytest.raises(RuntimeError, match=r"3 trials in a row failed in this worker; the last error: trial 2: "
                                           r"RuntimeError: boom in run"):
        run_worker(config)
    assert count_states(_study(config)) == {"FAIL": 3}


def test_a_database_url_works_as_storage(tmp_path: Path) -> None:
    from dataclasses import replace

    config = replace(_config(tmp_path, trials=2), storage=f"sqlite:///{tmp_path / 'study.db'}")
    assert run_worker(config) == {"COMPLETE": 2}
    assert finished(count_states(_study(config))) == 2


def test_stale_heartbeat_on_another_host_is_recovered(tmp_path: Path) -> None:
    config = _config(tmp_path, trials=2, heartbeat_s=1.0, stale_after_s=5.0, max_retries=1)
    spec: SearchSpec = config.spec()
    study = _study(config)
    for number, beat_age in enumerate((60.0, 1.0)):
        trial = study.ask()
        trial.suggest_float("lr", 1e-5, 1e-1, log=True)
        trial.suggest_float("lr_ratio", 1, 50, log=True)
        for key, value in {HOST: "elsewhere", PID: 4242 + number, HEARTBEAT: time.time() - beat_age}.items():
            trial.set_user_attr(key, value)
    assert recover_lost_trials(study, spec) == [0], "only the silent trial is lost"
    assert recover_lost_trials(study, spec) == [], "and it is recovered once"
    states = [t.state.name for t in study.get_trials()]
    assert states == ["FAIL", "RUNNING", "WAITING"]
    assert socket.gethostname() != "elsewhere"


def test_a_trial_being_recorded_is_not_taken_for_lost(tmp_path: Path) -> None:
    """Its worker has written host and pid but not yet the pid's start time (the CI race)."""
    config = _config(tmp_path, trials=2)
    study = _study(config)
    trial = study.ask()
    trial.set_user_attr(HOST, socket.gethostname())
    trial.set_user_attr(PID, os.getpid())
    assert recover_lost_trials(study, config.spec()) == []
    assert [t.state.name for t in study.get_trials()] == ["RUNNING"]


def test_a_worker_whose_trial_was_taken_over_goes_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dataclasses import replace

    config = replace(_config(tmp_path, trials=3), job_runner="search_fakes:taken_over_run_job")
    ran = run_worker(config)
    assert "was taken over by another worker; going on" in capsys.readouterr().out
    counts = count_states(_study(config))
    assert finished(counts) == 3 and counts.get("FAIL") == 1, counts
    assert ran == {"COMPLETE": 3}


@pytest.mark.slow
def test_cli_search_runs_and_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    grid = write_grid(tmp_path)
    results = tmp_path / "results"
    monkeypatch.setenv("HARNESS_JOB_FN", FAKE)
    assert main(["search", str(grid), "--trials", "3", "--workers", "2", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert "2 search workers started" in out and "best: trial" in out
    report = results / "reports" / "search_toy" / "search"
    assert json.loads((report / "best.json").read_text())["trials"]["COMPLETE"] >= 3
    assert "## Parameter importances" in (report / "summary.md").read_text()
    (report / "best.json").unlink()
    assert main(["search", str(grid), "--report-only", "--results", str(results)]) == 0
    assert "workers started" not in capsys.readouterr().out and (report / "best.json").exists()


def test_cli_search_without_a_search_block_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    grid = write_grid(tmp_path, GRID.split("search:")[0])
    assert main(["search", str(grid), "--results", str(tmp_path / "r")]) == 2
    assert "no 'search:' block" in capsys.readouterr().err


def test_cli_says_when_a_grid_has_no_search_block(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    base, _ = GRID.split("search:")
    (tmp_path / "plain.yaml").write_text(base.replace("name: search_toy", "name: plain"))
    assert main(["search", str(tmp_path / "plain.yaml"), "--results", str(tmp_path / "r")]) == 2
    assert "has no 'search:' block" in capsys.readouterr().err


def test_cli_refuses_to_set_a_searched_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    grid = write_grid(tmp_path)
    assert main(["search", str(grid), "--set", "optim.lr=1e-3", "--results", str(tmp_path / "r")]) == 2
    assert "--set optim.lr: that key is searched (search.params.lr)" in capsys.readouterr().err
