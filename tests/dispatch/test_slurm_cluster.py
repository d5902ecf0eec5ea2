"""The SLURM executor on a live cluster with quick fake jobs: arrays, afterok, cancel, 2-task GPU jobs.

Skipped (reported) when no cluster answers; CI starts one with slurm/start-local-cluster.sh --fake-gpus 2.
Waits are generous: the one-node cluster (2 CPUs) is shared by anyone running SLURM tests at the time.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from slurm_fakes import (  # noqa: F401 - cancel_leftovers is a fixture
    cancel_leftovers,
    gloo_job,
    needs_cluster,
    quick_job,
    read_journal,
    store_statuses,
    wait_until,
    write_grid,
)

from harness.dispatch.cluster import ClusterError, ClusterProfile
from harness.dispatch.slurm import SlurmExecutor, queue_states, read_records
from harness.paths import run_dir

pytestmark = [pytest.mark.slurm, needs_cluster, pytest.mark.usefixtures("cancel_leftovers")]

# A profile for the one-node test cluster that leaves GPUs to the job (local.yaml forces 0).
TEST_PROFILE = ClusterProfile(partition="debug", cpus_per_task=1, mem_gb=1, time_min=5, array_parallelism=2,
                              requeues=1, signal_delay_s=30, source="test-profile")


def submit_grid(tmp_path: Path, job_fn, levels: str = "bert, roberta", **grid):  # type: ignore[no-untyped-def]
    from harness.dispatch.order import write_specs
    from harness.spec.compile import compile_grid

    jobs = compile_grid(write_grid(tmp_path, levels=levels, **grid)).jobs
    results = tmp_path / "results"
    write_specs(jobs, results)
    events: list = []  # type: ignore[type-arg]
    SlurmExecutor(TEST_PROFILE, job_fn).submit(jobs, results, on_progress=events.append)
    return jobs, results, events


@pytest.mark.slow
def test_grid_queues_in_one_call_and_finetuning_waits_for_pretraining(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_SLEEP_S", "1")
    jobs, results, events = submit_grid(tmp_path, quick_job)
    assert [e.state for e in events] == ["queued"] * 4
    records = read_records(results, "slurmgrid")
    assert [(r["stage"], r["size"]) for r in records] == [("pretrain", 2), ("finetune", 2)]
    assert records[1]["dependency"] == f"afterok:{records[0]['slurm_id']}"
    wait_until(lambda: store_statuses(results) == {j.run_id: "done" for j in jobs}, 300, "all four jobs done")
    when = {(e["what"], e["run_id"]): e["t"] for e in read_journal(results)}
    last_pretrain_end = max(when[("end", j.run_id)] for j in jobs if j.stage == "pretrain")
    for job in jobs:
        if job.stage == "finetune":
            assert when[("start", job.run_id)] > last_pretrain_end
    # `harness logs` finds each task's SLURM output through the run folder
    finetune = next(j for j in jobs if j.stage == "finetune")
    outs = list((run_dir(results, finetune.run_id) / "slurm").glob("*_log.out"))
    assert outs and "slurm job" in outs[0].read_text()


@pytest.mark.slow
def test_cancel_stops_running_and_queued_jobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_SLEEP_S", "120")
    jobs, results, _ = submit_grid(tmp_path, quick_job)
    wait_until(lambda: any(e["what"] == "start" for e in read_journal(results)), 300, "a pre-training job to start")
    assert set(queue_states(results, "slurmgrid").values()) <= {"queued", "running"}
    cancelled = SlurmExecutor(TEST_PROFILE).cancel(jobs, results)
    assert sorted(cancelled) == sorted(j.run_id for j in jobs)
    assert store_statuses(results) == {j.run_id: "cancelled" for j in jobs}
    wait_until(lambda: not queue_states(results, "slurmgrid"), 30, "the queue to drop the grid's jobs")
    assert SlurmExecutor(TEST_PROFILE).cancel(jobs, results) == []  # nothing left to cancel


@pytest.mark.slow
def test_failed_pretraining_cancels_the_array_waiting_on_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.dispatch.state import job_states

    monkeypatch.setenv("FAKE_SLEEP_S", "0.2")
    monkeypatch.setenv("FAKE_CRASH", "pretrain:roberta")
    jobs, results, _ = submit_grid(tmp_path, quick_job)
    expected = {("pretrain", "bert"): "done", ("pretrain", "roberta"): "failed",
                # one afterok per array: both fine-tuning jobs were waiting on the failed task's array
                ("finetune", "bert"): "cancelled", ("finetune", "roberta"): "cancelled"}

    def by_level() -> dict:  # type: ignore[type-arg]
        states = job_states(jobs, results)
        return {(j.stage, j.factors["model.text"]): states[j.run_id] for j in jobs}

    wait_until(lambda: {k: v.state for k, v in by_level().items()} == expected, 300, f"states {expected}")
    final = by_level()
    assert "fake crash" in final[("pretrain", "roberta")].note
    assert all("harness retry" in final[("finetune", level)].note for level in ("bert", "roberta"))
    wait_until(lambda: not queue_states(results, "slurmgrid"), 30, "the queue to drop the grid's jobs")


def test_live_cluster_refuses_bad_requests_before_submitting(tmp_path: Path) -> None:
    from harness.spec.compile import compile_grid

    jobs = compile_grid(write_grid(tmp_path)).jobs
    for profile, message in [
        (ClusterProfile(partition="debg", source="p.yaml"), "unknown partition 'debg'; did you mean 'debug'?"),
        (ClusterProfile(partition="short", time_min=600, source="p.yaml"), "above the MaxTime of partition 'short'"),
        (ClusterProfile(account="nosuch", source="p.yaml"), "unknown account 'nosuch'"),
        (ClusterProfile(gpus_per_node=64, source="p.yaml"), "GPUs per node"),
    ]:
        with pytest.raises(ClusterError, match=message):
            SlurmExecutor(profile, quick_job).submit(jobs, tmp_path / "results")
    assert not (tmp_path / "results").exists()


def _node_gpus() -> int:
    from harness.dispatch.clusterinfo import ClusterInfo

    part = ClusterInfo.query().default_partition()
    return part.gpus_per_node if part else 0


@pytest.mark.slow
def test_gpu_shaped_job_runs_one_task_per_gpu_in_one_process_group(tmp_path: Path) -> None:
    if _node_gpus() < 2:
        pytest.skip("the cluster's node has no 2 GPUs; start it with slurm/start-local-cluster.sh --fake-gpus 2")
    from harness.dispatch.order import write_specs
    from harness.spec.compile import compile_grid

    path = write_grid(tmp_path, levels="bert")
    path.write_text(path.read_text().replace("resources: {threads: 1", "resources: {gpus_per_node: 2, threads: 1"))
    job = next(j for j in compile_grid(path).jobs if j.stage == "pretrain")
    results = tmp_path / "results"
    write_specs([job], results)
    SlurmExecutor(TEST_PROFILE, gloo_job).submit([job], results)
    folder = run_dir(results, job.run_id)
    wait_until(lambda: len(list(folder.glob("rank*.json"))) == 2, 300, "both ranks to report")
    ranks = [json.loads((folder / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [(r["rank"], r["world"], r["sum"]) for r in ranks] == [(0, 2, 3.0), (1, 2, 3.0)]
    assert [r["cuda_visible"] for r in ranks] == ["0", "1"]  # one (fake) GPU per task
    sid = read_records(results, job.grid)[0]["jobs"][job.run_id]
    sbatch = subprocess.run(["scontrol", "show", "job", sid], capture_output=True, text=True).stdout
    assert "NumTasks=2" in sbatch or "gres/gpu=2" in sbatch or "gpu:2" in sbatch
