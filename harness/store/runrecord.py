"""Each run folder holds its own authoritative record; the store is derived data, rebuilt from it.

    <results>/runs/<run_id>/spec.json      the job (written before it runs)
    <results>/runs/<run_id>/run_row.json   the latest runs row (status, times, host, error, ...)
    <results>/runs/<run_id>/metrics.json   every metrics write of the run, in order

``record_run``/``record_metrics`` write the folder first, then the store: a crash between the
two leaves the folder ahead, and ``sync`` re-records what the store lacks (a quarantined
file, a lost row). ``rebuild`` makes a whole new store from the run folders.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.paths import run_dir, store_dir

RUN_ROW = "run_row.json"
METRICS = "metrics.json"
RECORDED = "recorded_ns"  # when the folder record was written (the store's copy is written just after)


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True, default=str))
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _row_for_folder(row: Mapping[str, Any]) -> dict[str, Any]:
    """The row without its spec object (spec.json holds it), JSON-safe."""
    out = {k: v for k, v in row.items() if k not in ("spec", "spec_json")}
    spec = row.get("spec")
    run_id = row.get("run_id") or getattr(spec, "run_id", None)
    out["run_id"] = run_id
    return out


def record_run(results: Path, row: Mapping[str, Any]) -> None:
    """Write a runs row to the run folder (authoritative), then to the store."""
    from harness.store import Store

    folder_row = _row_for_folder(row)
    folder = run_dir(Path(results), str(folder_row["run_id"]))
    folder.mkdir(parents=True, exist_ok=True)
    _write_json(folder / RUN_ROW, {**folder_row, RECORDED: time.time_ns()})
    Store(results).write_run(row)


def record_metrics(results: Path, run_id: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append a metrics write to the run folder's metrics.json, then write it to the store."""
    from harness.store import Store

    if not rows:
        return
    folder = run_dir(Path(results), run_id)
    folder.mkdir(parents=True, exist_ok=True)
    writes = _read_json(folder / METRICS)
    writes = writes if isinstance(writes, list) else []
    writes.append({"written": time.time(), "rows": [dict(r) for r in rows]})
    _write_json(folder / METRICS, writes)
    Store(results).write_metrics(run_id, rows)


def _spec_of(folder: Path) -> Any:
    from harness.spec.runs import read_spec

    try:
        return read_spec(folder)
    except Exception:  # noqa: BLE001 - an unreadable spec: the run cannot be re-recorded, say so
        return None


def _replay(store: Any, folder: Path, *, runs: bool = True, metrics: bool = True) -> bool:
    """Write a run folder's record to ``store``; False when the folder holds no usable record."""
    row = _read_json(folder / RUN_ROW)
    job = _spec_of(folder)
    if not isinstance(row, dict) or job is None or row.get("run_id") != job.run_id:
        return False
    row = {k: v for k, v in row.items() if k != RECORDED}
    if metrics:
        writes = _read_json(folder / METRICS)
        for write in writes if isinstance(writes, list) else []:
            if isinstance(write, dict) and write.get("rows"):
                store.write_metrics(job.run_id, write["rows"])
    if runs:
        store.write_run({**row, "spec": job})
    return True


def sync(results: Path, run_ids: Iterable[str], *, metrics: bool = False, echo: bool = True) -> int:
    """Re-record into the store the runs whose folder record it lacks or contradicts; how many.

    Runs rows are compared by status; with ``metrics``, a run whose folder has metrics but the
    store none (a quarantined metrics file) gets them again.
    """
    from harness.store import Store

    results = Path(results)
    ids = [rid for rid in run_ids if (run_dir(results, rid) / RUN_ROW).exists()]
    if not ids:
        return 0
    store = Store(results)
    stored = _latest_rows(store, ids)
    with_metrics = set(store.metrics(run_ids=ids)["run_id"]) if metrics else set()
    healed = 0
    for rid in ids:
        folder = run_dir(results, rid)
        row = _read_json(folder / RUN_ROW)
        if not isinstance(row, dict):
            continue
        status, written = stored.get(rid, (None, 0))
        # A store row newer than the folder's record came from a writer that keeps no folder record
        # (a test's stand-in job, an importer): the store is ahead there, not behind.
        lost_row = status != row.get("status") and written < int(row.get(RECORDED) or 0)
        lost_metrics = metrics and rid not in with_metrics and bool(_read_json(folder / METRICS))
        if (lost_row or lost_metrics) and _replay(store, folder, runs=lost_row, metrics=lost_metrics):
            healed += 1
    if healed and echo:
        print(f"note: results store: re-recorded {healed} run(s) from their run folders (a lost or quarantined "
              "store file)", file=sys.stderr)
    return healed


def _latest_rows(store: Any, ids: list[str]) -> dict[str, tuple[str, int]]:
    """run id → (status, written_ns) of its latest runs row in the store."""
    frame = store.runs(run_ids=ids, with_spec=False)
    return {rid: (status, int(ns)) for rid, status, ns in
            zip(frame["run_id"], frame["status"], frame["written_ns"], strict=True)}


def rebuild(results: Path) -> tuple[int, int]:
    """A new store from every run folder's record, swapped in whole; (runs recorded, folders skipped)."""
    from harness.store import Store

    results = Path(results)
    fresh = results / f".store.rebuild.{os.getpid()}"
    shutil.rmtree(fresh, ignore_errors=True)
    store = Store(results)
    store.root = fresh  # write the new store beside the old one; readers keep the old until the swap
    recorded = skipped = 0
    for folder in sorted((results / "runs").glob("*")) if (results / "runs").is_dir() else []:
        if not folder.is_dir():
            continue
        if _replay(store, folder):
            recorded += 1
        elif (folder / "spec.json").exists():
            skipped += 1  # never started (no row yet) or an unreadable record
    fresh.mkdir(parents=True, exist_ok=True)
    store.compact()
    old = store_dir(results)
    aside = results / f".store.old.{os.getpid()}"
    if old.exists():
        os.replace(old, aside)
    os.replace(fresh, old)
    shutil.rmtree(aside, ignore_errors=True)
    return recorded, skipped
