"""Parquet files of the store: atomic writes, reads that survive concurrent compaction, quarantine.

Layout under ``<results>/store/``::

    runs/<written_ns>-<pid>-<rand>.parquet        one file per write_run call
    metrics/<written_ns>-<pid>-<rand>.parquet     one file per write_metrics call
    compacted/<table>/<written_ns>-<pid>-<rand>.parquet   many writes merged (see compact.py)
    quarantine/<table>/...                         files that could not be read, moved aside

A file appears under its final name only through ``os.replace`` of a finished temporary file
(``.<name>.tmp``, ignored by readers), so concurrent writers never collide and a crash never
leaves half a file. The file name is the write id; it starts with the write time, so the
latest write of a run is the one with the largest name time.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from harness.store.schema import STORE_VERSION, NewerSchema, file_schema, full_schema, migrate

SUFFIX = ".parquet"
# Small files: no compression, dictionaries or statistics — they are read once and merged.
SMALL_WRITE = {"compression": "none", "write_statistics": False, "use_dictionary": False, "store_schema": False}
BIG_WRITE = {"compression": "zstd", "write_statistics": False}


WRITE_ID, WRITTEN = "write_id", "written_ns"


class CorruptFileWarning(UserWarning):
    """A store file could not be read and was moved to quarantine/."""


class Vanished(Exception):
    """A listed file disappeared before it was read: a compaction merged it. Re-list and retry."""


def new_write_id() -> str:
    return f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}"


def written_ns(write_id: str) -> int:
    return int(write_id.split("-", 1)[0])


def atomic_write(table: pa.Table, folder: Path, write_id: str, options: dict[str, object]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{write_id}{SUFFIX}"
    tmp = folder / f".{write_id}.tmp"
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **options)  # type: ignore[arg-type]
    # Serialise in memory, then one plain write: pyarrow's file-system layer costs more than
    # the encoding itself for a one-row file.
    try:
        with open(tmp, "wb") as handle:
            handle.write(sink.getvalue().to_pybytes())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final


def list_parquet(folder: Path) -> list[Path]:
    """Finished files of a folder, oldest write first (temporary files are not listed)."""
    try:
        entries = [e for e in os.scandir(folder) if e.name.endswith(SUFFIX) and not e.name.startswith(".")]
    except FileNotFoundError:
        return []
    return [Path(e.path) for e in sorted(entries, key=lambda e: e.name)]


def quarantine(path: Path, store_root: Path, table: str, reason: str) -> None:
    target_dir = store_root / "quarantine" / table
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), target_dir / path.name)
    except FileNotFoundError:
        return  # another reader moved it first
    except OSError as exc:  # a read-only store: skip the file, say so, and carry on
        warnings.warn(f"results store: unreadable file {path} skipped ({reason}); could not move it: {exc}",
                      CorruptFileWarning, stacklevel=3)
        return
    warnings.warn(f"results store: unreadable file {path} moved to {target_dir}/ ({reason})",
                  CorruptFileWarning, stacklevel=3)


def _parquet(path: Path) -> pq.ParquetFile:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise Vanished(str(path)) from None
    # ParquetFile on an in-memory buffer skips the dataset machinery: ~3× faster than
    # pq.read_table for a one-write file.
    return pq.ParquetFile(pa.BufferReader(data))


def _without(schema: pa.Schema, drop: frozenset[str]) -> pa.Schema:
    return pa.schema([f for f in schema if f.name not in drop]) if drop else schema


def _conform(table: pa.Table, schema: pa.Schema, *, one_write: bool = False) -> pa.Table:
    """Migrate to the current version and order/cast columns exactly as ``schema``."""
    if table.num_rows == 0:
        return schema.empty_table()
    column = table.column("schema_version")
    # One write is one version: its first row says it (cheaper than unique() on every file).
    versions = [column[0].as_py()] if one_write else column.unique().to_pylist()
    if versions == [STORE_VERSION] and table.schema.equals(schema):
        return table  # the common case: written by this harness
    if len(versions) != 1:
        parts = [table.filter(pc.equal(column, v)) for v in versions]
        return pa.concat_tables([_conform(p, schema) for p in parts])
    table = migrate(table, int(versions[0]))
    # A column the file's version did not have yet (and no migration step derives) is null.
    for name in schema.names:
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, schema.field(name).type))
    return table.select(schema.names).cast(schema)


@dataclass
class ReadResult:
    table: pa.Table
    small_files: list[Path]
    compacted_files: list[Path]


def read_small(path: Path, table_name: str, drop: frozenset[str] = frozenset()) -> pa.Table:
    """One write's file with its write id and time added as columns (minus ``drop``)."""
    # A tiny file read on one thread skips the thread pool: another ~2× faster.
    table = _conform(_parquet(path).read(use_threads=False), file_schema(table_name), one_write=True)
    if drop:
        table = table.drop_columns([name for name in table.column_names if name in drop])
    write_id = path.name[: -len(SUFFIX)]
    n = table.num_rows
    table = table.append_column(WRITE_ID, pa.array([write_id] * n, pa.string()))
    return table.append_column(WRITTEN, pa.array([written_ns(write_id)] * n, pa.int64()))


