"""``harness cancel grids/X.yaml``: stop a grid's queued and running jobs.

Local: SIGTERM to the dispatching ``harness run`` (it stops its workers and marks them
cancelled) and to any worker still running (pid in progress.json). SLURM: the SLURM
executor's own ``cancel``. Which executor ran the grid is read from
``<results>/dispatch/<grid>.json`` unless ``--executor`` says.
"""

from __future__ import annotations

import argparse
import signal
import time

from harness.cli.common import add_grid_args, load_grid, results_path

WAIT_S = 20.0


def configure(parser: argparse.ArgumentParser) -> None:
    add_grid_args(parser)
    parser.add_argument("--executor", help="executor that ran the grid (default: the one recorded at `harness run`)")
    parser.add_argument("--cluster", metavar="YAML", help="cluster file, for --executor slurm")
    parser.add_argument("--no-wait", action="store_true", help="signal and return without waiting for the jobs to stop")


def run(args: argparse.Namespace) -> int:
    from harness.cli.run import make_executor
    from harness.dispatch.order import read_dispatch_record

    grid = load_grid(args)
    results = results_path(args)
    record = read_dispatch_record(results, grid.name) or {}
    args.executor = args.executor or record.get("executor") or "local"
    args.workers = None
    executor = make_executor(args)
    before = _active(grid.jobs, results)
    if not before:
        print(f"nothing of grid {grid.name} is running or queued in {results}.")
        return 0
    dispatcher = _stop_local_dispatcher(record) if args.executor == "local" else None
    if dispatcher:
        # It stops its own workers and records them; wait so that only orphans are left to signal.
        print(f"signalled the local dispatcher (pid {dispatcher})")
        if not args.no_wait:
            _wait_gone(dispatcher)
    executor.cancel(_active(grid.jobs, results) if dispatcher else before, results)
    print(f"cancelled {len(before)} job(s) of grid {grid.name}; finished results are kept "
          f"(`harness status {args.grid}`).")
    return 0


def _active(jobs, results):  # type: ignore[no-untyped-def]
    from harness.dispatch.state import job_states

    return [s.job for s in job_states(jobs, results).values() if s.state in ("running", "queued")]


def _stop_local_dispatcher(record: dict) -> int | None:  # type: ignore[type-arg]
    import os

    from harness.dispatch.state import process_alive

    pid, host = record.get("pid"), record.get("host")
    if not record.get("running") or not pid or pid == os.getpid() or not process_alive(pid, host):
        return None
    import socket

    if host != socket.gethostname():
        return None  # another machine's process: nothing to signal from here
    try:
        os.kill(int(pid), signal.SIGTERM)
    except ProcessLookupError:
        return None
    return int(pid)


def _wait_gone(pid: int) -> None:
    from harness.dispatch.state import process_alive

    deadline = time.monotonic() + WAIT_S
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)

