"""``harness zoo build [--only NAME ...]`` and ``harness zoo ls``: the tiny pre-trained encoder zoo."""

from __future__ import annotations

import argparse
import difflib

from harness.errors import UserError


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="zoo_command", metavar="ACTION")
    build = sub.add_parser("build", help="pre-train the missing tiny encoders (all, or --only NAME ...)")
    build.add_argument("--only", nargs="+", metavar="NAME", default=None,
                       help="encoder names (text or vision), e.g. bert clip-vit-224/32")
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    sub.add_parser("ls", help="list the zoo's entries, where they are and how they trained")


def resolve_names(names: list[str]) -> list[tuple[str, str]]:
    """Encoder names → (kind, name) pairs; an unknown name is a UserError with a suggestion."""
    from harness.registry import TEXT_ENCODERS, VISION_ENCODERS

    out = []
    for name in names:
        if name in TEXT_ENCODERS:
            out.append(("text", name))
        elif name in VISION_ENCODERS:
            out.append(("vision", name))
        else:
            known = TEXT_ENCODERS.names() + VISION_ENCODERS.names()
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(known)}"
            raise UserError(f"--only: '{name}' is neither a text nor a vision encoder; {hint}")
    return out


def run(args: argparse.Namespace) -> int:
    if args.zoo_command == "build":
        return _build(args)
    if args.zoo_command == "ls":
        return _ls()
    raise UserError("harness zoo: give an action, 'build' or 'ls' (see harness zoo --help)")


def _build(args: argparse.Namespace) -> int:
    names = resolve_names(args.only) if args.only else None
    from harness.models.zoo import ensure_zoo

    try:
        root = ensure_zoo(names, progress=not args.quiet)
    except ValueError as exc:  # e.g. a bad HARNESS_ZOO_STEPS
        raise UserError(str(exc)) from None
    print(f"tiny zoo ready: {root}")
    return 0


def _ls() -> int:
    from harness.models.zoo import zoo_listing, zoo_root

    print(f"tiny zoo: {zoo_root()}")
    print(f"{'kind':<7}{'name':<18}{'built':<7}{'steps':>6}{'px':>5}{'wall s':>8}{'cpu s':>8}{'loss':>8}{'acc':>7}"
          "  recipe")
    for row in zoo_listing():
        print(f"{row['kind']:<7}{row['name']:<18}{'yes' if row['built'] else 'no':<7}{_num(row['steps'], 0):>6}"
              f"{_num(row['image_size'], 0):>5}{_num(row['seconds'], 1):>8}{_num(row['cpu_seconds'], 1):>8}"
              f"{_num(row['final_loss'], 3):>8}{_num(row['final_acc'], 2):>7}  {row['recipe']}")
    return 0


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
