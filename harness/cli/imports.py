"""``harness import meter CKPT [--name NAME]``: a released METER checkpoint as a finished run.

Grids start from it with ``pretrain: {from: meter:NAME}`` (fine-tuning only; no pre-training job).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from harness.cli.common import add_results_arg, results_path
from harness.errors import UserError
from harness.importers.record import NAME_PATTERN


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="import_source", metavar="SOURCE")
    meter = sub.add_parser("meter", help="a METER (zdou0830/METER) Lightning checkpoint")
    meter.add_argument("checkpoint", type=Path, metavar="CKPT")
    meter.add_argument("--name", default=None, help="name grids use (from: meter:NAME); default: the file's stem")
    add_results_arg(meter)


def run(args: argparse.Namespace) -> int:
    if args.import_source != "meter":
        raise UserError("say what to import: harness import meter CKPT [--name NAME]")
    from harness.importers.meter import MeterImportError
    from harness.importers.record import ImportConflict

    name = args.name or _name_from(args.checkpoint)
    if not re.fullmatch(NAME_PATTERN, name):
        raise UserError(f"--name '{name}': use letters, digits, '_', '.', '-' (at most 64, starting with a "
                        "letter or digit)")
    try:
        return _import(args.checkpoint, name, results_path(args))
    except (MeterImportError, ImportConflict) as exc:
        raise UserError(str(exc)) from exc


def _name_from(path: Path) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]", "-", path.stem).lstrip("-_.")
    return stem or "meter"


def _import(path: Path, name: str, results: Path) -> int:
    from harness.importers.meter import (
        MeterImportError,
        build_imported_model,
        convert_state,
        infer_arch,
        read_meter_checkpoint,
    )
    from harness.importers.record import record_import
    from harness.train.checkpoint import file_sha256

    ckpt = read_meter_checkpoint(path)
    arch = infer_arch(ckpt)
    model = build_imported_model(arch)
    state, report = convert_state(ckpt.state, model)
    if report.mismatched:
        raise MeterImportError(f"{path}: {len(report.mismatched)} tensor(s) do not have the shape the model they "
                               "describe needs:\n  " + "\n  ".join(report.mismatched))
    if report.missing:
        raise MeterImportError(f"{path}: {len(report.missing)} tensor(s) of the model are not in the checkpoint:\n  "
                               + "\n  ".join(report.missing[:20]))
    model.load_state_dict(state, strict=False)  # proves every converted tensor loads
    record = {"source": "meter", "path": str(path.resolve()), "sha256": file_sha256(path), "arch": arch.to_json(),
              "global_step": ckpt.global_step, "meter_config": ckpt.config, "loaded": report.loaded,
              "unknown": report.unknown, "unused": report.unused}
    folder, written = record_import(results, source="meter", name=name, record=record, state=state)
    print(f"meter:{name} — {arch.stage} checkpoint, {arch.vision} + {arch.text}, fusion {arch.hidden}×"
          f"{arch.fusion_layers} layers, {arch.image_size}px; heads: "
          f"{', '.join([*arch.objectives, *arch.tasks]) or 'none'}")
    print(f"  {report.loaded} tensors loaded; unused by METER's forward (skipped): {len(report.unused)}")
    if report.unknown:
        print(f"  unknown (no counterpart here, skipped): {len(report.unknown)}: " + ", ".join(report.unknown[:10]))
    print(f"  {'recorded' if written else 'already recorded'}: {folder}")
    print(f"  start a grid from it with: pretrain: {{from: meter:{name}}}")
    return 0
