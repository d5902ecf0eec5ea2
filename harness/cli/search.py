"""``harness search GRID``: an Optuna search over the grid's ``search:`` parameters.

    harness search grids/lr_ratio.yaml --trials 8 --workers 2
    harness search grids/lr_ratio.yaml --executor slurm --cluster slurm/clusters/local.yaml
    harness search grids/lr_ratio.yaml --report-only

Each trial is an ordinary harness job (same run ids and store records as ``harness run``).
Running the command again continues the same study: finished trials are kept, trial
numbers go on, and trials lost with a killed worker are run again.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from harness.cli.common import add_grid_args, load_grid, results_path
from harness.errors import UserError

DEFAULT_JOB_FN = "harness.train:run_job"
JOB_FN_ENV = "HARNESS_JOB_FN"  # the dispatch executors' convention: tests point workers elsewhere


def configure(parser: argparse.ArgumentParser) -> None:
    add_grid_args(parser)
    parser.add_argument("--trials", type=int, help="finished trials the study should reach (default: search.trials)")
    parser.add_argument("--workers", type=int, help="parallel workers (default: one per core, at most --trials)")
    parser.add_argument("--executor", choices=("local", "slurm"), default="local",
                        help="local processes (default) or a SLURM array of workers")
    parser.add_argument("--cluster", help="SLURM cluster profile: a name in slurm/clusters/ or a file "
                                          "(with --executor slurm; default: local)")
    parser.add_argument("--report-only", action="store_true", help="write the report of the study as it stands")


def _positive(value: int | None, flag: str) -> None:
    if value is not None and value < 1:
        raise UserError(f"{flag} must be at least 1 (got {value})")


def run(args: argparse.Namespace) -> int:
    from harness.search.config import parse_search
    from harness.search.launch import run_local, run_slurm
    from harness.search.report import write_report
    from harness.search.study import count_states, finished, open_study, recover_lost_trials
    from harness.search.worker import WorkerConfig

    _positive(args.trials, "--trials")
    _positive(args.workers, "--workers")
    if args.cluster is not None and args.executor != "slurm":
        raise UserError("--cluster goes with --executor slurm")
    grid = load_grid(args)
    results = results_path(args)
    try:
        spec = parse_search(grid.search, where=f"{args.grid}: search")
    except ValueError as exc:
        raise UserError(str(exc)) from None
    for item in args.sets:
        key = item.partition("=")[0].strip().removeprefix("base.")
        for name, param in spec.params.items():
            if param.path == key:
                raise UserError(f"--set {key}: that key is searched (search.params.{name}); drop the --set")
    trials = args.trials or spec.trials
    storage = spec.storage_location(results, grid.name)
    config = WorkerConfig(grid_path=str(grid.path), profile=grid.profile, results=str(results), storage=storage,
                          study_name=spec.study_name(grid.name), search=spec.model_dump(mode="json"),
                          trials=trials, sets=tuple(args.sets), only=tuple(args.only),
                          job_runner=os.environ.get(JOB_FN_ENV) or DEFAULT_JOB_FN)
    try:
        study = open_study(spec, storage, config.study_name)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if not args.report_only:
        lost = recover_lost_trials(study, spec)
        if lost:
            numbers = ", ".join(map(str, lost))
            print(f"lost with their worker: trial(s) {numbers}; marked failed and queued to run again")
        done = finished(count_states(study))
        print(f"study '{config.study_name}' ({storage}): {done} of {trials} trials finished")
        if done < trials:
            _prepare(config, spec)
            workers = args.workers or min(_cores(), trials - done)
            try:
                if args.executor == "local":
                    run_local(config, workers)
                else:
                    run_slurm(config, workers, cluster=args.cluster,
                              folder=results / "search" / config.study_name / "slurm")
            except RuntimeError as exc:
                print(f"error: {exc}", file=sys.stderr)
    out = write_report(study, spec, results, grid.name)
    _print_best(study, out)
    left = trials - finished(count_states(study))
    if left > 0 and not args.report_only:
        print(f"error: the study is {left} trials short of {trials}; run the command again to continue",
              file=sys.stderr)
        return 1
    return 0


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _prepare(config, spec) -> None:  # type: ignore[no-untyped-def]
    """Check that a trial compiles (grid mistakes fail here, not in W workers) and build the tiny zoo once."""
    from harness.search.trial_jobs import probe_values, trial_jobs
    from harness.spec.errors import GridError

    try:
        jobs = trial_jobs(config.grid_path, config.profile, spec, probe_values(spec), config.sets, config.only)
    except GridError as exc:
        raise UserError(f"a trial of {config.grid_path} does not compile:\n{exc}") from None
    except ValueError as exc:
        raise UserError(f"{config.grid_path}: {exc}") from None
    if config.job_runner == DEFAULT_JOB_FN:
        from harness.dispatch.order import ensure_zoo_for

        ensure_zoo_for(jobs)


def _print_best(study, out: Path) -> None:  # type: ignore[no-untyped-def]
    from harness.search.report import best_trial
    from harness.search.study import count_states

    counts = ", ".join(f"{n} {s.lower()}" for s, n in sorted(count_states(study).items()))
    best = best_trial(study)
    if best is None:
        print(f"no complete trial ({counts}); report: {out}")
        return
    params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.params.items())
    print(f"trials: {counts}")
    print(f"best: trial {best.number}, value {best.value:.4g} ({params})")
    print(f"report: {out}")
