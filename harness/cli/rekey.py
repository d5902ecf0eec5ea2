"""``harness rekey``: move runs recorded under an older run-id scheme to the ids of today's scheme.

A run id is the hash of the job's identity. When the identity changes shape (schema 2 left the
placement keys out; a new spec field with a default), finished runs would sit under ids no grid
compiles to any more. ``rekey`` reads every ``runs/<id>/spec.json``, recomputes the id the job has
now (pre-training runs first, so fine-tuning runs follow their parent's new id), moves the folder
and copies the run's store rows under the new id. The old store rows stay (no grid names them).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from harness.cli.common import add_results_arg, results_path


def configure(parser: argparse.ArgumentParser) -> None:
    add_results_arg(parser)
    parser.add_argument("--dry-run", action="store_true", help="print what would move, move nothing")


def _stored_jobs(results: Path) -> tuple[list[Any], list[str]]:
    from pydantic import ValidationError

    from harness.spec.schema import JobSpec

    jobs, problems = [], []
    for spec in sorted((results / "runs").glob("*/spec.json")):
        try:
            job = JobSpec.model_validate(json.loads(spec.read_text())["job"])
        except (OSError, ValueError, KeyError, TypeError, ValidationError) as exc:
            problems.append(f"{spec}: unreadable, left where it is ({str(exc).splitlines()[0]})")
            continue
        if job.run_id != spec.parent.name:
            problems.append(f"{spec}: names run {job.run_id[:10]}, not its folder; left where it is")
            continue
        jobs.append(job)
    jobs.sort(key=lambda j: j.stage != "pretrain")  # parents first
    return jobs, problems


def new_ids(jobs: list[Any]) -> dict[str, tuple[str, str | None]]:
    """old run id → (new run id, new depends_on) for every job whose id changed."""
    from harness.spec.cells import run_id
    from harness.spec.schema import job_identity

    moved: dict[str, tuple[str, str | None]] = {}
    for job in jobs:
        parent = moved[job.depends_on][0] if job.depends_on in moved else job.depends_on
        new = run_id(job_identity(job.experiment, job.stage, job.task, job.seed, parent))
        if new != job.run_id:
            moved[job.run_id] = (new, parent)
    return moved


def _copy_store_rows(results: Path, old: str, new: str, parent: str | None) -> None:
    from harness.store import Store
    from harness.store.schema import RUN_FIELDS

    store = Store(results)
    runs = store.runs(run_ids=[old])
    for row in runs.to_dict("records"):
        kept = {k: (None if _missing(v) else v) for k, v in row.items() if k in RUN_FIELDS or k.startswith("f_")}
        kept.update(run_id=new, depends_on=parent)
        store.write_run(kept)
    metrics = store.metrics(run_ids=[old])
    keys = ("stage", "task", "split", "metric", "value", "step")
    rows = [{k: (None if _missing(r[k]) else r[k]) for k in keys} for r in metrics.to_dict("records")]
    store.write_metrics(new, rows)


def _missing(value: Any) -> bool:
    try:
        return bool(value != value)  # NaN / NaT from pandas
    except (TypeError, ValueError):
        return False


def run(args: argparse.Namespace) -> int:
    from harness.paths import run_dir
    from harness.spec.runs import write_spec

    results = results_path(args)
    jobs, problems = _stored_jobs(results)
    moved = new_ids(jobs)
    for line in problems:
        print(f"note: {line}")
    for job in jobs:
        if job.run_id not in moved:
            continue
        new, parent = moved[job.run_id]
        target = run_dir(results, new)
        if target.exists():
            print(f"skip {job.run_id[:10]} → {new[:10]}: {target} exists already")
            continue
        print(f"{'would move' if args.dry_run else 'moved'} {job.run_id[:10]} → {new[:10]} ({job.stage}"
              f"{' ' + job.task if job.task else ''}, seed {job.seed})")
        if args.dry_run:
            continue
        _copy_store_rows(results, job.run_id, new, parent)
        os.replace(run_dir(results, job.run_id), target)
        (target / "spec.json").unlink()  # the old identity: replaced by today's, which names the new id
        write_spec(job.model_copy(update={"run_id": new, "depends_on": parent}), results)
    print(f"{len(moved)} of {len(jobs)} runs {'to re-key' if args.dry_run else 're-keyed'}")
    return 0
