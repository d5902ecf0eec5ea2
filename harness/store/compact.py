"""Compaction: merge many one-write files into one file, without locks.

Reading 20,000 tiny Parquet files costs seconds; one merged file costs milliseconds. A
compaction reads the small files (and, when there are many, the earlier compacted files),
writes their rows to ``compacted/<table>/`` under a temporary name, renames it into place and
only then deletes its inputs. So at every instant each write is in a small file, a compacted
file, or both; readers keep a write once (by write id) and re-list when a file vanishes under
them. Two compactions at once are safe (both outputs hold the same writes; readers dedupe);
an advisory claim file only saves the duplicate work.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from harness.store.files import BIG_WRITE, Vanished, atomic_write, list_parquet, new_write_id, read_files

CLAIM_STALE_S = 300.0
TMP_STALE_S = 3600.0


def _claim(path: Path) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return True
        except FileExistsError:
            try:
                if time.time() - path.stat().st_mtime < CLAIM_STALE_S:
                    return False
                path.unlink()  # a compactor died holding it
            except FileNotFoundError:
                pass
    return False


def _remove_stale_tmp(folder: Path) -> None:
    """Temporary files left by writers that crashed mid-write (never renamed into place)."""
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return
    now = time.time()
    for entry in entries:
        if entry.name.startswith(".") and entry.name.endswith(".tmp"):
            try:
                if now - entry.stat().st_mtime > TMP_STALE_S:
                    os.unlink(entry.path)
            except FileNotFoundError:
                pass


def compact(store_root: Path, table_name: str, *, merge_all: bool = False) -> bool:
    """Merge the table's small files (and with ``merge_all`` its compacted files) into one.

    Returns False when another compaction holds the claim or inputs vanished under us.
    """
    compacted_dir = store_root / "compacted" / table_name
    claim = store_root / "compacted" / f".{table_name}.claim"
    if not _claim(claim):
        return False
    try:
        small = list_parquet(store_root / table_name)
        compacted = list_parquet(compacted_dir) if merge_all else []
        if not small and len(compacted) < 2:
            return False
        try:
            table = read_files(store_root, table_name, compacted, small)
        except Vanished:
            return False
        atomic_write(table, compacted_dir, new_write_id(), BIG_WRITE)
        for path in (*small, *compacted):
            path.unlink(missing_ok=True)
        _remove_stale_tmp(store_root / table_name)
        _remove_stale_tmp(compacted_dir)
        return True
    finally:
        claim.unlink(missing_ok=True)
