"""Readers for the ViLT/METER Arrow files (memory-mapped, images decoded lazily).

Each file is an Arrow IPC file; one row = one image with all its texts; we yield one sample
per caption / question / statement / hypothesis, as METER does. Columns per kind:

    caption  coco_caption_karpathy_*, f30k_caption_karpathy_*, sbu_N, conceptual_caption_*_N:
             image binary, caption list<string>, image_id string, split string
    vg       vg.arrow: image, caption list<string>, width, height, x, y list<int64>, image_id string
    vqa      vqav2_*: image, questions list<string>, answers list<list<string>>,
             answer_labels list<list<int64>>, answer_scores list<list<double>>, image_id int64,
             question_id list<int64>, split string (answer columns empty for test splits)
    nlvr2    nlvr2_*: image_0, image_1 binary, questions list<string>, answers list<string>
             ("True"/"False"), identifier string
    snli     snli_*: image, sentences list<list<string>> ([premise, hypothesis]), labels list<int64>

Missing file / shard gap / missing column / empty split → ``DataError`` naming the file and
what was expected. An image that does not decode → the sample is skipped and reported.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from harness.data.sources import TaskTable, concat_tables
from harness.data.splits import ARROW_FILES

_STRINGS, _INTS = pa.list_(pa.string()), pa.list_(pa.int64())
# The canonical column types per kind. Files written the way ViLT's/METER's own writers write them
# (pandas DataFrame → pyarrow) infer types from the data: an unlabelled VQA split's answer lists are all
# empty, so pyarrow types them list<null>; pandas also adds ``__index_level_0__`` to sliced frames.
SCHEMAS: dict[str, pa.Schema] = {
    "caption": pa.schema([("image", pa.binary()), ("caption", _STRINGS), ("image_id", pa.string()),
                          ("split", pa.string())]),
    "vg": pa.schema([("image", pa.binary()), ("caption", _STRINGS), ("width", _INTS), ("height", _INTS),
                     ("x", _INTS), ("y", _INTS), ("image_id", pa.string())]),
    "vqa": pa.schema([("image", pa.binary()), ("questions", _STRINGS), ("answers", pa.list_(_STRINGS)),
                      ("answer_labels", pa.list_(_INTS)), ("answer_scores", pa.list_(pa.list_(pa.float64()))),
                      ("image_id", pa.int64()), ("question_id", _INTS), ("split", pa.string())]),
    "nlvr2": pa.schema([("image_0", pa.binary()), ("image_1", pa.binary()), ("questions", _STRINGS),
                        ("answers", _STRINGS), ("identifier", pa.string())]),
    "snli": pa.schema([("image", pa.binary()), ("sentences", pa.list_(_STRINGS)), ("labels", _INTS)]),
}
# Columns a reader needs (VG's region boxes are not used).
COLUMNS: dict[str, tuple[str, ...]] = {
    **{kind: tuple(schema.names) for kind, schema in SCHEMAS.items()},
    "vg": ("image", "caption", "image_id"),
}
KIND = {"coco": "caption", "f30k": "caption", "sbu": "caption", "gcc": "caption", "vg": "vg",
        "vqav2": "vqa", "nlvr2": "nlvr2", "snli-ve": "snli"}
# "dataset/split" → file stems, from the dataset catalog's table (where the registry's metadata reads it too).
DEFAULT_SPLITS: dict[str, tuple[str, ...]] = {
    f"{dataset}/{split}": stems for dataset, splits in ARROW_FILES.items() for split, stems in splits.items()}
VQA_VOCAB_FILE = "vqav2_answers.json"  # written by `harness data convert vqav2`: answer list, label order
VQA_DEFAULT_ANSWERS = 3129


class DataError(ValueError):
    """A data root that does not hold what a split needs."""


def split_files(root: Path, dataset: str, split: str,
                overrides: dict[str, tuple[str, ...]] | None = None) -> list[Path]:
    """The Arrow files of one split, shards expanded and checked for gaps."""
    key = f"{dataset}/{split}"
    stems = (overrides or {}).get(key) or DEFAULT_SPLITS.get(key)
    if stems is None:
        known = sorted(k.split("/")[1] for k in DEFAULT_SPLITS if k.startswith(dataset + "/"))
        raise DataError(f"dataset '{dataset}' has no split '{split}' (known: {', '.join(known) or 'none'}); "
                        f"set data.splits['{key}'] to a list of file stems")
    files: list[Path] = []
    for stem in stems:
        files.extend(_shards(root, stem) if "{i}" in stem else [root / f"{stem}.arrow"])
    for path in files:
        if not path.is_file():
            raise DataError(f"{path}: missing Arrow file for {key} (expected files: "
                            f"{', '.join(s + '.arrow' for s in stems)} under {root})")
    return files


def _shards(root: Path, stem: str) -> list[Path]:
    pattern = re.compile(re.escape(stem).replace(r"\{i\}", r"(\d+)") + r"\.arrow$")
    found = sorted((int(m.group(1)), p) for p in root.glob("*.arrow") if (m := pattern.match(p.name)))
    if not found:
        raise DataError(f"{root / stem.format(i=0)}.arrow: missing (no {stem.format(i='N')}.arrow shards in {root})")
    expected = list(range(found[-1][0] + 1))
    have = {i for i, _ in found}
    gaps = [i for i in expected if i not in have]
    if gaps:  # METER's reader silently misaligns here; we name the hole
        raise DataError(f"{root / stem.format(i=gaps[0])}.arrow: missing shard "
                        f"({len(gaps)} missing of {stem.format(i=0)}..{stem.format(i=expected[-1])})")
    return [p for _, p in found]


def open_table(path: Path, kind: str) -> pa.Table:
    """Memory-mapped table, columns checked against the kind's schema."""
    try:
        table = pa.ipc.open_file(pa.memory_map(str(path), "r")).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: not a readable Arrow IPC file ({exc})") from None
    missing = [c for c in COLUMNS[kind] if c not in table.column_names]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; a {kind} file has columns "
                        f"{', '.join(COLUMNS[kind])} (found: {', '.join(table.column_names)})")
    return _conform(table, SCHEMAS[kind], path)


