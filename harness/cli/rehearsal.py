"""``harness rehearsal prepare [--out DIR]``: tiny checkpoints under the real hub ids and a METER Arrow root
written by the converters, for ``harness run GRID --profile paper --rehearse``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from harness.errors import UserError


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    prep = sub.add_parser("prepare", help="write DIR/hub (tiny checkpoints), DIR/raw and DIR/arrow")
    prep.add_argument("--out", help="folder (default: $HARNESS_REHEARSAL, else <cache>/rehearsal)")


def run(args: argparse.Namespace) -> int:
    if args.action != "prepare":
        raise UserError("harness rehearsal: give an action: prepare (see harness rehearsal --help)")
    from harness.rehearsal.prepare import default_root, prepare

    root = Path(args.out).absolute() if args.out else default_root().absolute()
    start = time.perf_counter()
    prepare(root)
    print(f"rehearsal ready in {root} ({time.perf_counter() - start:.0f} s)")
    if root != default_root().absolute():
        print(f"use it with: export HARNESS_REHEARSAL={root}")
    print("then: harness run GRID --profile paper --rehearse [--executor slurm --cluster local]")
    return 0
