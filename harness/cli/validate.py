"""``harness validate grids/*.yaml``: check grid files without building any model."""

from __future__ import annotations

import argparse
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("grids", nargs="+", help="grid files")
    parser.add_argument("--profile", action="append", default=[],
                        help="profile(s) to check (default: every profile of each file)")


def run(args: argparse.Namespace) -> int:
    from harness.spec.compile import compile_grid
    from harness.spec.document import load_document
    from harness.spec.errors import GridError

    failed = 0
    for path in args.grids:
        try:
            profiles = args.profile or sorted(load_document(path).data.get("profiles") or {}) or [None]
            counts = []
            for profile in profiles:
                grid = compile_grid(path, profile)
                counts.append(f"{profile or 'default'}: {grid.cells} cells, {len(grid.jobs)} jobs")
            print(f"ok   {path} ({'; '.join(counts)})")
        except GridError as exc:
            failed += 1
            print(f"FAIL {path}", file=sys.stderr)
            print(str(exc), file=sys.stderr)
    return 2 if failed else 0
