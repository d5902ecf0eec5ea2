"""``harness data convert|check|baselines``: raw datasets → Arrow files, data-root checks,
and the synthetic benchmark's chance/blind baselines."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.common import positive_int
from harness.errors import UserError

CONVERTIBLE = ("coco", "f30k", "vqav2", "nlvr2", "snli-ve", "vg", "sbu", "gcc")
TASKS = ("vqa", "nlvr2", "snli-ve", "retrieval")


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    conv = sub.add_parser("convert", help="raw public layout → ViLT/METER Arrow files")
    conv.add_argument("dataset", help=f"one of {', '.join(CONVERTIBLE)}")
    conv.add_argument("--raw", required=True, help="folder with the raw download (JSON + images)")
    conv.add_argument("--out", required=True, help="folder to write the .arrow files into")
    conv.add_argument("--shard-rows", type=int, default=100_000,
                      help="rows per shard of sbu_N / conceptual_caption_*_N (METER: 100000)")
    check = sub.add_parser("check", help="files present, schemas, row counts, a sample of images decodes")
    check.add_argument("root", help="folder of .arrow files")
    check.add_argument("--sample", type=positive_int, default=8, help="images to decode per file (≥ 1)")
    base = sub.add_parser("baselines", help="chance and blind (text-only) baselines of the synthetic benchmark")
    base.add_argument("--seed", type=int, default=0, help="synthetic.seed")
    base.add_argument("--task", action="append", choices=TASKS, help="default: every task")
    base.add_argument("--split", default="test", choices=("val", "test"))


def run(args: argparse.Namespace) -> int:
    if args.action == "convert":
        return _convert(args)
    if args.action == "check":
        return _check(Path(args.root), args.sample)
    if args.action == "baselines":
        return _baselines(args)
    raise UserError("harness data: give an action: convert, check or baselines (see harness data --help)")


def _convert(args: argparse.Namespace) -> int:
    import difflib

    from harness.data.convert import ConvertError, convert

    if args.dataset not in CONVERTIBLE:
        close = difflib.get_close_matches(args.dataset, CONVERTIBLE, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f"; known: {', '.join(CONVERTIBLE)}"
        raise UserError(f"no converter for dataset '{args.dataset}'{hint}")
    try:
        if args.shard_rows < 1:
            raise ValueError(f"--shard-rows {args.shard_rows}: expected a count ≥ 1")
        counts, missing = convert(args.dataset, Path(args.raw), Path(args.out), args.shard_rows)
    except (ConvertError, KeyError, ValueError) as exc:
        raise UserError(f"converting {args.dataset} from {args.raw}: {exc}") from None
    for name, rows in counts.items():
        print(f"wrote {Path(args.out) / (name + '.arrow')}: {rows} rows")
    if missing:
        print(f"skipped {len(missing)} rows whose image file is missing, e.g. {missing[0]}")
    return 0


def _check(root: Path, sample: int) -> int:
    from harness.data.check import check_root

    if not root.is_dir():
        raise UserError(f"{root}: not a directory")
    reports = check_root(root, sample)
    if not reports:
        raise UserError(f"{root}: no .arrow files")
    for report in reports:
        print(report.line())
    from harness.data.check import split_coverage

    print("splits (METER's use of each dataset):")
    for line in split_coverage(root):
        print(f"  {line}")
    failed = [r for r in reports if r.error or r.decoded < r.tried]
    print(f"{len(reports)} files, {len(failed)} with problems")
    return 1 if failed else 0


def _baselines(args: argparse.Namespace) -> int:
    from harness.data.config import SyntheticSpec
    from harness.data.synthetic_data import baselines_for

    spec = SyntheticSpec(seed=args.seed)
    print(f"synthetic benchmark (seed {spec.seed}, {args.split} split): chance = uniform guess, "
          "blind = best text-only prior learnt from train")
    print(f"{'task':<10} {'metric':<10} {'chance':>7} {'blind':>7}")
    metrics = {"vqa": "vqa_score", "nlvr2": "accuracy", "snli-ve": "accuracy", "retrieval": "ir_r1"}
    for task in args.task or TASKS:
        b = baselines_for(spec, task, args.split)
        print(f"{task:<10} {metrics[task]:<10} {b['chance']:>7.3f} {b['blind']:>7.3f}")
    return 0
