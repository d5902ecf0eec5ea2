"""``harness preflight GRID``: the checklist `harness run` goes through before anything runs or is queued.

Weights and tokenizers of every encoder, the Arrow file of every split each job reads, GPUs against
this machine (or, with ``--executor slurm``, the live cluster and every value that reaches sbatch),
each job's time estimate against its time_min. Exit 2 when something is missing.
"""

from __future__ import annotations

import argparse

from harness.cli import EXIT_USAGE
from harness.cli.run import add_dispatch_args, make_executor


def configure(parser: argparse.ArgumentParser) -> None:
    add_dispatch_args(parser)
    parser.add_argument("--all", action="store_true", help="check every job, also the ones already done")


def run(args: argparse.Namespace) -> int:
    from harness.cli.common import load_grid, results_path
    from harness.cli.run import imported_runs
    from harness.dispatch.order import RUNNABLE, plan_runs
    from harness.dispatch.preflight import preflight
    from harness.dispatch.state import job_states

    grid = load_grid(args)
    executor = make_executor(args)
    if args.all:
        jobs = list(grid.jobs)
    else:
        results = results_path(args)
        states = {rid: st.state for rid, st in job_states(grid.jobs, results).items()}
        states.update(imported_runs(grid.jobs, results))
        jobs = list(plan_runs(grid.jobs, states, select=RUNNABLE).run)
    print(f"grid {grid.name} (profile {grid.profile or '-'}): checking {len(jobs)} job(s) for {executor.name}")
    report = preflight(jobs, executor)
    print(report.checklist())
    return EXIT_USAGE if report.problems else 0
