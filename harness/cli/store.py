"""``harness store rebuild``: a new results store from the run folders' own records.

The store is derived data: each run folder holds spec.json, run_row.json and metrics.json.
"""

from __future__ import annotations

import argparse

from harness.cli.common import add_results_arg, results_path


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    rebuild = sub.add_parser("rebuild", help="rebuild <results>/store from the run folders (replaces it whole)")
    add_results_arg(rebuild)


def run(args: argparse.Namespace) -> int:
    from harness.cli import UserError

    if args.action != "rebuild":
        raise UserError("harness store: give an action: rebuild (see harness store --help)")
    from harness.store.runrecord import rebuild

    results = results_path(args)
    if not (results / "runs").is_dir():
        raise UserError(f"no run folders under {results}/runs; nothing to rebuild from (--results DIR?)")
    recorded, skipped = rebuild(results)
    print(f"rebuilt {results / 'store'} from {recorded} run folder(s)"
          + (f"; {skipped} without a record yet (never started, or unreadable)" if skipped else ""))
    return 0
