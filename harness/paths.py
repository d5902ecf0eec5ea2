"""Where results, runs, reports and caches live (environment first, then defaults)."""

from __future__ import annotations

import os
from pathlib import Path


def results_root(override: str | os.PathLike[str] | None = None) -> Path:
    """``--results`` beats ``$HARNESS_RESULTS`` beats ``./results``."""
    if override:
        return Path(override)
    return Path(os.environ.get("HARNESS_RESULTS") or "results")


def run_dir(results: Path, run_id: str) -> Path:
    return results / "runs" / run_id


def store_dir(results: Path) -> Path:
    return results / "store"


def trackers_dir(results: Path) -> Path:
    """W&B offline runs, TensorBoard logs and the MLflow file store of every grid."""
    return results / "trackers"


def report_dir(results: Path, grid: str) -> Path:
    return results / "reports" / grid


def cache_dir() -> Path:
    """Tiny zoo and synthetic data cache: ``$HARNESS_CACHE`` or ``~/.cache/meter-harness``."""
    env = os.environ.get("HARNESS_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "meter-harness"


# Keys of an experiment that name places on disk: resolved once, where the grid is compiled (the
# submitting shell), so that a job running in another working directory reads the same files.
_LOCATION_KEYS = (("data", "root"), ("model", "weights_dir"))


def absolute_locations(experiment: dict) -> dict:  # type: ignore[type-arg]
    """A copy of a raw experiment mapping with relative ``data.root``/``model.weights_dir`` made absolute
    against the current directory (``~`` expanded)."""
    out = dict(experiment)
    for section, key in _LOCATION_KEYS:
        part = out.get(section)
        if isinstance(part, dict) and isinstance(part.get(key), str) and part[key]:
            out[section] = {**part, key: str(Path(part[key]).expanduser().absolute())}
    return out
