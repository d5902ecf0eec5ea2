"""``Store``: the Python face of the results store (pandas DataFrames in, Parquet files out).

    store = Store(results_root)
    store.write_run({"spec": job, "status": "running", "start_time": time.time()})
    store.write_metrics(job.run_id, [{"stage": "finetune", "task": "vqa", "split": "test",
                                      "metric": "vqa_score", "value": 0.61, "step": 300}])
    store.runs(grid="text_encoders")   # latest row per run id, factors as f_<name> columns
    store.metrics(run_ids=[...])       # long format
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from harness.paths import store_dir
from harness.store.compact import compact
from harness.store.files import SMALL_WRITE, atomic_write, new_write_id, read_table_files
from harness.store.schema import file_schema, normalise_metrics, normalise_run

_METRIC_KEY = ["run_id", "stage", "task", "split", "metric", "step"]
_NULLABLE = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    # Nullable ints and bools keep a missing step or seed as <NA> instead of turning ints to floats.
    return table.to_pandas(types_mapper=_NULLABLE.get)


def _count_small(folder: Path) -> int:
    try:  # listdir is a single C call; counting the odd temporary file too does no harm
        return len(os.listdir(folder))
    except FileNotFoundError:
        return 0


class Store:
    """Results store under ``<results>/store``; safe for many processes writing at once.

    ``compact_at``: merge a table's one-write files once this many exist (0: never
    automatically); ``max_compacted``: merge the compacted files too once this many exist.
    """

    def __init__(self, results_root: str | os.PathLike[str], *, compact_at: int = 64, max_compacted: int = 8):
        self.results = Path(results_root)
        self.root = store_dir(self.results)
        self.compact_at = compact_at
        self.max_compacted = max_compacted

    def __repr__(self) -> str:
        return f"Store({str(self.results)!r})"

    # ---- writing -------------------------------------------------------------------------
    def write_run(self, row: Mapping[str, Any]) -> str:
        """Write one runs row (one atomic file); returns its write id. See schema.RUN_FIELDS."""
        table = pa.Table.from_pydict(normalise_run(row), schema=file_schema("runs"))
        return self._write("runs", table)

    def write_metrics(self, run_id: str, rows: Sequence[Mapping[str, Any]]) -> str | None:
        """Write a run's metric rows (keys stage, task, split, metric, value, step) as one file."""
        if not rows:
            return None
        table = pa.Table.from_pydict(normalise_metrics(run_id, rows), schema=file_schema("metrics"))
        return self._write("metrics", table)

    def _write(self, table_name: str, table: pa.Table) -> str:
        write_id = new_write_id()
        atomic_write(table, self.root / table_name, write_id, SMALL_WRITE)
        if self.compact_at and _count_small(self.root / table_name) >= self.compact_at:
            self._compact(table_name)
        return write_id

    # ---- compaction ----------------------------------------------------------------------
    def compact(self, *, merge_all: bool = True) -> dict[str, bool]:
        """Merge small files now (and the compacted files with ``merge_all``): table → merged?"""
        return {name: compact(self.root, name, merge_all=merge_all) for name in ("runs", "metrics")}

    def _compact(self, table_name: str) -> None:
        merge_all = _count_small(self.root / "compacted" / table_name) >= self.max_compacted
        try:
            compact(self.root, table_name, merge_all=merge_all)
        except OSError as exc:  # e.g. a read-only results folder: reads still work, just slower
            warnings.warn(f"results store: compaction of {table_name} skipped: {exc}", stacklevel=3)

    def _read(self, table_name: str, drop: frozenset[str] = frozenset()) -> pa.Table:
        result = read_table_files(self.root, table_name, drop)
        if self.compact_at and (
            len(result.small_files) >= self.compact_at or len(result.compacted_files) > self.max_compacted
        ):
            self._compact(table_name)
        return result.table

    # ---- reading -------------------------------------------------------------------------
    def runs(self, grid: str | None = None, run_ids: Iterable[str] | None = None, *,
             with_spec: bool = True) -> pd.DataFrame:
        """Latest row per run id; factors as ``f_<name>`` columns; optionally one grid or some runs.

        ``with_spec=False`` leaves out the spec JSON (most of the table's bytes): status and
        reports read 10,000 runs several times faster without it.
        """
        frame = _to_pandas(self._read("runs", frozenset() if with_spec else frozenset({"spec"})))
        frame = frame.sort_values(["written_ns", "write_id"], kind="stable")
        frame = frame.drop_duplicates("run_id", keep="last")
        if grid is not None:
            frame = frame[frame["grid"] == grid]
        if run_ids is not None:
            frame = frame[frame["run_id"].isin(set(run_ids))]
        return _expand_factors(frame).reset_index(drop=True)

    def metrics(self, run_ids: Iterable[str] | None = None) -> pd.DataFrame:
        """Metric rows in long format. When a run wrote the same (stage, task, split, metric,
        step) in several writes (a retried run), only the latest write's rows are kept."""
        table = self._read("metrics")
        if run_ids is not None:
            table = table.filter(pc.is_in(table["run_id"], value_set=pa.array(list(set(run_ids)), pa.string())))
        # Which runs wrote more than once, found in Arrow (5× cheaper than in pandas at 500k rows).
        writes = table.group_by(["run_id", "write_id"]).aggregate([]).group_by("run_id").aggregate(
            [("write_id", "count")])
        repeated = set(pc.filter(writes["run_id"], pc.greater(writes["write_id_count"], 1)).to_pylist())
        return _latest_metrics(_to_pandas(table), repeated).reset_index(drop=True)

    def status(self) -> dict[str, str]:
        """run id → "running" | "done" | "failed" | "cancelled" (latest runs row)."""
        frame = self.runs(with_spec=False)
        return dict(zip(frame["run_id"], frame["status"], strict=True))


def _expand_factors(frame: pd.DataFrame) -> pd.DataFrame:
    parsed = {text: json.loads(text) if isinstance(text, str) and text else {} for text in frame["factors"].unique()}
    names = sorted({name for factors in parsed.values() for name in factors})
    columns = {f"f_{name}": [(parsed.get(text) or {}).get(name) for text in frame["factors"]] for name in names}
    extra = pd.DataFrame(columns, index=frame.index, dtype=object)
    position = frame.columns.get_loc("factors")
    head, tail = frame.iloc[:, :position], frame.iloc[:, position + 1:]
    return pd.concat([head, extra, tail], axis=1)


def _latest_metrics(frame: pd.DataFrame, repeated: set[str]) -> pd.DataFrame:
    if not repeated:
        return frame
    many = frame["run_id"].isin(repeated)
    sub = frame[many]
    newest = sub.groupby(_METRIC_KEY, dropna=False)["written_ns"].transform("max")
    return pd.concat([frame[~many], sub[sub["written_ns"] == newest]]).sort_index()
