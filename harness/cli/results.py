"""``harness results grids/X.yaml --format csv|parquet|json|jsonl [--final] [--out FILE]``: a grid's results.

One row per job × metric value (jobs without results included, status "missing"); factor columns
named ``model_text`` etc.; ``--final``: only each run's final evaluation rows.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.cli.common import add_grid_args, load_grid, results_path
from harness.errors import UserError

FORMATS = ("csv", "parquet", "json", "jsonl")


def configure(parser: argparse.ArgumentParser) -> None:
    add_grid_args(parser)
    parser.add_argument("--format", choices=FORMATS, default="csv",
                        help="output format (default: csv; jsonl: one JSON object per line)")
    parser.add_argument("--final", action="store_true",
                        help="only each run's final evaluation rows (last step per split and metric; no training loss)")
    parser.add_argument("--out", help="output file (default: stdout; for parquet: "
                        "<results>/reports/<grid>/results.parquet)")


def run(args: argparse.Namespace) -> int:
    grid = load_grid(args)
    results = results_path(args)
    from harness.cli.report import store_warnings_to_stderr
    from harness.paths import report_dir
    from harness.report.export import final_rows, results_frame
    from harness.store import Store

    with store_warnings_to_stderr():
        from harness.store.runrecord import sync

        sync(results, [j.run_id for j in grid.jobs], metrics=True)  # the run folders are the truth
        frame = results_frame(grid.jobs, Store(results))
    if args.final:
        frame = final_rows(frame)
    out = Path(args.out) if args.out else None
    if args.format == "parquet" and out is None:
        out = report_dir(results, grid.name) / "results.parquet"
    if out is not None and out.is_dir():
        raise UserError(f"--out {out} is a folder; give a file name, e.g. {out / ('results.' + args.format)}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
    if args.format == "parquet":
        frame.to_parquet(out, index=False)
    elif args.format == "csv":
        frame.to_csv(out if out is not None else sys.stdout, index=False)
    else:
        lines = args.format == "jsonl"
        text = frame.to_json(orient="records", date_format="iso", lines=lines, indent=None if lines else 1)
        text = text.rstrip("\n")
        if out is None:
            print(text)
        else:
            out.write_text(text + "\n")
    if out is not None:
        print(f"{len(frame)} rows ({frame['run_id'].nunique()} jobs) written to {out}", file=sys.stderr)
    return 0
