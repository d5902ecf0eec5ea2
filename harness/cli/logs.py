"""``harness logs RUN_ID``: print a run's log.txt and error.txt (and SLURM stdout/stderr if any).

RUN_ID may be a prefix (the 10-character short id ``harness status`` prints is enough).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.common import add_results_arg, results_path
from harness.errors import UserError

# SLURM output the SLURM executor leaves in (or links into) a run folder.
SLURM_PATTERNS = ("slurm*.out", "slurm*.err", "slurm/*.out", "slurm/*.err", "*_log.out", "*_log.err")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_id", help="run id or a unique prefix of one")
    parser.add_argument("--tail", type=int, default=0, metavar="N", help="only the last N lines of each file")
    add_results_arg(parser)


def find_run(results: Path, prefix: str) -> Path:
    """The run folder whose id starts with ``prefix``; a clear error when none or several match."""
    runs = results / "runs"
    prefix = prefix.strip().lower()
    if not prefix:
        raise UserError("give a run id (or its first characters)")
    if not runs.is_dir():
        raise UserError(f"no runs in {results} (no {runs} folder); is --results / $HARNESS_RESULTS right?")
    matches = sorted(p for p in runs.iterdir() if p.is_dir() and p.name.startswith(prefix))
    if not matches:
        import difflib

        close = difflib.get_close_matches(prefix, [p.name[: len(prefix)] for p in runs.iterdir()], n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise UserError(f"no run id in {runs} starts with '{prefix}'{hint}")
    if len(matches) > 1:
        shown = ", ".join(p.name[:16] for p in matches[:5])
        raise UserError(f"'{prefix}' matches {len(matches)} runs ({shown}...); give more characters")
    return matches[0]


def log_files(folder: Path) -> list[Path]:
    files = [folder / "log.txt", folder / "error.txt"]
    for pattern in SLURM_PATTERNS:
        files += sorted(folder.glob(pattern))
    seen: dict[Path, None] = {}
    for f in files:
        if f.is_file():
            seen.setdefault(f, None)
    return list(seen)


def run(args: argparse.Namespace) -> int:
    folder = find_run(results_path(args), args.run_id)
    files = log_files(folder)
    if not files:
        print(f"run {folder.name}: no log yet in {folder} (not started?)")
        return 0
    for path in files:
        lines = path.read_text(errors="replace").splitlines()
        if args.tail > 0:
            lines = lines[-args.tail:]
        print(f"==> {path} <==")
        print("\n".join(lines))
    return 0
