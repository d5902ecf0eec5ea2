"""The Accelerate trainer: ``run_job(job, results)`` trains one compiled job in its run folder.

``run_job`` is loaded lazily so that ``import harness.train`` stays cheap; the exceptions
a caller needs (``StopTraining``) import no torch.
"""

from __future__ import annotations

from typing import Any

from harness.train.errors import StopTraining, TrainingFailed

__all__ = ["StopTraining", "TrainingFailed", "run_job"]


def __getattr__(name: str) -> Any:
    if name == "run_job":
        from harness.train.job import run_job

        return run_job
    raise AttributeError(f"module 'harness.train' has no attribute '{name}'")
