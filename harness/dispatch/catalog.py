"""Names of executors (torch-free)."""

from __future__ import annotations

from typing import Any

from harness.registry import EXECUTORS


@EXECUTORS.register("local", "parallel worker processes on this machine (one job per core, one thread each)")
def _local(**kwargs: Any) -> Any:
    from harness.dispatch.local import LocalExecutor

    return LocalExecutor(**kwargs)


@EXECUTORS.register("slurm", "SLURM job arrays through submitit, afterok dependencies, requeue on preemption")
def _slurm(**kwargs: Any) -> Any:
    from harness.dispatch.slurm import SlurmExecutor

    return SlurmExecutor(**kwargs)
