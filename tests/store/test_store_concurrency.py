"""16 processes writing to one store at once (with compactions racing): every row, once, intact."""

from __future__ import annotations

import multiprocessing as mp
import warnings
from pathlib import Path

import pytest

from harness.store import Store
from harness.store.files import list_parquet

WRITERS = 16
RUNS_EACH = 8
METRICS_EACH = 5


def _writer(root: str, index: int, start: mp.Event) -> None:  # type: ignore[valid-type]
    start.wait()  # all processes begin together
    # A tiny compaction threshold makes compactions run (and race) while others write.
    store = Store(root, compact_at=6, max_compacted=3)
    for k in range(RUNS_EACH):
        run_id = f"w{index:02d}-r{k:02d}"
        store.write_run({"run_id": run_id, "grid": "g", "status": "running", "f_writer": str(index)})
        store.write_metrics(run_id, [{"split": "test", "metric": f"m{j}", "value": index * 1000 + k * 10 + j,
                                      "step": j} for j in range(METRICS_EACH)])
        store.write_run({"run_id": run_id, "grid": "g", "status": "done", "f_writer": str(index)})
        if k % 4 == 0:
            store.runs()  # readers run during compactions too


@pytest.mark.slow
def test_sixteen_processes_write_at_once(tmp_path: Path) -> None:
    # Not fork: forking a process whose Arrow thread pools already run can deadlock. A fork
    # server that imported the store once starts 16 clean processes quickly.
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["harness.store.store", "pandas", "pyarrow.parquet"])
    start = ctx.Event()
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), i, start)) for i in range(WRITERS)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * WRITERS

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a corrupt file would warn (and be quarantined): fail instead
        store = Store(tmp_path, compact_at=0)
        runs, metrics = store.runs(), store.metrics()
    expected_runs = {f"w{i:02d}-r{k:02d}" for i in range(WRITERS) for k in range(RUNS_EACH)}
    assert set(runs["run_id"]) == expected_runs and len(runs) == len(expected_runs)
    assert set(runs["status"]) == {"done"}  # the later of each run's two rows wins
    assert len(metrics) == len(expected_runs) * METRICS_EACH
    assert not metrics.duplicated(["run_id", "metric"]).any()
    by_key = metrics.set_index(["run_id", "metric"])["value"]
    assert by_key[("w07-r03", "m4")] == 7000 + 30 + 4
    assert not (tmp_path / "store" / "quarantine").exists()
    assert list_parquet(tmp_path / "store" / "compacted" / "metrics"), "compaction never ran"
    leftovers = [p for p in (tmp_path / "store").rglob("*.tmp")]
    assert leftovers == []
