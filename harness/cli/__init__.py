"""The ``harness`` command. ``main(argv)`` is what the console script and the tests call.

Each subcommand lives in its own module ``harness.cli.<module>`` with ``configure(parser)``
and ``run(args) -> int``; modules import torch only inside ``run``, so ``harness --help``
stays fast and torch-free.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from harness.errors import UserError

# command → (module, one-line help). Order is the order of `harness --help`.
COMMANDS: dict[str, tuple[str, str]] = {
    "ls": ("ls", "list registered components (and grids)"),
    "validate": ("validate", "check grid files without building anything"),
    "plan": ("plan", "show the jobs a grid compiles into, with their status and cost"),
    "preflight": ("preflight", "check a grid's weights, data, GPUs/cluster and time limits before running it"),
    "run": ("run", "run a grid: locally (default) or on SLURM"),
    "status": ("status", "per-job state of a grid: step, ETA, last metric"),
    "retry": ("retry", "run a grid's failed jobs again"),
    "cancel": ("cancel", "cancel a grid's queued and running jobs"),
    "logs": ("logs", "print the log of one run"),
    "results": ("results", "export a grid's results as csv, parquet or json"),
    "report": ("report", "write the grid's tables and figures next to the paper's numbers"),
    "search": ("search", "Optuna search over learning rates and the LR ratio"),
    "store": ("store", "rebuild the results store from the run folders"),
    "zoo": ("zoo", "build or list the tiny pre-trained encoder zoo"),
    "data": ("data", "convert raw datasets to Arrow files; check a data root"),
    "weights": ("weights", "the pre-trained files a grid needs: list what to fetch, check what is missing"),
    "import": ("imports", "record a METER checkpoint as a finished run that grids start from"),
    "rehearsal": ("rehearsal", "prepare the tiny checkpoints and data that --rehearse runs a paper profile on"),
    "rekey": ("rekey", "move finished runs to the run ids of this version (after a run-id scheme change)"),
    "train": ("train", "run one job from its spec.json (used by executors)"),
}

EXIT_USAGE = 2
__all__ = ["COMMANDS", "EXIT_USAGE", "UserError", "build_parser", "main"]


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Any]]:
    from harness import __version__

    parser = argparse.ArgumentParser(
        prog="harness",
        description="METER ablation grids: grid → dispatch → train → store → report.",
    )
    parser.add_argument("--version", action="version", version=f"meter-harness {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules: dict[str, Any] = {}
    for command, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(f"harness.cli.{module_name}")
        module.configure(sub.add_parser(command, help=help_text, description=help_text))
        modules[command] = module
    return parser, modules


def main(argv: Sequence[str] | None = None) -> int:
    parser, modules = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    module = modules[args.command]
    try:
        return int(module.run(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _reader_went_away()


def _reader_went_away() -> int:
    """Output piped into ``head`` (or a closed pager): stop quietly, as ``cat`` does."""
    import os

    try:  # Python flushes stdout again at exit: point it at /dev/null so that flush cannot fail
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file descriptor (e.g. captured in tests)
        pass
    return 141  # 128 + SIGPIPE, what a shell reports for a writer whose reader left


if __name__ == "__main__":
    sys.exit(main())
