"""``harness validate grids/*.yaml``: check grid files without building any model.

Every file named is checked and reported, whatever an earlier one held.
"""

from __future__ import annotations

import argparse
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("grids", nargs="+", help="grid files")
    parser.add_argument("--profile", action="append", default=[],
                        help="profile(s) to check (default: every profile of each file)")


def _check(path: str, requested: list[str]) -> str:
    """One file: a summary line when valid, else GridError."""
    from harness.spec.compile import compile_grid
    from harness.spec.document import load_document

    profiles: list[str | None] = list(requested)
    if not profiles:
        declared = load_document(path).data.get("profiles")
        profiles = sorted(declared) if isinstance(declared, dict) else []
    counts = []
    chosen: list[str | None] = [*profiles] or [None]
    for profile in chosen:
        grid = compile_grid(path, profile)
        counts.append(f"{profile or 'default'}: {grid.cells} cells, {len(grid.jobs)} jobs")
    return "; ".join(counts)


def run(args: argparse.Namespace) -> int:
    from harness.spec.errors import GridError

    failed = 0
    for path in args.grids:
        try:
            summary = _check(path, args.profile)
        except GridError as exc:
            failed += 1
            print(f"FAIL {path}", file=sys.stderr)
            print(str(exc), file=sys.stderr)
            continue
        print(f"ok   {path} ({summary})")
    if len(args.grids) > 1:
        print(f"{len(args.grids)} files checked: {len(args.grids) - failed} ok, {failed} failed",
              file=sys.stderr if failed else sys.stdout)
    return 2 if failed else 0
