"""Turning a command into a rehearsal: the prepared folder, its cache for the libraries, the spec transform."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

from harness.errors import UserError
from harness.rehearsal.prepare import default_root, is_ready
from harness.spec.schema import ExperimentSpec


def rehearsal_transform() -> Callable[[ExperimentSpec], ExperimentSpec]:
    """Check the prepared folder, point this process and the jobs it starts (local workers and sbatch inherit
    the environment) at its hub cache, offline, and return the spec transform."""
    from harness.rehearsal.spec import rehearse

    root = default_root().absolute()
    if not is_ready(root):
        raise UserError(f"--rehearse: {root} holds no prepared rehearsal; run `harness rehearsal prepare` first "
                        "(or set $HARNESS_REHEARSAL to the folder given to `harness rehearsal prepare --out`)")
    os.environ["HF_HUB_CACHE"] = str(root / "hub")
    os.environ["HF_HUB_OFFLINE"] = "1"
    return functools.partial(rehearse, root=root)
