"""Arguments and loading shared by the commands that take a grid file."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.errors import UserError
from harness.paths import results_root


def positive_int(text: str) -> int:
    """argparse type: a whole number ≥ 1 (and below 2**31), e.g. for --sample and --workers."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 1, got '{text}'") from None
    if not 1 <= value < 2**31:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 1, got {value}")
    return value


def add_grid_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("grid", help="grid file, e.g. grids/text_encoders.yaml")
    parser.add_argument("--profile", help="profile of the grid file (default: its default_profile, else 'local')")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="override a base key, e.g. --set optim.lr=2e-5 (repeatable)")
    parser.add_argument("--only", action="append", default=[], metavar="FACTOR=LEVEL",
                        help="keep only cells with this level, e.g. --only model.text=roberta (repeatable)")
    parser.add_argument("--rehearse", action="store_true",
                        help="the grid's jobs unchanged except for size, on the tiny checkpoints and data of "
                             "`harness rehearsal prepare` ($HARNESS_REHEARSAL); see README 'Rehearse the paper path'")
    add_results_arg(parser)


def add_results_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", help="results root (default: $HARNESS_RESULTS, else ./results)")


def results_path(args: argparse.Namespace) -> Path:
    return results_root(getattr(args, "results", None))


def load_grid(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """Compile the grid named by ``args``; grid errors become UserError (exit 2, no traceback)."""
    from harness.spec.compile import compile_grid
    from harness.spec.errors import GridError
    from harness.spec.site import site_values

    transform = None
    if getattr(args, "rehearse", False):
        from harness.rehearsal.setup import rehearsal_transform

        transform = rehearsal_transform()
    try:
        site = site_values()
    except GridError as exc:
        raise UserError(f"site configuration:\n{exc}") from None
    try:
        return compile_grid(args.grid, args.profile, args.sets, args.only, transform=transform, site=site)
    except GridError as exc:
        count = len(exc.issues)
        raise UserError(f"{count} problem{'s' if count > 1 else ''} in {args.grid}:\n{exc}") from None


def selection_text(args: argparse.Namespace) -> str:
    """The grid and the options that select its jobs, as a user would type them again (for hints)."""
    import shlex

    parts = [args.grid] + (["--profile", args.profile] if args.profile else [])
    parts += ["--rehearse"] if getattr(args, "rehearse", False) else []
    for flag, values in (("--set", args.sets), ("--only", args.only)):
        parts += [x for value in values for x in (flag, value)]
    return " ".join(shlex.quote(p) for p in parts)
