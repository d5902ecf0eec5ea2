"""``harness train PATH``: run one job from its run folder or spec.json (what executors call).

Works under ``torchrun`` / ``accelerate launch`` too: every process runs this command and
the trainer splits the global batch across them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness.errors import UserError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="run folder (<results>/runs/<run_id>) or its spec.json")
    parser.add_argument("--results", help="results root (default: two folders above the run folder)")
    parser.add_argument("--stop-after", type=int, metavar="STEPS",
                        help="testing: stop abruptly after this many optimizer steps (a simulated kill)")


def _job_and_results(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from pydantic import ValidationError

    from harness.spec.runs import read_spec

    path = Path(args.path)
    spec_file = path / "spec.json" if path.is_dir() else path
    if not spec_file.is_file():
        raise UserError(f"{spec_file} does not exist; give a run folder holding spec.json, or the spec.json itself")
    try:
        job = read_spec(spec_file)
    except (ValueError, KeyError, ValidationError) as exc:  # JSON errors are ValueErrors
        raise UserError(f"{spec_file} is not a valid job spec: {exc}") from None
    folder = spec_file.parent
    results = Path(args.results) if args.results else folder.parent.parent
    if folder.resolve() != (results / "runs" / job.run_id).resolve():
        raise UserError(f"{spec_file} holds run {job.run_id}, but it is not in <results>/runs/{job.run_id}/ "
                        f"(results root {results}); pass --results or move the folder")
    return job, results


def run(args: argparse.Namespace) -> int:
    job, results = _job_and_results(args)
    from harness.train import TrainingFailed, run_job
    from harness.train.errors import SimulatedKill

    try:
        summary = run_job(job, results, stop_after=args.stop_after)
    except TrainingFailed as exc:
        print(f"run {job.short_id} failed: {exc}")
        return 1
    except SimulatedKill as exc:
        print(f"run {job.short_id}: {exc}")
        return 3
    print(json.dumps({"run_id": job.run_id, "status": summary["status"], "step": summary["step"],
                      "metrics": summary["metrics"]}))
    return 0
