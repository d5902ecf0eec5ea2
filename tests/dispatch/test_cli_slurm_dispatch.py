"""`harness run/status/logs/cancel --executor slurm` through the CLI, on a real (local) SLURM cluster.

Skipped when no cluster answers (start one with slurm/start-local-cluster.sh). Jobs are the
fake quick jobs of test_local_executor, imported by the SLURM tasks through PYTHONPATH.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from test_cli_run import cli_env  # noqa: F401
from test_local_executor import compile_jobs, fake_env, statuses, write_grid  # noqa: F401

from harness.claim import holder_alive, read_claim
from harness.cli import main
from harness.dispatch.clusterinfo import cluster_answers as _cluster_answers
from harness.paths import run_dir

pytestmark = [pytest.mark.slurm, pytest.mark.slow,
              pytest.mark.skipif(not _cluster_answers(), reason="no SLURM cluster answers (sinfo failed)")]


def _wait_for(condition, timeout: float = 240.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for SLURM"
        time.sleep(0.5)


def by(jobs, stage: str, text: str):  # type: ignore[no-untyped-def]
    return next(j for j in jobs if j.stage == stage and j.factors["model.text"] == text)


def test_slurm_run_status_logs_and_cancel_through_the_cli(tmp_path: Path, cli_env, capsys) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """Fine-tuning only (one SLURM array): bert ends, slow roberta is still there to cancel."""
    grid, results = write_grid(tmp_path, "slurmcli"), tmp_path / "results"
    grid.write_text("".join(line for line in grid.read_text().splitlines(True) if "pretrain:" not in line))
    jobs = compile_jobs(grid)
    bert, roberta = by(jobs, "finetune", "bert"), by(jobs, "finetune", "roberta")
    cli_env.setenv("FAKE_SLOW", "roberta")
    cli_env.setenv("FAKE_SLOW_FACTOR", "4000")  # still running when cancelled, however busy the cluster
    assert main(["run", str(grid), "--results", str(results), "--executor", "slurm"]) == 0
    out = capsys.readouterr().out
    assert "submitted 2 job(s) to slurm" in out and out.count("queued") == 2  # returned at once
    _wait_for(lambda: (results / "store").exists() and statuses(results).get(bert.run_id) == "done")

    assert main(["status", str(grid), "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert "2 jobs: 1 done, 1 " in out  # roberta queued or running
    assert main(["logs", bert.run_id[:8], "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert "_log.out <==" in out and "step 3" in out

    assert main(["cancel", str(grid), "--results", str(results)]) == 0  # no --executor: read from the record
    assert "cancelled 1 job(s)" in capsys.readouterr().out
    assert statuses(results) == {bert.run_id: "done", roberta.run_id: "cancelled"}
    # Slurm signals the cancelled task and kills it after KillWait: until then its process still holds the
    # run's claim and the harness rightly says "running elsewhere". Wait for that process to be gone.
    _wait_for(lambda: not holder_alive(read_claim(run_dir(results, roberta.run_id))))
    assert main(["run", str(grid), "--results", str(results), "--executor", "slurm", "--dry-run"]) == 0
    assert "1 to run, 1 already done" in capsys.readouterr().out
