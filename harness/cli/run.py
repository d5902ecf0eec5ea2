"""``harness run grids/X.yaml``: run what a grid still lacks, locally (default) or on SLURM.

compile → spec.json per job → skip done → dependency order → tiny zoo (once, here) →
executor. Local waits with a live view and ends with the report; SLURM returns once queued.
``harness retry`` shares everything but the choice of jobs (``dispatch_grid``).
"""

from __future__ import annotations

import argparse
from collections.abc import Collection
from pathlib import Path
from typing import Any

from harness.cli import EXIT_USAGE
from harness.cli.common import add_grid_args, load_grid, results_path, selection_text
from harness.errors import UserError


def add_dispatch_args(parser: argparse.ArgumentParser) -> None:
    add_grid_args(parser)
    parser.add_argument("--executor", default="local", help="where jobs run: local (default) or slurm")
    parser.add_argument("--cluster", metavar="YAML",
                        help="cluster file for --executor slurm, e.g. slurm/clusters/X.yaml")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="local: jobs at a time (default: one per core, each with its threads)")
    parser.add_argument("--dry-run", action="store_true", help="show what would run; start and write nothing")


def configure(parser: argparse.ArgumentParser) -> None:
    add_dispatch_args(parser)


def run(args: argparse.Namespace) -> int:
    from harness.dispatch.order import RUNNABLE

    return dispatch_grid(args, RUNNABLE, verb="run")


def make_executor(args: argparse.Namespace) -> Any:
    """The executor named by ``--executor``, built with the options that apply to it."""
    from harness.registry import EXECUTORS, UnknownComponent

    try:
        EXECUTORS.get(args.executor)
    except UnknownComponent as exc:
        raise UserError(f"--executor: {exc}") from None
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers: expected a number ≥ 1, got {args.workers}")
    if args.executor == "local":
        if args.cluster:
            raise UserError("--cluster applies to --executor slurm only")
        return EXECUTORS.build("local", workers=args.workers)
    # The SLURM executor resolves --cluster (a profile name or a YAML path) and reports bad ones.
    return EXECUTORS.build(args.executor, cluster=args.cluster)


def dispatch_grid(args: argparse.Namespace, select: Collection[str], *, verb: str) -> int:
    """Run the jobs of ``args.grid`` whose state is in ``select`` (and what they depend on)."""

    grid = load_grid(args)
    results = results_path(args)
    executor = make_executor(args)
    if args.dry_run:  # writes nothing, so takes no lock
        return _plan_and_launch(grid, executor, results, args, select, verb)
    from harness.dispatch.order import GridBusy, dispatch_lock

    try:
        with dispatch_lock(results, grid.name):
            return _plan_and_launch(grid, executor, results, args, select, verb)
    except GridBusy as exc:
        raise UserError(str(exc)) from None


def _plan_and_launch(grid: Any, executor: Any, results: Path, args: argparse.Namespace, select: Collection[str],
                     verb: str) -> int:
    from harness.dispatch.order import plan_runs, retire_stale
    from harness.dispatch.state import job_states

    states = {rid: st.state for rid, st in job_states(grid.jobs, results).items()}
    states.update(imported_runs(grid.jobs, results))
    plan = plan_runs(grid.jobs, states, select=select)
    print(f"grid {grid.name} (profile {grid.profile or '-'}): {len(grid.jobs)} jobs; {plan.summary()}")
    for rid, reason in plan.blocked.items():
        print(f"  blocked {rid[:10]}: {reason}")
    checked = _preflight(plan.run, executor, dry_run=args.dry_run)
    if args.dry_run:
        return _print_dry_run(plan) if checked else EXIT_USAGE
    retire_stale(plan.run, states, results)
    if not plan.run:
        print(f"nothing to {verb}." + (" `harness status` shows the jobs." if plan.busy or plan.blocked else ""))
        if plan.busy or plan.blocked or not executor.waits:
            return 0 if not plan.blocked else 1
        return _summarise(grid, results, args)
    return _launch(grid, plan, executor, results, args)


def imported_runs(jobs: Any, results: Path) -> dict[str, str]:
    """run id → "done" for the imported checkpoints the jobs start from (``pretrain.from``), which are
    no job of the grid; one that was never imported into ``results`` is a UserError saying how to."""
    from harness.importers.record import read_import
    from harness.spec.schema import import_run_id, pretrain_import

    out: dict[str, str] = {}
    for job in jobs:
        ref = pretrain_import(job.experiment)
        if ref is None or job.depends_on in out:
            continue
        if read_import(results, *ref) is None:
            raise UserError(f"pretrain.from: '{ref[0]}:{ref[1]}' is not imported into {results}; run "
                            f"`harness import {ref[0]} CKPT --name {ref[1]} --results {results}` first")
        out[import_run_id(*ref)] = "done"
    return out


