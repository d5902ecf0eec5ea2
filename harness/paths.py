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


def report_dir(results: Path, grid: str) -> Path:
    return results / "reports" / grid


def cache_dir() -> Path:
    """Tiny zoo and synthetic data cache: ``$HARNESS_CACHE`` or ``~/.cache/meter-harness``."""
    env = os.environ.get("HARNESS_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "meter-harness"
