"""Store API round trip: rows in, DataFrames out; clear errors for bad rows; schema migration."""

from __future__ import annotations

import datetime as dt
import warnings

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.spec.schema import ExperimentSpec, FinetuneSpec, JobSpec
from harness.store import RowError, Store
from harness.store import schema as store_schema
from harness.store.files import list_parquet


def _job(seed: int = 0) -> JobSpec:
    exp = ExperimentSpec(finetune={"vqa": FinetuneSpec(steps=5)})
    return JobSpec.model_construct(run_id=f"run{seed}", grid="g", stage="finetune", task="vqa", seed=seed,
                                   factors={"model.text": "bert", "optim.lr": "1e-5"}, depends_on="pre0",
                                   experiment=exp)


def test_round_trip_latest_row_per_run(tmp_path) -> None:
    store = Store(tmp_path)
    job = _job()
    store.write_run({"spec": job, "status": "running", "start_time": 1_700_000_000.0, "host": "h1"})
    store.write_run({"spec": job, "status": "done", "start_time": 1_700_000_000.0, "end_time": "2023-11-14T22:15:00",
                     "wall_s": 12.5, "device_hours": 0.1, "throughput": 33.0, "peak_mem_gb": 1.5,
                     "git_commit": "abc", "git_dirty": True, "versions": {"torch": "2"}, "host": "h1",
                     "executor": "slurm", "slurm_job_id": 123, "requeues": 1})
    store.write_run({"run_id": "other", "grid": "g2", "status": "failed", "error": "boom", "f_model.text": "roberta"})
    runs = store.runs()
    assert sorted(runs["run_id"]) == ["other", "run0"]
    row = runs.set_index("run_id").loc["run0"]
    assert row["status"] == "done" and row["grid"] == "g" and row["task"] == "vqa" and row["seed"] == 0
    assert row["f_model.text"] == "bert" and row["f_optim.lr"] == "1e-5" and row["depends_on"] == "pre0"
    assert row["slurm_job_id"] == "123" and bool(row["git_dirty"]) and row["requeues"] == 1
    assert row["start_time"] == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.timezone.utc)
    assert row["end_time"] == dt.datetime(2023, 11, 14, 22, 15, tzinfo=dt.timezone.utc)
    assert '"run_id":"run0"' in row["spec"] and row["schema_version"] == store_schema.STORE_VERSION
    assert list(store.runs(grid="g2")["run_id"]) == ["other"]
    assert store.runs(grid="g2").loc[0, "f_model.text"] == "roberta"
    assert store.status() == {"run0": "done", "other": "failed"}


def test_metrics_round_trip_and_retry_replaces_values(tmp_path) -> None:
    store = Store(tmp_path)
    store.write_metrics("a", [{"stage": "finetune", "task": "vqa", "split": "test", "metric": "vqa_score",
                               "value": 0.5, "step": 10},
                              {"stage": "finetune", "task": "vqa", "split": "train", "metric": "loss", "value": 2.0,
                               "step": 1}])
    store.write_metrics("b", [{"split": "test", "metric": "accuracy", "value": 1}])
    assert store.write_metrics("b", []) is None
    frame = store.metrics()
    assert len(frame) == 3 and frame["step"].isna().sum() == 1
    assert list(store.metrics(run_ids=["b"])["value"]) == [1.0]
    # A retried run writes the same key again: only the newer value remains; other keys stay.
    store.write_metrics("a", [{"stage": "finetune", "task": "vqa", "split": "test", "metric": "vqa_score",
                               "value": 0.7, "step": 10}])
    a = store.metrics(run_ids=["a"]).set_index("metric")
    assert a.loc["vqa_score", "value"] == 0.7 and a.loc["loss", "value"] == 2.0


def test_empty_store_gives_empty_frames(tmp_path) -> None:
    store = Store(tmp_path / "nowhere")
    assert store.runs().empty and store.metrics().empty and store.status() == {}
    assert "run_id" in store.runs().columns and "value" in store.metrics().columns


@pytest.mark.parametrize(("row", "message"), [
    ({"run_id": "a", "status": "done", "wal_s": 1.0}, "unknown key 'wal_s'; did you mean 'wall_s'?"),
    ({"run_id": "a", "status": "finished"}, "status 'finished' is not one of running, done"),
    ({"status": "done"}, "'run_id' is required"),
    ({"run_id": "a", "status": "done", "start_time": [1]}, "'start_time' must be a datetime"),
])
def test_bad_runs_rows_are_refused_clearly(tmp_path, row, message) -> None:
    with pytest.raises(RowError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        Store(tmp_path).write_run(row)
    assert list_parquet(tmp_path / "store" / "runs") == []


def test_bad_metric_rows_are_refused_clearly(tmp_path) -> None:
    store = Store(tmp_path)
    with pytest.raises(RowError, match="metrics row 1 of run a: unknown key 'metrc'; did you mean 'metric'"):
        store.write_metrics("a", [{"split": "test", "metric": "x", "value": 1.0}, {"split": "t", "metrc": "x"}])
    with pytest.raises(RowError, match="'value' must be a number"):
        store.write_metrics("a", [{"split": "test", "metric": "x", "value": "high"}])


def _write_old_file(folder, version: int, columns: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.table({"schema_version": pa.array([version], pa.int16()), **{k: [v] for k, v in columns.items()}})
    pq.write_table(table, folder / "00000000000000000001-1-old.parquet")


def test_files_of_an_older_schema_are_migrated_step_by_step(tmp_path, monkeypatch) -> None:
    # A hypothetical version 0 named the peak memory "peak_memory_mb"; the step converts it.
    def v0_to_v1(table: pa.Table) -> pa.Table:
        gb = pa.compute.divide(table["peak_memory_mb"].cast(pa.float64()), 1024.0)
        return table.drop(["peak_memory_mb"]).append_column("peak_mem_gb", gb)

    monkeypatch.setitem(store_schema.MIGRATIONS, 0, v0_to_v1)
    _write_old_file(tmp_path / "store" / "runs", 0, {"run_id": "old", "status": "done", "peak_memory_mb": 2048})
    runs = Store(tmp_path).runs()
    assert runs.loc[0, "peak_mem_gb"] == 2.0 and runs.loc[0, "schema_version"] == store_schema.STORE_VERSION
    assert runs.loc[0, "status"] == "done" and runs["grid"].isna().all()


def test_files_from_a_newer_harness_are_skipped_not_quarantined(tmp_path) -> None:
    _write_old_file(tmp_path / "store" / "runs", store_schema.STORE_VERSION + 1, {"run_id": "new", "status": "done"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert Store(tmp_path).runs().empty
    assert any("newer than this harness" in str(w.message) for w in caught)
    assert len(list_parquet(tmp_path / "store" / "runs")) == 1
