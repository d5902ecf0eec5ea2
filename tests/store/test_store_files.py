"""Corrupt files go to quarantine; half-written files are invisible; compaction loses nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.store import CorruptFileWarning, Store
from harness.store.files import list_parquet


def _fill(store: Store, n: int) -> None:
    for i in range(n):
        store.write_run({"run_id": f"r{i}", "status": "done", "f_x": str(i % 3)})
        store.write_metrics(f"r{i}", [{"split": "test", "metric": "acc", "value": i / 10}])


def test_corrupt_files_are_moved_aside_with_a_warning(tmp_path: Path) -> None:
    store = Store(tmp_path)
    _fill(store, 3)
    (tmp_path / "store" / "runs" / "00000000000000000009-1-bad.parquet").write_bytes(b"not parquet at all")
    good = list_parquet(tmp_path / "store" / "metrics")[0]
    truncated = good.with_name("00000000000000000009-1-cut.parquet")
    truncated.write_bytes(good.read_bytes()[:-20])
    with pytest.warns(CorruptFileWarning, match="moved to .*quarantine"):
        runs = store.runs()
    with pytest.warns(CorruptFileWarning):
        metrics = store.metrics()
    assert sorted(runs["run_id"]) == ["r0", "r1", "r2"] and len(metrics) == 3
    quarantined = sorted(p.name for p in (tmp_path / "store" / "quarantine").rglob("*.parquet"))
    assert quarantined == ["00000000000000000009-1-bad.parquet", "00000000000000000009-1-cut.parquet"]
    assert len(store.runs()) == 3  # second read: no warning source left


def test_temporary_files_of_unfinished_writes_are_ignored(tmp_path: Path) -> None:
    store = Store(tmp_path)
    _fill(store, 1)
    (tmp_path / "store" / "runs" / ".00000000000000000009-1-x.tmp").write_bytes(b"half a fi")
    assert list(store.runs()["run_id"]) == ["r0"]


def test_compaction_keeps_every_write_once(tmp_path: Path) -> None:
    store = Store(tmp_path, compact_at=0)
    _fill(store, 10)
    before_runs, before_metrics = store.runs(), store.metrics()
    assert store.compact() == {"runs": True, "metrics": True}
    assert list_parquet(tmp_path / "store" / "runs") == []
    assert len(list_parquet(tmp_path / "store" / "compacted" / "runs")) == 1
    assert store.runs().equals(before_runs) and store.metrics().equals(before_metrics)


def test_a_crash_between_rename_and_delete_duplicates_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path, compact_at=0)
    _fill(store, 4)
    kept = tmp_path / "kept"
    shutil.copytree(tmp_path / "store" / "metrics", kept)
    store.compact(merge_all=False)
    # Put the merged small files back, as if the compactor died before deleting them; and a
    # second compaction of the same files (two compactors at once) into another compacted file.
    for path in kept.iterdir():
        shutil.copy(path, tmp_path / "store" / "metrics" / path.name)
    assert len(store.metrics()) == 4
    store.compact(merge_all=False)
    assert len(list_parquet(tmp_path / "store" / "compacted" / "metrics")) == 2
    assert len(store.metrics()) == 4
    store.compact(merge_all=True)
    assert len(list_parquet(tmp_path / "store" / "compacted" / "metrics")) == 1
    assert sorted(store.metrics()["value"]) == [0.0, 0.1, 0.2, 0.3]


def test_writes_compact_automatically_past_the_threshold(tmp_path: Path) -> None:
    store = Store(tmp_path, compact_at=5, max_compacted=2)
    _fill(store, 23)
    assert len(list_parquet(tmp_path / "store" / "runs")) < 5
    assert len(list_parquet(tmp_path / "store" / "compacted" / "runs")) <= 3
    assert sorted(store.runs()["run_id"]) == sorted(f"r{i}" for i in range(23))
    assert len(store.metrics()) == 23


def test_runs_without_spec_skip_the_json_in_small_and_compacted_files(tmp_path: Path) -> None:
    store = Store(tmp_path, compact_at=0)
    store.write_run({"run_id": "a", "status": "done", "spec": {"big": "x" * 1000}})
    store.compact()
    store.write_run({"run_id": "b", "status": "running", "spec": {"big": "y"}})
    lean, full = store.runs(with_spec=False), store.runs()
    assert "spec" not in lean.columns and list(lean["run_id"]) == ["a", "b"]
    assert full.drop(columns=["spec"]).equals(lean) and full.loc[0, "spec"] == '{"big": "' + "x" * 1000 + '"}'
    assert store.status() == {"a": "done", "b": "running"}
