"""``harness retry grids/X.yaml``: run the grid's failed (or cancelled, interrupted) jobs again.

``--all`` runs every job that is not done, like ``harness run``. A retried fine-tuning job
whose pre-training run is not done brings that run along.
"""

from __future__ import annotations

import argparse

from harness.cli.run import add_dispatch_args, dispatch_grid


def configure(parser: argparse.ArgumentParser) -> None:
    add_dispatch_args(parser)
    parser.add_argument("--all", action="store_true", help="every job that is not done, not just the failed ones")


def run(args: argparse.Namespace) -> int:
    from harness.dispatch.order import RETRYABLE, RUNNABLE

    return dispatch_grid(args, RUNNABLE if args.all else RETRYABLE, verb="retry")
