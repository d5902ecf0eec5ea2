"""GPUs for local workers: each job gets exactly the GPUs its spec asks for (torch-free).

``resources.gpus_per_node`` is what a job asks of the machine, as on SLURM: a job asking for
none runs with no GPU visible (``CUDA_VISIBLE_DEVICES=""``), a job asking for k waits until
k GPUs are free and sees only those. So a 16-core box with one GPU runs at most one GPU job
at a time, while CPU jobs fill the cores.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence


class ResourceError(ValueError):
    """A job asks for more than this machine has."""


def detect_gpus() -> list[str]:
    """Visible GPU ids: ``$CUDA_VISIBLE_DEVICES`` when set, else what ``nvidia-smi`` lists, else none."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d.strip() for d in env.split(",") if d.strip() and d.strip() != "-1"]
    try:
        listed = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return []
    if listed.returncode != 0:
        return []
    return [line.strip() for line in listed.stdout.splitlines() if line.strip()]


class GpuPool:
    """Hands out GPU ids to workers and takes them back."""

    def __init__(self, gpus: Sequence[str]) -> None:
        self.all = list(gpus)
        self.free = list(gpus)

    def check(self, need: int, what: str) -> None:
        if need > len(self.all):
            seen = f"{len(self.all)} visible GPU(s) ({','.join(self.all)})" if self.all else "no visible GPU"
            raise ResourceError(f"{what} asks for {need} GPU(s) (resources.gpus_per_node) but this machine has "
                                f"{seen}; use --executor slurm, or --set resources.gpus_per_node={len(self.all)}")

    def can_take(self, need: int) -> bool:
        return need <= len(self.free)

    def take(self, need: int) -> list[str]:
        taken, self.free = self.free[:need], self.free[need:]
        return taken

    def give_back(self, gpus: Sequence[str]) -> None:
        self.free += [g for g in gpus if g not in self.free]
        self.free.sort(key=self.all.index)
