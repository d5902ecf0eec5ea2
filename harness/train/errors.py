"""Exceptions that end a training job in a known way (torch-free)."""

from __future__ import annotations


class StopTraining(Exception):
    """Raised by an ``on_eval`` hook (e.g. Optuna pruning): the job ends cleanly as "pruned"."""

    def __init__(self, reason: str = "stopped by on_eval") -> None:
        super().__init__(reason)
        self.reason = reason


class TrainingFailed(Exception):
    """A known training failure (non-finite loss, out of memory, missing checkpoint): status "failed"."""


class SimulatedKill(BaseException):
    """Test hook: ends the process's work abruptly after N steps, like a SIGKILL would.

    A BaseException so that the job's failure handling does not record it: a killed job
    writes nothing at the moment it dies.
    """
