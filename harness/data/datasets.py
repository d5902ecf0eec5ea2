"""``DATASETS.build(name, ...)``: the task tables of a registered dataset."""

from __future__ import annotations

from typing import Any


def build_dataset(name: str, *, data: Any = None, task: str = "pretrain", split: str = "train",
                  image_size: int = 64) -> Any:
    """TaskTable for `name` (data: a DataSpec; its root for Arrow datasets)."""
    if name == "synthetic":
        from harness.data.config import SyntheticSpec
        from harness.data.sources import synthetic_tables
        from harness.data.synthetic_data import build_split

        spec = data.synthetic if data is not None else SyntheticSpec()
        return synthetic_tables(build_split(spec, split, image_size), task)
    from harness.data.arrow import arrow_table

    if data is None or not getattr(data, "root", None):
        raise ValueError(f"dataset '{name}' needs data.root (a folder of ViLT/METER Arrow files)")
    return arrow_table(data, name, task, split)
