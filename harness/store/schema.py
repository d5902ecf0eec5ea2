"""Column layout of the results store, row validation, and schema migrations.

Two tables: ``runs`` (one row per run and write; the latest row per run id wins) and
``metrics`` (long format). Every file carries a ``schema_version`` column; files written by
an older harness are brought to ``STORE_VERSION`` by ``migrate`` one version step at a time.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyarrow as pa

STORE_VERSION = 2
# "pruned": a search trial stopped early by Optuna (harness.search).
# "stale": a finished run whose files `harness run` moved aside to train it afresh (other generated inputs).
STATUSES = ("running", "done", "failed", "cancelled", "pruned", "stale")

_TS = pa.timestamp("us", tz="UTC")

# Columns a caller writes. Factors and package versions travel as JSON so that every file of a
# table has one schema (cheap to concatenate); ``Store.runs`` expands factors into f_<name> columns.
RUN_FIELDS: dict[str, pa.DataType] = {
    "run_id": pa.string(),
    "grid": pa.string(),
    "stage": pa.string(),
    "task": pa.string(),
    "seed": pa.int64(),
    "depends_on": pa.string(),
    "factors": pa.string(),
    "spec": pa.string(),
    "status": pa.string(),
    "start_time": _TS,
    "end_time": _TS,
    "wall_s": pa.float64(),
    "device_hours": pa.float64(),
    "throughput": pa.float64(),  # samples per second
    "peak_mem_gb": pa.float64(),
    "git_commit": pa.string(),
    "git_dirty": pa.bool_(),
    "versions": pa.string(),
    "host": pa.string(),
    "executor": pa.string(),
    "slurm_job_id": pa.string(),
    "requeues": pa.int64(),
    # Where this attempt resumed from (None: it started at step 0); added in store version 2.
    "resumed_from_step": pa.int64(),
    "resumed_from": pa.string(),  # the checkpoint folder it restored
    "error": pa.string(),
}
METRIC_FIELDS: dict[str, pa.DataType] = {
    "run_id": pa.string(),
    "stage": pa.string(),
    "task": pa.string(),
    "split": pa.string(),
    "metric": pa.string(),
    "value": pa.float64(),
    "step": pa.int64(),
}
TABLES: dict[str, dict[str, pa.DataType]] = {"runs": RUN_FIELDS, "metrics": METRIC_FIELDS}

# What a small (one-write) file holds: the version plus the caller's columns. The write id and
# time come from its file name; compacted files store them as columns.
VERSION_FIELD = pa.field("schema_version", pa.int16())
WRITE_FIELDS = [pa.field("write_id", pa.string()), pa.field("written_ns", pa.int64())]


@functools.cache
def file_schema(table: str) -> pa.Schema:
    return pa.schema([VERSION_FIELD, *(pa.field(k, t) for k, t in TABLES[table].items())])


@functools.cache
def full_schema(table: str) -> pa.Schema:
    """A file's columns plus the write id and time: what compacted files and readers hold."""
    return pa.schema([*file_schema(table), *WRITE_FIELDS])


# Migration steps: MIGRATIONS[v] turns a table at version v into one at version v + 1. Add one
# function per version bump (rename/derive columns there), never edit old steps.
MigrationStep = Callable[[pa.Table], pa.Table]


def _v1_to_v2(table: pa.Table) -> pa.Table:
    """v2 added the runs columns ``resumed_from_step`` and ``resumed_from``. A version-1 row does not
    say whether its run resumed, so both stay null (``_conform`` adds missing columns as nulls)."""
    return table


MIGRATIONS: dict[int, MigrationStep] = {1: _v1_to_v2}


class NewerSchema(ValueError):
    """A file written by a newer harness: skipped, not quarantined (it is not corrupt)."""


def migrate(table: pa.Table, version: int, *, steps: Mapping[int, MigrationStep] | None = None) -> pa.Table:
    """Bring ``table`` (all rows at ``version``) to ``STORE_VERSION`` through each step in turn."""
    steps = MIGRATIONS if steps is None else steps
    if version > STORE_VERSION:
        raise NewerSchema(f"store schema version {version} is newer than this harness's {STORE_VERSION}; upgrade")
    while version < STORE_VERSION:
        if version not in steps:
            raise ValueError(f"no migration from store schema version {version} to {version + 1}")
        table = steps[version](table)
        version += 1
    n = table.num_rows
    return table.set_column(0, VERSION_FIELD, pa.array([STORE_VERSION] * n, pa.int16()))


