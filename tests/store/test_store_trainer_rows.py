"""The rows the trainer builds (harness.train.record) are accepted by the store as they are."""

from __future__ import annotations

from pathlib import Path

from harness.spec.schema import ExperimentSpec, FinetuneSpec, JobSpec
from harness.store import Store
from harness.train import record


def test_trainer_rows_round_trip(tmp_path: Path) -> None:
    job = JobSpec.model_construct(run_id="r1", grid="g", stage="finetune", task="vqa", seed=2,
                                  factors={"model.text": "bert"}, depends_on=None,
                                  experiment=ExperimentSpec(finetune={"vqa": FinetuneSpec(steps=3)}))
    store = Store(tmp_path)
    # The shape harness.train.job writes: spec, ISO times, git state, versions and executor info.
    info = record.executor_info()
    store.write_run({"spec": job, "start_time": record.utc_now(), "git_commit": "abc", "git_dirty": False,
                     "versions": record.versions(), "host": info["host"], "executor": info["executor"],
                     "slurm_job_id": info["slurm_job_id"], "requeues": info["requeues"], "status": "pruned",
                     "end_time": record.utc_now(), "wall_s": 1.0, "device_hours": 0.0, "throughput": 5.0,
                     "peak_mem_gb": 0.1, "error": "stopped by the pruner"})
    store.write_run(record.run_row(job, "done", wall_s=2.0))  # the older helper: spec_json, f_ keys
    row = store.runs().iloc[0]
    assert row["status"] == "done" and row["f_model.text"] == "bert" and row["seed"] == 2
    assert '"run_id": "r1"' in row["spec"]
    assert len(store.runs()) == 1
