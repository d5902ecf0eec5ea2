"""The real pipeline on a live SLURM cluster: `harness run --executor slurm`, and requeue → resume.

Jobs run ``harness.train.run_job`` (tiny models, synthetic data). Skipped when no cluster answers.
The grid test runs a subset of the local text-encoder grid (2 encoders × 3 seeds, 10 steps):
the whole grid (18 jobs × 300 steps) takes several minutes on two cores. Waits are generous
because the one-node cluster is shared by whoever else runs SLURM tests at the same time.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from slurm_fakes import cancel_leftovers, needs_cluster, store_statuses, wait_until  # noqa: F401 - a fixture

from harness.paths import run_dir

pytestmark = [pytest.mark.slurm, needs_cluster, pytest.mark.slow, pytest.mark.usefixtures("cancel_leftovers")]

REPO = Path(__file__).resolve().parents[2]

RESUME_GRID = """\
name: slurm_resume
base:
  model: {scale: tiny, weights: random, hidden: 16, heads: 2, fusion_layers: 1, max_text_len: 8, dropout: 0.0}
  data: {source: synthetic}
  finetune:
    vqa: {steps: 60, batch: 4, image_size: 32, dataset: synthetic, eval_splits: [test]}
  train: {checkpoint_every: 5, log_every: 5}
  # submitit counts any requeue of a job of ≤ 10 min as a timeout: requeues must be ≥ 1 here.
  resources: {threads: 1, mem_gb: 1, time_min: 10, requeues: 1}
factors:
  model.fusion: [co-attention]
seeds: 1
"""


def final_metrics(results: Path, run_id: str) -> dict[str, float]:
    from harness.store import Store

    rows = Store(results).metrics([run_id])
    rows = rows[rows["split"] != "train"]  # train-split rows hold timings (samples/s, wall), not results
    last = rows.sort_values("step").groupby(["split", "metric"]).tail(1)
    return {f"{r.split}/{r.metric}": float(r.value) for r in last.itertuples()}


def test_text_encoder_grid_runs_on_slurm_with_every_result_in_the_store(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main
    from harness.spec.compile import compile_grid

    results = tmp_path / "results"
    selection = ["--profile", "local", "--only", "model.text=bert", "--only", "model.text=emb-only",
                 "--set", "finetune.vqa.steps=10"]
    grid_file = str(REPO / "grids" / "text_encoders.yaml")
    argv = ["run", grid_file, *selection, "--executor", "slurm", "--cluster", "local", "--results", str(results)]
    assert main(argv) == 0
    assert "submitted 6 job(s) to slurm" in capsys.readouterr().out  # returned at once, jobs queued
    jobs = compile_grid(grid_file, "local", ["finetune.vqa.steps=10"], ["model.text=bert", "model.text=emb-only"]).jobs
    wait_until(lambda: set(store_statuses(results).values()) <= {"done", "failed"}
               and len(store_statuses(results)) == len(jobs), 600, "all six jobs to finish", poll_s=2)
    assert store_statuses(results) == {j.run_id: "done" for j in jobs}
    from harness.store import Store

    runs = Store(results).runs()
    assert set(runs["executor"]) == {"slurm"} and runs["slurm_job_id"].str.match(r"^\d+_\d$").all()
    for job in jobs:
        assert "test/vqa_score" in final_metrics(results, job.run_id)
    assert main(["status", grid_file, *selection, "--results", str(results)]) == 0
    assert "6 done" in capsys.readouterr().out


def test_requeued_job_resumes_from_its_checkpoint_with_the_same_metrics(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import submitit

    from harness.dispatch.cluster import ClusterProfile
    from harness.dispatch.order import write_specs
    from harness.dispatch.slurm import SlurmExecutor, read_records, slurm_folder
    from harness.spec.compile import compile_grid
    from harness.store import Store
    from harness.train.interrupt import HOLD_AFTER_ENV

    grid = tmp_path / "slurm_resume.yaml"
    grid.write_text(RESUME_GRID)
    (job,) = compile_grid(grid).jobs
    profile = ClusterProfile(partition="debug", signal_delay_s=30, source="test")
    straight, requeued = tmp_path / "straight", tmp_path / "requeued"
    write_specs([job], straight)
    SlurmExecutor(profile).submit([job], straight)
    # The second run's trainer holds after step 15's checkpoint (harness.train.interrupt; sbatch passes
    # the environment on), so the preemption lands at a known step, not wherever polling catches it.
    monkeypatch.setenv(HOLD_AFTER_ENV, "15")
    write_specs([job], requeued)
    SlurmExecutor(profile).submit([job], requeued)
    monkeypatch.delenv(HOLD_AFTER_ENV)
    folder = run_dir(requeued, job.run_id)

    def slurm_log() -> str:  # the links in the run folder point at submitit's files, which come later
        return "".join(p.read_text() for p in (folder / "slurm").glob("*_log.out") if p.exists())

    wait_until(lambda: "interrupt hook: hold after step 15" in slurm_log(), 480, "the job to hold after step 15")
    assert (folder / "checkpoints" / "step_15").is_dir()
    sid = read_records(requeued, job.grid)[0]["jobs"][job.run_id]
    # What submitit does for a preemption: SIGTERM, then USR2 → checkpoint() → scontrol requeue.
    submitit.SlurmJob(folder=slurm_folder(requeued, job.grid) / "submitit", job_id=sid)._interrupt()
    wait_until(lambda: all(store_statuses(r).get(job.run_id) == "done" for r in (straight, requeued)), 480,
               "both runs to finish")

    # The requeued attempt restored step 15's checkpoint and ran steps 16..60 only; it says so itself.
    result = json.loads((folder / "result.json").read_text())
    assert result["resumed_from"] is not None, "the requeued run began at step 0"
    assert result["resumed_from"]["step"] == 15 and result["stats"]["steps_run"] == 45
    assert Path(result["resumed_from"]["checkpoint"]).resolve() == (folder / "checkpoints" / "step_15").resolve()
    assert "resumed from step 15 of 60" in slurm_log()
    row = Store(requeued).runs().set_index("run_id").loc[job.run_id]
    assert row["resumed_from_step"] == 15 and row["requeues"] >= 1 and row["slurm_job_id"] == sid
    restart = subprocess.run(["sacct", "-n", "-X", "-D", "-j", sid, "-o", "State"], capture_output=True, text=True)
    assert "REQUEUED" in restart.stdout, restart.stdout + restart.stderr  # Slurm's own record of the requeue
    uninterrupted = json.loads((run_dir(straight, job.run_id) / "result.json").read_text())
    assert uninterrupted["resumed_from"] is None and uninterrupted["stats"]["steps_run"] == 60
    expected = final_metrics(straight, job.run_id)
    assert expected and final_metrics(requeued, job.run_id) == pytest.approx(expected, rel=1e-6)