def read_compacted(path: Path, table_name: str, drop: frozenset[str] = frozenset()) -> pa.Table:
    """A compacted file; columns in ``drop`` (e.g. the bulky spec JSON) are not even decoded."""
    parquet = _parquet(path)
    names = [name for name in parquet.schema_arrow.names if name not in drop]
    table = parquet.read(columns=names)
    if table.num_rows and set(table.column("schema_version").unique().to_pylist()) != {STORE_VERSION}:
        # An older version: its migration steps may need every column.
        table = _conform(parquet.read(), full_schema(table_name))
        return table.drop_columns([name for name in table.column_names if name in drop])
    return _conform(table, _without(full_schema(table_name), drop))


def _read_or_quarantine(path: Path, store_root: Path, table_name: str, compacted: bool,
                        drop: frozenset[str]) -> pa.Table | None:
    try:
        return read_compacted(path, table_name, drop) if compacted else read_small(path, table_name, drop)
    except Vanished:
        raise
    except NewerSchema as exc:
        warnings.warn(f"results store: skipping {path}: {exc}", UserWarning, stacklevel=3)
        return None
    except Exception as exc:  # noqa: BLE001 - any unreadable file is moved aside, never fatal
        quarantine(path, store_root, table_name, f"{type(exc).__name__}: {exc}")
        return None


def read_table_files(store_root: Path, table_name: str, drop: frozenset[str] = frozenset()) -> ReadResult:
    """Every row of one table, each write exactly once, even while a compaction runs."""
    for _attempt in range(20):
        # Small files before compacted ones: a compaction renames its output into place before it
        # deletes its inputs, so every write is in one of the two listings (or we see it vanish).
        small = list_parquet(store_root / table_name)
        compacted = list_parquet(store_root / "compacted" / table_name)
        try:
            table = read_files(store_root, table_name, compacted, small, drop)
        except Vanished:
            continue  # merged by a compaction between our listing and our read: list again
        return ReadResult(table, small, compacted)
    raise RuntimeError(f"results store {store_root}: files kept vanishing while reading {table_name}")


def read_files(store_root: Path, table_name: str, compacted: list[Path], small: list[Path],
               drop: frozenset[str] = frozenset()) -> pa.Table:
    parts: list[pa.Table] = []
    seen: set[str] = set()
    # Newest compacted first; a write merged into several compacted files (two compactions at
    # once, or a crash before the inputs were deleted) is kept from the first one only.
    for path in reversed(compacted):
        table = _read_or_quarantine(path, store_root, table_name, True, drop)
        if table is None or table.num_rows == 0:
            continue
        ids = set(table.column(WRITE_ID).unique().to_pylist())
        repeated = ids & seen
        if repeated:
            table = table.filter(pc.invert(pc.is_in(table[WRITE_ID], pa.array(list(repeated)))))
        seen |= ids
        parts.append(table)
    for path in small:
        if path.name[: -len(SUFFIX)] in seen:
            continue
        table = _read_or_quarantine(path, store_root, table_name, False, drop)
        if table is not None:
            parts.append(table)
    if not parts:
        return _without(full_schema(table_name), drop).empty_table()
    return pa.concat_tables(parts)
