"""`harness data check DIR`: which ViLT/METER Arrow files are present, readable, well-formed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.data.arrow import COLUMNS, DEFAULT_SPLITS, ArrowImages, DataError, open_table, split_files

# File-name prefix → kind, longest first so "vqav2_" is not taken for something shorter.
_PREFIXES = (("coco_caption_karpathy_", "caption"), ("f30k_caption_karpathy_", "caption"),
             ("conceptual_caption_", "caption"), ("sbu_", "caption"), ("vg", "vg"), ("vqav2_", "vqa"),
             ("nlvr2_", "nlvr2"), ("snli_", "snli"))
_IMAGE_COLUMNS = {"nlvr2": ("image_0", "image_1")}


@dataclass
class FileReport:
    path: Path
    kind: str | None
    rows: int = 0
    decoded: int = 0
    tried: int = 0
    error: str | None = None

    def line(self) -> str:
        if self.error:
            return f"FAIL {self.path.name}: {self.error}"
        if self.kind is None:
            return f"skip {self.path.name}: not a ViLT/METER file name"
        ok = "ok  " if self.decoded == self.tried else "WARN"
        return f"{ok} {self.path.name}: {self.kind}, {self.rows} rows, {self.decoded}/{self.tried} sample images decode"


def kind_of(name: str) -> str | None:
    return next((kind for prefix, kind in _PREFIXES if name.startswith(prefix)), None)


def check_file(path: Path, sample: int = 8) -> FileReport:
    report = FileReport(path, kind_of(path.name))
    if report.kind is None:
        return report
    try:
        table = open_table(path, report.kind)
    except DataError as exc:
        report.error = str(exc).removeprefix(f"{path}: ")
        return report
    report.rows = table.num_rows
    if report.rows == 0:
        report.error = f"no rows (expected columns {', '.join(COLUMNS[report.kind])} with data)"
        return report
    step = max(1, report.rows // sample)
    for column in _IMAGE_COLUMNS.get(report.kind, ("image",)):
        images = ArrowImages(table, column, path)
        for row in range(0, report.rows, step)[:sample]:
            report.tried += 1
            report.decoded += images.load(row) is not None
    return report


def check_root(root: Path, sample: int = 8) -> list[FileReport]:
    if not root.is_dir():
        raise DataError(f"{root}: not a directory")
    return [check_file(p, sample) for p in sorted(root.glob("*.arrow"))]


def split_coverage(root: Path) -> list[str]:
    """One line per dataset split METER uses: complete, or the first missing file.
    Datasets with no file at all under root are summarised as absent."""
    lines = []
    for key in DEFAULT_SPLITS:
        dataset, split = key.split("/")
        try:
            files = split_files(root, dataset, split)
            lines.append(f"ok   {key}: {len(files)} file(s)")
        except DataError as exc:
            lines.append(f"miss {key}: {str(exc).split(' (')[0]}")
    return lines
