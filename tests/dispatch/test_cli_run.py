"""`harness run / retry / status / logs / cancel` end to end, with fake quick jobs in real workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_local_executor import compile_jobs, fake_env, read_journal, statuses, write_grid  # noqa: F401

from harness.cli import main

HERE = Path(__file__).resolve().parent


@pytest.fixture
def cli_env(fake_env: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:  # noqa: F811
    """Workers run ``fake_job`` from this folder instead of the trainer."""
    fake_env.setenv("HARNESS_JOB_FN", "test_local_executor:fake_job")
    fake_env.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    fake_env.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    return fake_env


def starts(results: Path) -> list[str]:
    return [rid for _, what, rid in read_journal(results) if what == "start"]


def by(jobs, stage: str, text: str):  # type: ignore[no-untyped-def]
    return next(j for j in jobs if j.stage == stage and j.factors["model.text"] == text)


@pytest.mark.slow
def test_run_then_rerun_runs_only_what_is_missing(tmp_path: Path, cli_env, capsys) -> None:  # type: ignore[no-untyped-def]
    grid, results = write_grid(tmp_path), tmp_path / "results"
    jobs = compile_jobs(grid)
    assert main(["run", str(grid), "--results", str(results), "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "4 to run, 0 already done" in out and "4 jobs: 4 done" in out and "report:" in out
    assert all((results / "runs" / j.run_id / "spec.json").is_file() for j in jobs)
    assert sorted(starts(results)) == sorted(j.run_id for j in jobs)
    assert main(["run", str(grid), "--results", str(results)]) == 0
    assert "nothing to run" in capsys.readouterr().out
    assert len(starts(results)) == 4


@pytest.mark.slow
def test_failure_status_logs_and_retry(tmp_path: Path, cli_env, capsys) -> None:  # type: ignore[no-untyped-def]
    grid, results = write_grid(tmp_path), tmp_path / "results"
    jobs = compile_jobs(grid)
    cli_env.setenv("FAKE_CRASH", "pretrain:roberta")
    assert main(["run", str(grid), "--results", str(results), "--workers", "2"]) == 1
    out = capsys.readouterr().out
    assert "4 jobs: 2 done, 2 failed" in out and f"harness retry {grid}" in out
    crashed, blocked = by(jobs, "pretrain", "roberta"), by(jobs, "finetune", "roberta")

    assert main(["status", str(grid), "--results", str(results)]) == 0
    out = capsys.readouterr().out
    crashed_line = next(line for line in out.splitlines() if line.startswith(crashed.short_id))
    assert "failed" in crashed_line and "RuntimeError: fake crash" in crashed_line
    assert "model.text=roberta" in crashed_line
    done_line = next(line for line in out.splitlines() if line.startswith(by(jobs, "finetune", "bert").short_id))
    assert "done" in done_line and "3/3" in done_line and "test/score=0.5" in done_line
    assert "4 jobs: 2 done, 2 failed" in out

    assert main(["logs", crashed.run_id[:6], "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert "log.txt <==" in out and "step 2" in out and "error.txt <==" in out and "Traceback" in out
    assert main(["logs", "zzzz", "--results", str(results)]) == 2
    assert "no run id" in capsys.readouterr().err

    cli_env.delenv("FAKE_CRASH")
    assert main(["retry", str(grid), "--results", str(results), "--dry-run"]) == 0
    assert "would run" in capsys.readouterr().out and len(starts(results)) == 3
    assert main(["retry", str(grid), "--results", str(results)]) == 0
    assert "2 to run, 2 already done" in capsys.readouterr().out
    assert starts(results).count(crashed.run_id) == 2 and starts(results).count(blocked.run_id) == 1
    assert statuses(results) == {j.run_id: "done" for j in jobs}
    assert main(["retry", str(grid), "--results", str(results), "--all"]) == 0
    assert "nothing to retry" in capsys.readouterr().out and len(starts(results)) == 5


def _ctrl_c_reaches_the_child() -> None:
    # A process started in the background by a non-interactive shell (`cmd &`, e.g. CI launched that way)
    # inherits SIGINT ignored, and Python then keeps ignoring it: the Ctrl-C this test sends would be lost.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _spawn_run(grid: Path, results: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "harness", "run", str(grid), "--results", str(results),
                             "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=_ctrl_c_reaches_the_child)


def _wait_for(condition, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)


@pytest.mark.slow
def test_ctrl_c_keeps_finished_results_and_rerun_completes(tmp_path: Path, cli_env, capsys) -> None:  # type: ignore[no-untyped-def]
    grid, results = write_grid(tmp_path), tmp_path / "results"
    jobs = compile_jobs(grid)
    cli_env.setenv("FAKE_SLOW", "roberta")
    proc = _spawn_run(grid, results)
    bert = {by(jobs, s, "bert").run_id for s in ("pretrain", "finetune")}
    _wait_for(lambda: bert <= {rid for _, w, rid in read_journal(results) if w == "end"})
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert "interrupted" in out
    status = statuses(results)
    assert all(status[rid] == "done" for rid in bert)
    assert status[by(jobs, "pretrain", "roberta").run_id] == "cancelled"
    assert by(jobs, "finetune", "roberta").run_id not in status  # never started

    cli_env.delenv("FAKE_SLOW")
    assert main(["run", str(grid), "--results", str(results)]) == 0
    assert "2 to run, 2 already done" in capsys.readouterr().out
    assert statuses(results) == {j.run_id: "done" for j in jobs}
    assert all(starts(results).count(rid) == 1 for rid in bert)


@pytest.mark.slow
def test_cancel_stops_a_running_grid(tmp_path: Path, cli_env, capsys) -> None:  # type: ignore[no-untyped-def]
    grid, results = write_grid(tmp_path), tmp_path / "results"
    jobs = compile_jobs(grid)
    cli_env.setenv("FAKE_SLOW", "bert,roberta")
    proc = _spawn_run(grid, results)
    _wait_for(lambda: len(starts(results)) == 2)
    assert main(["run", str(grid), "--results", str(results)]) == 2  # a second dispatcher is refused
    assert "already being dispatched" in capsys.readouterr().err
    assert main(["cancel", str(grid), "--results", str(results)]) == 0
    assert "cancelled 2 job(s)" in capsys.readouterr().out
    proc.communicate(timeout=30)
    assert proc.returncode == 130
    status = statuses(results)
    assert [status[by(jobs, "pretrain", t).run_id] for t in ("bert", "roberta")] == ["cancelled", "cancelled"]
    assert main(["status", str(grid), "--results", str(results)]) == 0
    assert "4 jobs: 2 cancelled, 2 pending" in capsys.readouterr().out


def test_user_errors_exit_2(tmp_path: Path, cli_env, capsys) -> None:  # type: ignore[no-untyped-def]
    grid, results = write_grid(tmp_path), tmp_path / "results"
    assert main(["run", str(grid), "--results", str(results), "--executor", "locl"]) == 2
    assert "did you mean 'local'" in capsys.readouterr().err
    assert main(["run", str(grid), "--results", str(results), "--workers", "0"]) == 2
    assert main(["run", str(grid), "--results", str(results), "--cluster", "x.yaml"]) == 2
    assert "--cluster applies to --executor slurm only" in capsys.readouterr().err
    assert main(["status", str(grid), "--results", str(results), "--state", "runing"]) == 2
    assert main(["logs", "abc", "--results", str(results)]) == 2
    assert "no runs in" in capsys.readouterr().err
    assert main(["run", str(grid), "--results", str(results), "--dry-run"]) == 0
    assert "would run" in capsys.readouterr().out and not results.exists()
    cli_env.setenv("CUDA_VISIBLE_DEVICES", "")
    gpu_grid = tmp_path / "gpus.yaml"
    gpu_grid.write_text(grid.read_text().replace("base:\n", "base:\n  resources: {gpus_per_node: 1}\n"))
    assert main(["run", str(gpu_grid), "--results", str(results)]) == 2
    err = capsys.readouterr().err  # refused by the preflight, before anything is written
    assert "asking for 1 node(s) × 1 GPU(s): this machine has no visible GPU" in err and "gpus_per_node=0" in err


REAL_GRID = """\
name: realtiny
base:
  model: {scale: tiny, weights: random, hidden: 16, heads: 2, fusion_layers: 1, max_text_len: 8}
  data: {synthetic: {train_images: 16, eval_images: 8, image_size: 32}}
  finetune:
    vqa: {steps: 2, batch: 4, image_size: 32, dataset: synthetic, eval_splits: [test]}
seeds: 1
"""


@pytest.mark.slow
def test_one_real_trainer_job_through_harness_run(tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    """The real harness.train.run_job in a worker: progress, store row, metrics and report line up."""
    monkeypatch.delenv("HARNESS_JOB_FN", raising=False)
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    grid, results = tmp_path / "realtiny.yaml", tmp_path / "results"
    grid.write_text(REAL_GRID)
    assert main(["run", str(grid), "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert "1 jobs: 1 done" in out and "report:" in out
    (job,) = compile_jobs(grid)
    assert statuses(results) == {job.run_id: "done"}
    assert (results / "runs" / job.run_id / "model.safetensors").is_file()
    assert main(["status", str(grid), "--results", str(results)]) == 0
    assert "test/vqa_score=" in capsys.readouterr().out
