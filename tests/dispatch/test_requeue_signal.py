"""A preempted SLURM job's requeue must survive the preemption's SIGTERM (no cluster needed)."""

from __future__ import annotations

import subprocess
import sys

CHILD_SURVIVES = """
import os, signal, subprocess, sys, time
from harness.dispatch.entry import JobEntry
if sys.argv[1] == "checkpoint":
    JobEntry("0" * 64, "/nonexistent", "harness.train:run_job").checkpoint()
child = subprocess.Popen(["sleep", "5"])  # what submitit runs next: `scontrol requeue <id>`
time.sleep(0.2)
os.kill(child.pid, signal.SIGTERM)  # slurmstepd signals every process of the step
time.sleep(0.3)
alive = child.poll() is None
child.kill()
print("alive" if alive else "killed")
"""


def _child_after(step: str) -> str:
    out = subprocess.run([sys.executable, "-c", CHILD_SURVIVES, step], capture_output=True, text=True, timeout=60,
                         check=True)
    return out.stdout.strip().splitlines()[-1]


def test_the_requeue_command_is_not_killed_by_the_preemption_sigterm() -> None:
    """After ``JobEntry.checkpoint`` (submitit calls it just before `scontrol requeue`), a child process
    ignores SIGTERM; without it the same child is killed (CI once lost a requeue that way)."""
    assert _child_after("none") == "killed"
    assert _child_after("checkpoint") == "alive"