def _has_null_type(kind: pa.DataType) -> bool:
    while pa.types.is_list(kind) or pa.types.is_large_list(kind):
        kind = kind.value_type
    return pa.types.is_null(kind)


def _conform(table: pa.Table, schema: pa.Schema, path: Path) -> pa.Table:
    """Columns whose type pyarrow could not infer (every list empty → ``list<null>``, every value None →
    ``null``) get the canonical type; their values are all null or empty, so the cast loses nothing."""
    for index, name in enumerate(table.column_names):
        if name in schema.names and _has_null_type(table.schema.field(index).type):
            target = schema.field(name).type
            try:
                table = table.set_column(index, name, table.column(index).cast(target))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise DataError(f"{path}: column {name} of type {table.schema.field(index).type} "
                                f"cannot be read as {target} ({exc})") from None
    return table


class ArrowImages:
    """Encoded images in one binary column, decoded on access (PIL, RGB)."""

    def __init__(self, table: pa.Table, column: str, path: Path) -> None:
        self.column = table.column(column)
        self.path = path

    def __len__(self) -> int:
        return len(self.column)

    def load(self, index: int) -> Any:
        from PIL import Image

        try:
            data = self.column[index].as_py()
            with Image.open(io.BytesIO(data)) as img:
                return img.convert("RGB")
        except Exception:  # any decoder failure: skipped and counted by the caller
            return None

    def where(self, index: int) -> str:
        return f"{self.path.name} row {index}"


def _flat(column: pa.ChunkedArray) -> pa.Array:
    return pc.list_flatten(column).combine_chunks() if column.num_chunks else pa.array([], pa.string())


