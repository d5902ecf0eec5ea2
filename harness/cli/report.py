"""``harness report grids/X.yaml [--profile P]``: tables and figures next to the paper's numbers.

Writes ``<results>/reports/<grid>/`` (table.md, table.tex, table.csv, PNG and PDF figures),
prints the Markdown table and the folder. Works with any amount of results, none included.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.cli.common import add_grid_args, load_grid, results_path


def configure(parser: argparse.ArgumentParser) -> None:
    add_grid_args(parser)
    parser.add_argument("--out", help="report folder (default: <results>/reports/<grid>/)")
    parser.add_argument("--no-figures", action="store_true", help="tables only (faster)")


@contextlib.contextmanager
def store_warnings_to_stderr() -> Iterator[None]:
    """Store warnings (a corrupt file moved to quarantine) as plain lines, not Python warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for item in caught:
        print(f"warning: {item.message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    grid = load_grid(args)
    results = results_path(args)
    from harness.paths import report_dir
    from harness.report import build_report
    from harness.store import Store
    from harness.store.runrecord import sync

    out = Path(args.out) if args.out else report_dir(results, grid.name)
    with store_warnings_to_stderr():
        sync(results, [j.run_id for j in grid.jobs], metrics=True)  # the run folders are the truth
        result = build_report(grid.jobs, grid.report, Store(results), grid.name, out,
                              with_figures=not args.no_figures)
    print(result.markdown, end="")
    print(f"\nreport: {out}/ ({', '.join(p.name for p in result.files)})")
    _warn_stale(grid, results)
    return 0


def _warn_stale(grid: Any, results: Path) -> None:
    """Say which values come from runs whose generated inputs (tiny zoo, synthetic data) have changed since."""
    from harness.dispatch.state import job_states

    stale = [st for st in job_states(grid.jobs, results).values() if st.state == "stale"]
    if stale:
        print(f"warning: {len(stale)} run(s) in this table are stale: {stale[0].note.split(':')[0]} "
              f"(e.g. {stale[0].job.short_id}); `harness run {grid.path}` recomputes them "
              "(`harness status` lists them)", file=sys.stderr)
