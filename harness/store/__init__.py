"""The Parquet results store: ``Store(results_root)`` → pandas DataFrames.

Imported lazily so that ``import harness.store`` costs nothing until the store is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.store.files import CorruptFileWarning
    from harness.store.schema import STATUSES, STORE_VERSION, RowError
    from harness.store.store import Store

__all__ = ["STATUSES", "STORE_VERSION", "CorruptFileWarning", "RowError", "Store"]
_WHERE = {"Store": "store", "CorruptFileWarning": "files", "RowError": "schema", "STATUSES": "schema",
          "STORE_VERSION": "schema"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"harness.store.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'harness.store' has no attribute '{name}'")