def _rows_of(column: pa.ChunkedArray) -> np.ndarray:
    lengths = pc.fill_null(pc.list_value_length(column), 0).to_numpy(zero_copy_only=False)
    return np.repeat(np.arange(len(lengths)), lengths)


def _file_table(path: Path, kind: str, task: str, vocab_size: int) -> TaskTable:
    t = open_table(path, kind)
    if kind in ("caption", "vg"):
        texts = _flat(t.column("caption"))
        return TaskTable(task, ArrowImages(t, "image", path), _rows_of(t.column("caption")),
                         text=lambda i: texts[i].as_py())
    if kind == "vqa":
        return _vqa_table(t, path, task, vocab_size)
    if kind == "nlvr2":
        texts, answers = _flat(t.column("questions")), _flat(t.column("answers"))
        rows = _rows_of(t.column("questions"))
        return TaskTable(task, ArrowImages(t, "image_0", path), rows, text=lambda i: texts[i].as_py(),
                         extra=lambda i: {"label": int(str(answers[i].as_py()) == "True"), "id": i},
                         images_2=ArrowImages(t, "image_1", path), image2_of=rows)
    pairs, labels = _flat(t.column("sentences")), _flat(t.column("labels"))
    return TaskTable(task, ArrowImages(t, "image", path), _rows_of(t.column("sentences")),
                     text=lambda i: pairs[i].as_py()[-1], extra=lambda i: {"label": int(labels[i].as_py()), "id": i})


def _vqa_table(t: pa.Table, path: Path, task: str, vocab_size: int) -> TaskTable:
    questions, qids = _flat(t.column("questions")), _flat(t.column("question_id"))
    labels, scores = _flat(t.column("answer_labels")), _flat(t.column("answer_scores"))

    def extra(i: int) -> dict[str, Any]:
        has = i < len(labels)  # test splits carry no answers
        return {"answer_labels": (labels[i].as_py() or []) if has else [],
                "answer_scores": (scores[i].as_py() or []) if has else [],
                "question_id": int(qids[i].as_py()) if i < len(qids) else i}

    return TaskTable(task, ArrowImages(t, "image", path), _rows_of(t.column("questions")),
                     text=lambda i: questions[i].as_py(), extra=extra, info={"num_answers": vocab_size})


def _vqa_label_bound(files: list[Path]) -> int:
    """Without our vocabulary file: ViLT's fixed 3,129 classes, or more if the labels say so."""
    top = -1
    for path in files:
        labels = pc.list_flatten(pc.list_flatten(open_table(path, "vqa").column("answer_labels")))
        value = pc.max(labels).as_py() if len(labels) else None
        top = max(top, value if value is not None else -1)
    return max(VQA_DEFAULT_ANSWERS, top + 1)


def vqa_vocabulary(root: Path) -> list[str] | None:
    path = root / VQA_VOCAB_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def arrow_table(data: Any, dataset: str, task: str, split: str) -> TaskTable:
    """TaskTable over a dataset's split under ``data.root`` (a DataSpec)."""
    if dataset not in KIND:
        raise DataError(f"dataset '{dataset}' has no Arrow reader; known: {', '.join(sorted(KIND))}")
    root = Path(data.root)
    if not root.is_dir():
        raise DataError(f"data.root {root} is not a directory")
    files = split_files(root, dataset, split, dict(data.splits))
    answers = vqa_vocabulary(root) if KIND[dataset] == "vqa" else None
    vocab_size = len(answers) if answers else _vqa_label_bound(files) if KIND[dataset] == "vqa" else 0
    tables = [_file_table(p, KIND[dataset], task, vocab_size) for p in files]
    table = concat_tables(tables)
    if len(table) == 0:
        raise DataError(f"{dataset}/{split} is empty: no samples in {', '.join(str(p) for p in files)}")
    if answers:
        table.info["answers"] = tuple(answers)
    table.info["files"] = [str(p) for p in files]
    return table
