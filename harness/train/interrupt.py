"""Test hooks that interrupt a training run the way the outside world does, at a chosen step.

A hook fires right after optimizer step N (after that step's checkpoint, if it has one), and
only in a process that ran step N itself: a run resumed from step N's checkpoint, or from a
later one, passes on, so the same environment can be kept for the restarted job.

- ``raise``: ``SimulatedKill`` (in-process tests: the job records nothing, as if killed).
- ``kill``:  the process sends itself SIGKILL — no exception handler, no ``finally``, no
  record: what the OOM killer or a lost node does. ``$HARNESS_STOP_AFTER_STEPS=N``.
- ``hold``:  the process waits (up to ``HOLD_LIMIT_S``) for a signal, so that a test can
  preempt a SLURM job at a known step instead of racing it. ``$HARNESS_HOLD_AFTER_STEPS=N``.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from harness.train.errors import SimulatedKill

STOP_AFTER_ENV = "HARNESS_STOP_AFTER_STEPS"
HOLD_AFTER_ENV = "HARNESS_HOLD_AFTER_STEPS"
HOLD_LIMIT_S = 600.0


@dataclass(frozen=True)
class Interrupt:
    step: int
    how: Literal["raise", "kill", "hold"] = "raise"

    def after_step(self, step: int, start_step: int) -> None:
        """Called after each optimizer step; ``start_step`` is where this process began (0 or resumed)."""
        if step != self.step or start_step >= self.step:
            return
        if self.how == "raise":
            raise SimulatedKill(f"simulated kill after step {step}")
        print(f"interrupt hook: {self.how} after step {step} (pid {os.getpid()})", flush=True)
        if self.how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        deadline = time.monotonic() + HOLD_LIMIT_S
        while time.monotonic() < deadline:  # signal handlers (submitit's USR2) run during sleep
            time.sleep(0.2)


def from_env(env: Mapping[str, str] | None = None) -> Interrupt | None:
    """The hook the environment asks for, if any (a bad value is an error, not ignored)."""
    env = os.environ if env is None else env
    for name, how in ((STOP_AFTER_ENV, "kill"), (HOLD_AFTER_ENV, "hold")):
        value = env.get(name)
        if value:
            if not value.isdigit() or int(value) < 1:
                raise ValueError(f"${name} must be a step number ≥ 1, got {value!r}")
            return Interrupt(int(value), how)  # type: ignore[arg-type]
    return None