def _preflight(jobs: Any, executor: Any, *, dry_run: bool) -> bool:
    """Check the whole plan before anything runs or is queued. A real run refuses (UserError, exit 2)
    when something is missing; a dry run prints the checklist and says so (the caller exits 2)."""
    from harness.dispatch.preflight import preflight

    report = preflight(jobs, executor)
    for warning in report.warnings:
        print(f"warning: [{warning.area}] {warning.text}")
    if not report.problems:
        return True
    if not dry_run:
        raise UserError(report.refusal())
    print(report.refusal())
    return False


def _print_dry_run(plan: Any) -> int:
    from harness.dispatch.state import job_label

    for job in plan.run:
        after = f"  after {job.depends_on[:10]}" if job.depends_on else ""
        print(f"  would run {job.short_id}  {job_label(job)}{after}")
    return 0


def _launch(grid: Any, plan: Any, executor: Any, results: Path, args: argparse.Namespace) -> int:
    from harness.dispatch.order import ensure_zoo_for, write_dispatch_record, write_specs
    from harness.spec.runs import SpecConflict  # the cluster was checked by the preflight

    try:
        write_specs(grid.jobs, results)
    except SpecConflict as exc:
        raise UserError(str(exc)) from None
    ensure_zoo_for(plan.run)
    run_ids = [j.run_id for j in plan.run]
    if executor.waits:  # `harness cancel` finds this dispatcher's pid here
        write_dispatch_record(results, grid.name, executor.name, run_ids, running=True)
    print(f"results: {results.resolve()}   run folders (spec, progress, log.txt): {results.resolve() / 'runs'}")
    from harness.dispatch.gpus import ResourceError

    try:
        executor.submit(plan.run, results, on_progress=None if executor.waits else _print_event)
    except ResourceError as exc:
        _finish_record(results, grid.name)
        raise UserError(str(exc)) from None
    except KeyboardInterrupt:
        print(f"interrupted: finished jobs are kept; `harness {args.command} {args.grid}` runs what is missing.")
        _finish_record(results, grid.name)
        return 130
    if not executor.waits:
        write_dispatch_record(results, grid.name, executor.name, run_ids, running=False)
        print(f"submitted {len(plan.run)} job(s) to {executor.name}; follow them with "
              f"`harness status {selection_text(args)}`.")
        return 0
    _finish_record(results, grid.name)
    return _summarise(grid, results, args)


def _print_event(event: Any) -> None:
    print(f"  {event.state:<9} {event.run_id[:10]}  {event.detail}".rstrip())


def _finish_record(results: Path, grid: str) -> None:
    from harness.dispatch.order import read_dispatch_record, write_dispatch_record

    record = read_dispatch_record(results, grid) or {}
    write_dispatch_record(results, grid, record.get("executor", "local"), record.get("run_ids", []), running=False)


def _summarise(grid: Any, results: Path, args: argparse.Namespace) -> int:
    """Counts by state, then the report (table printed, path shown). Exit 1 if any job is not done."""
    from harness.dispatch.state import count_states, job_states

    states = job_states(grid.jobs, results)
    counts = count_states(states.values())
    print(f"{len(states)} jobs: " + ", ".join(f"{n} {st}" for st, n in sorted(counts.items())))
    bad = [s for s in states.values() if s.state != "done"]
    for st in bad:
        note = st.note.replace("\n", "\n" + " " * 22)  # the whole reason: a missing weight says where it looked
        print(f"  {st.state:<9} {st.job.short_id}  {note}  (harness logs {st.job.short_id})")
    if bad and any(s.state in ("failed", "cancelled", "interrupted") for s in bad):
        print(f"`harness retry {args.grid}` runs the failed jobs again.")
    _print_report(grid, results)
    return 0 if not bad else 1


def _print_report(grid: Any, results: Path) -> None:
    """Build the grid's report from the store; print its table and where it lies."""
    import sys

    from harness.paths import report_dir
    from harness.report import build_report
    from harness.store import Store
    from harness.store.runrecord import sync

    try:
        sync(results, [j.run_id for j in grid.jobs], metrics=True)
        report = build_report(grid.jobs, grid.report, Store(results), grid.name, report_dir(results, grid.name))
    except Exception as exc:  # noqa: BLE001 - the jobs' results are safe; say why the report is missing
        print(f"warning: the report could not be built ({type(exc).__name__}: {exc}); "
              f"`harness report {grid.path}` tries again", file=sys.stderr)
        return
    print(report.markdown.rstrip())
    print(f"report: {report.out_dir / 'table.md'}")
