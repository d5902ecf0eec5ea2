"""``harness status grids/X.yaml``: one line per job (state, step, ETA, last metric), then counts."""

from __future__ import annotations

import argparse
import json

from harness.cli.common import add_grid_args, load_grid, results_path


def configure(parser: argparse.ArgumentParser) -> None:
    add_grid_args(parser)
    parser.add_argument("--state", action="append", default=[], metavar="STATE",
                        help="show only jobs in this state (repeatable), e.g. --state failed")
    parser.add_argument("--json", action="store_true", help="print the jobs as JSON")


def run(args: argparse.Namespace) -> int:
    from harness.dispatch import STATES
    from harness.dispatch.state import count_states, fmt_duration, fmt_factors, fmt_metric, fmt_step, job_states
    from harness.dispatch.state import table as text_table
    from harness.errors import UserError

    for wanted in args.state:
        if wanted not in STATES and wanted != "pruned":
            raise UserError(f"--state: unknown state '{wanted}'; known: {', '.join(STATES)}")
    grid = load_grid(args)
    states = list(job_states(grid.jobs, results_path(args)).values())
    shown = [s for s in states if not args.state or s.state in args.state]
    if args.json:
        print(json.dumps([_as_dict(s) for s in shown], indent=1))
        return 0
    rows = [
        [s.job.short_id, s.job.stage, s.job.task or "-", fmt_factors(s.job.factors), str(s.job.seed), s.state,
         fmt_step(s.step, s.total), fmt_duration(s.eta_s),
         fmt_metric(s.metrics) if s.state not in ("failed", "stale") else (s.note.splitlines() or [""])[0]]
        for s in shown
    ]
    print(f"grid {grid.name} (profile {grid.profile or '-'}), results {results_path(args)}")
    print(text_table(["id", "stage", "task", "factors", "seed", "state", "step", "ETA", "last metric / note"], rows))
    counts = count_states(states)
    print(f"{len(states)} jobs: " + ", ".join(f"{n} {st}" for st, n in sorted(counts.items())))
    return 0


def _as_dict(s):  # type: ignore[no-untyped-def]
    return {"run_id": s.run_id, "stage": s.job.stage, "task": s.job.task, "factors": s.job.factors,
            "seed": s.job.seed, "depends_on": s.job.depends_on, "state": s.state, "step": s.step,
            "total": s.total, "loss": s.loss, "eta_s": s.eta_s, "metrics": s.metrics, "note": s.note}
