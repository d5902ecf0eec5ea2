"""``harness weights list|check GRID``: the pre-trained files a grid's jobs load, and where they go.

For an offline cluster: ``list`` prints, per encoder and tokenizer, the command to run on a login node
(``hf download ID --local-dir DIR``, or timm's own) and the folder the jobs will look in; ``check``
says which are already there (exit 2 when any is missing).
"""

from __future__ import annotations

import argparse

from harness.cli import EXIT_USAGE
from harness.cli.common import add_grid_args, load_grid


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("list", "check"), help="list: what to fetch; check: what is missing")
    add_grid_args(parser)


def run(args: argparse.Namespace) -> int:
    from harness.models.weight_needs import SITE_KEY, locate, missing_message, needs_of

    grid = load_grid(args)
    needs = needs_of(grid.jobs)
    if not needs:
        print(f"grid {grid.name} (profile {grid.profile or '-'}) loads no pre-trained weights "
              "(tiny zoo or model.weights: random)")
        return 0
    if args.action == "list":
        print(f"grid {grid.name} (profile {grid.profile or '-'}): {len(needs)} pre-trained file set(s); "
              f"the jobs look in {SITE_KEY}")
        for need in needs:
            print(f"{need.label()} → {need.target}")
            for cmd in need.commands():
                print(f"    {cmd}")
        return 0
    missing = []
    for need in needs:
        where = locate(need)
        print(f"  {'[ok]' if where else '[MISSING]':<9} {need.label()}" + (f": {where}" if where else ""))
        if where is None:
            missing.append(need)
    if missing:
        print(missing_message(missing))
        return EXIT_USAGE
    print(f"all {len(needs)} present")
    return 0
