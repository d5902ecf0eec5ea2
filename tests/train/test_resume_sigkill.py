"""A real kill: the trainer process gets SIGKILL mid-run, `harness run` restarts it, and it resumes.

``$HARNESS_STOP_AFTER_STEPS`` makes the local worker send itself SIGKILL right after step 6 (no
exception handler, no ``finally``, nothing recorded by the trainer: what the OOM killer does).
The restarted run must say it resumed from step 4's checkpoint, run steps 5..12 only, and end
with the metrics of a run that was never interrupted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.paths import run_dir
from harness.spec.compile import compile_grid
from harness.store import Store
from harness.train import checkpoint
from harness.train.interrupt import STOP_AFTER_ENV

GRID = """\
name: kill_resume
base:
  model: {scale: tiny, weights: random, hidden: 16, heads: 2, fusion_layers: 1, max_text_len: 8, dropout: 0.1}
  data: {source: synthetic}
  finetune:
    vqa: {steps: 12, batch: 4, image_size: 32, dataset: synthetic, eval_splits: [test]}
  train: {checkpoint_every: 4, log_every: 2, deterministic: true}
  resources: {threads: 1}
factors:
  model.fusion: [co-attention]
seeds: 1
"""


def _result(results: Path, run_id: str) -> dict:
    return json.loads((run_dir(results, run_id) / "result.json").read_text())


@pytest.mark.slow
def test_sigkilled_trainer_resumes_through_harness_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    grid = tmp_path / "kill_resume.yaml"
    grid.write_text(GRID)
    (job,) = compile_grid(grid).jobs
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert main(["run", str(grid), "--results", str(whole)]) == 0

    monkeypatch.setenv(STOP_AFTER_ENV, "6")
    assert main(["run", str(grid), "--results", str(killed)]) == 1  # the job did not finish
    folder = run_dir(killed, job.run_id)
    row = Store(killed).runs().set_index("run_id").loc[job.run_id]
    assert row["status"] == "failed" and "exited with code -9" in row["error"]  # -9: killed by SIGKILL
    assert "interrupt hook: kill after step 6" in (folder / "log.txt").read_text()
    assert json.loads((folder / "progress.json").read_text())["step"] == 6
    assert checkpoint.latest(folder / "checkpoints")[0] == 4 and not (folder / "result.json").exists()

    monkeypatch.delenv(STOP_AFTER_ENV)
    assert main(["run", str(grid), "--results", str(killed)]) == 0
    resumed = _result(killed, job.run_id)
    step_4 = (folder / "checkpoints" / "step_4").resolve()
    assert resumed["resumed_from"] is not None, "the restarted run began at step 0"
    assert resumed["resumed_from"]["step"] == 4 and Path(resumed["resumed_from"]["checkpoint"]).resolve() == step_4
    assert resumed["stats"]["steps_run"] == 8  # steps 5..12, not 1..12
    assert "resumed from step 4 of 12" in (folder / "log.txt").read_text()  # printed by the resumed trainer
    progress = json.loads((folder / "progress.json").read_text())
    assert progress["state"] == "done" and progress["resumed_from"]["step"] == 4 and progress["steps_run"] == 8
    row = Store(killed).runs().set_index("run_id").loc[job.run_id]
    assert row["status"] == "done" and row["resumed_from_step"] == 4
    assert Path(row["resumed_from"]).resolve() == step_4

    straight = _result(whole, job.run_id)
    assert straight["resumed_from"] is None and straight["stats"]["steps_run"] == 12
    assert straight["metrics"] and resumed["metrics"] == straight["metrics"]
