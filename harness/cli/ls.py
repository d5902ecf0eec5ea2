"""``harness ls [components|grids] [--params]``: what the harness knows."""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", nargs="?", choices=("components", "grids"), default="components")
    parser.add_argument("--grids-dir", default="grids", help="where to look for grid files")
    parser.add_argument("--params", action="store_true",
                        help="build the paper-scale METER-CLIP-ViT-B/16 + RoBERTa-base model with random weights "
                             "and print its parameter counts per LR group (imports torch)")


def run(args: argparse.Namespace) -> int:
    if args.what == "grids":
        return _grids(Path(args.grids_dir))
    from harness.registry import REGISTRIES

    for registry in REGISTRIES.values():
        print(f"{registry.kind}s:")
        for entry in registry:
            print(f"  {entry.name:<24} {entry.description}")
        print()
    if args.params:
        from harness.models.params import print_paper_params

        print_paper_params()
    return 0


def _grids(folder: Path) -> int:
    from harness.spec.document import load_document
    from harness.spec.errors import GridError

    for path in sorted(folder.glob("*.yaml")):
        try:
            doc = load_document(path)
            profiles = ", ".join(sorted(doc.data.get("profiles") or {}))
            print(f"  {path.name:<28} {doc.data.get('description', '')}  [profiles: {profiles}]")
        except GridError as exc:
            print(f"  {path.name:<28} INVALID: {exc.issues[0]}")
    return 0
