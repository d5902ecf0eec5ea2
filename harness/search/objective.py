"""Reading a trial's score: from the trainer's intermediate evaluations and from the store."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def metric_from_eval(metrics: Any, split: str, metric: str, task: str | None) -> float | None:
    """The objective's value in one ``on_eval(step, metrics)`` call, or None when it is absent.

    Accepts the shapes a trainer may reasonably pass: ``{"val/vqa_score": x}``,
    ``{"vqa/val/vqa_score": x}``, ``{"val": {"vqa_score": x}}``, a list of store-style rows
    ``[{"split", "metric", "value", ...}]`` and, for a single evaluated split, ``{"vqa_score": x}``.
    """
    if isinstance(metrics, Mapping):
        for key in (f"{split}/{metric}", f"{task}/{split}/{metric}", f"{split}_{metric}", f"{split}.{metric}"):
            if key in metrics:
                return _number(metrics[key])
        nested = metrics.get(split)
        if isinstance(nested, Mapping) and metric in nested:
            return _number(nested[metric])
        return _number(metrics.get(metric))
    if isinstance(metrics, Sequence) and not isinstance(metrics, str):
        for row in reversed(list(metrics)):
            if isinstance(row, Mapping) and row.get("metric") == metric and row.get("split", split) == split:
                return _number(row.get("value"))
    return None


def read_objective(results: Path, run_id: str, task: str, split: str, metric: str) -> float | None:
    """The last stored value (highest step) of ``task``/``split``/``metric`` for ``run_id``."""
    from harness.store import Store

    frame = Store(results).metrics(run_ids=[run_id])
    if frame is None or len(frame) == 0:
        return None
    rows = frame[(frame["split"] == split) & (frame["metric"] == metric)]
    rows = rows[rows["stage"] == "pretrain"] if task == "pretrain" else rows[rows["task"] == task]
    if "run_id" in rows.columns:
        rows = rows[rows["run_id"] == run_id]
    if len(rows) == 0:
        return None
    if "step" in rows.columns:
        rows = rows.sort_values("step", kind="stable", na_position="first")
    return _number(rows["value"].iloc[-1])