class RowError(ValueError):
    """A row given to the store has an unknown key or a value of the wrong kind."""


def _unknown_key(key: str, known: Sequence[str], what: str) -> RowError:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(known)}"
    return RowError(f"{what}: unknown key '{key}'{hint}")


def _as_time(value: Any, key: str) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(float(value), tz=dt.timezone.utc)
    if isinstance(value, str):
        return _as_time(dt.datetime.fromisoformat(value), key)
    raise RowError(f"runs row: '{key}' must be a datetime, epoch seconds or ISO string, got {value!r}")


def _as_json(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if hasattr(value, "model_dump_json"):  # pydantic specs
        return str(value.model_dump_json())
    return json.dumps(value, sort_keys=True, default=str)


def _from_job(row: dict[str, Any]) -> dict[str, Any]:
    """``spec`` may be a JobSpec: it fills the identity columns the caller left out."""
    job: Any = row.get("spec")  # a JobSpec or its JSON (store is below spec: read by attribute)
    if not hasattr(job, "run_id") or not hasattr(job, "factors"):
        return row
    filled = {"run_id": job.run_id, "grid": job.grid, "stage": job.stage, "task": job.task,
              "seed": job.seed, "depends_on": job.depends_on, "factors": dict(job.factors)}
    return {**filled, **row}


def normalise_run(row: Mapping[str, Any]) -> dict[str, list[Any]]:
    """One runs row → a column dict for ``pa.Table.from_pydict``; clear errors for bad input."""
    row = _from_job(dict(row))
    if "spec_json" in row:  # the trainer's name for the spec as JSON text (harness.train.record)
        row["spec"] = row.pop("spec_json")
    factors = dict(row.pop("factors", None) or {})
    for key in [k for k in row if k.startswith("f_")]:
        factors[key[2:]] = row.pop(key)
    for key in row:
        if key not in RUN_FIELDS:
            raise _unknown_key(key, list(RUN_FIELDS), "runs row")
    for key in ("run_id", "status"):
        if not row.get(key):
            raise RowError(f"runs row: '{key}' is required")
    if row["status"] not in STATUSES:
        raise RowError(f"runs row {row['run_id']}: status '{row['status']}' is not one of {', '.join(STATUSES)}")
    row["factors"] = json.dumps({str(k): str(v) for k, v in factors.items()}, sort_keys=True)
    for key in ("spec", "versions"):
        row[key] = _as_json(row.get(key))
    for key in ("start_time", "end_time"):
        row[key] = _as_time(row.get(key), key)
    if row.get("slurm_job_id") is not None:
        row["slurm_job_id"] = str(row["slurm_job_id"])
    columns: dict[str, list[Any]] = {"schema_version": [STORE_VERSION]}
    columns.update({key: [row.get(key)] for key in RUN_FIELDS})
    return columns


_METRIC_KEYS = ("stage", "task", "split", "metric", "value", "step")


def normalise_metrics(run_id: str, rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Metric rows of one run → a column dict; each needs split, metric and a numeric value."""
    if not run_id:
        raise RowError("metrics: run_id is required")
    columns: dict[str, list[Any]] = {key: [] for key in ("schema_version", *METRIC_FIELDS)}
    for i, row in enumerate(rows):
        for key in row:
            if key not in _METRIC_KEYS:
                raise _unknown_key(key, list(_METRIC_KEYS), f"metrics row {i} of run {run_id}")
        for key in ("split", "metric"):
            if not row.get(key):
                raise RowError(f"metrics row {i} of run {run_id}: '{key}' is required")
        value: Any = row.get("value")  # checked to be a number just below
        if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
            raise RowError(f"metrics row {i} of run {run_id}: 'value' must be a number, got {value!r}")
        step = row.get("step")
        columns["schema_version"].append(STORE_VERSION)
        columns["run_id"].append(run_id)
        for key in ("stage", "task", "split", "metric"):
            columns[key].append(row.get(key))
        columns["value"].append(float(value))
        columns["step"].append(None if step is None or (isinstance(step, float) and math.isnan(step)) else int(step))
    return columns
