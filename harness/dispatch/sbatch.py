"""sbatch parameters for one array of jobs, and the sbatch file text submitit writes from them.

The SLURM executor hands ``sbatch_parameters`` to ``submitit.SlurmExecutor.update_parameters``;
``sbatch_text`` renders the very same parameters through submitit's own template, so the golden
file test (tests/dispatch/golden/) sees exactly what ``sbatch`` gets. Torch-free.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from harness.dispatch.cluster import ClusterProfile, SlurmRequest, check_shell_safe


def mem_text(mem_gb: float) -> str:
    """submitit's spelling of a memory size: whole GB as "8GB", else MB."""
    return f"{int(mem_gb)}GB" if mem_gb == int(mem_gb) else f"{int(mem_gb * 1024)}MB"


def job_name(grid: str, stage: str) -> str:
    name = f"meter-{grid}-{stage}"
    check_shell_safe(name, f"grid '{grid}' (its name becomes the SLURM job name)")
    return name


def sbatch_parameters(
    request: SlurmRequest,
    profile: ClusterProfile,
    *,
    name: str,
    dependency: str | None = None,
    array_parallelism: int | None = None,
) -> dict[str, Any]:
    """``submitit.SlurmExecutor.update_parameters`` keywords for jobs that share ``request``.

    Multi-GPU jobs run one task per GPU (``ntasks_per_node = gpus_per_node``); the job entry
    exports the torch.distributed variables for each task. Every string is checked for shell
    injection here, whatever its origin (profile, grid name, dependency).
    """
    params: dict[str, Any] = {
        "job_name": name,
        "time": request.time_min,
        "nodes": request.nodes,
        "ntasks_per_node": request.tasks_per_node,
        "cpus_per_task": request.cpus_per_task,
        "mem": mem_text(request.mem_gb),
        "signal_delay_s": profile.signal_delay_s,
        # No wckey: sites that track WCKeys reject unknown ones.
        "wckey": None,
        "array_parallelism": array_parallelism or profile.array_parallelism or 256,
        # --requeue: a node failure or `scontrol requeue` puts the job back in the queue.
        "additional_parameters": {"requeue": True, **profile.extra_parameters()},
    }
    if request.gpus_per_node:
        params["gpus_per_node"] = request.gpus_per_node
    optional = {
        "partition": request.partition,
        "account": request.account,
        "qos": request.qos,
        "constraint": request.constraint,
        "exclude": request.exclude,
        "dependency": dependency,
    }
    params.update({k: v for k, v in optional.items() if v is not None})
    if profile.setup:
        params["setup"] = list(profile.setup)
    for key, value in [*params.items(), *params["additional_parameters"].items()]:
        if isinstance(value, str):
            check_shell_safe(value, f"sbatch option --{key.replace('_', '-')}")
    return params


def submit_command(folder: Path | str, python: str) -> str:
    """The command every task runs: submitit's runner, reading the pickled job entry."""
    return f"{python} -u -m submitit.core._submit {shlex.quote(str(folder))}"


def sbatch_text(params: dict[str, Any], folder: Path | str, *, python: str, array_size: int | None) -> str:
    """The sbatch file submitit writes for ``params`` (``array_size``: None for a single job)."""
    from submitit.slurm.slurm import _make_sbatch_string  # the template submitit itself uses (1.5.x)

    return _make_sbatch_string(command=submit_command(folder, python), folder=folder, map_count=array_size, **params)
