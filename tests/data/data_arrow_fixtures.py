"""Tiny ViLT/METER Arrow files written the way METER's own writers (``meter/utils/write_*.py``) write them:
rows as lists → ``pandas.DataFrame(rows, columns=...)`` → ``pyarrow.Table.from_pandas`` → ``RecordBatchFileWriter``.
pyarrow then infers the types from the data: an unlabelled VQA split's empty answer lists become ``list<null>``
(and with pandas ≥ 3 strings become ``large_string``). The schemas below only name the columns and their
order. Images are made with PIL (no downloads)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
from PIL import Image

CAPTION = pa.schema([("image", pa.binary()), ("caption", pa.list_(pa.string())), ("image_id", pa.string()),
                     ("split", pa.string())])
VG = pa.schema([("image", pa.binary()), ("caption", pa.list_(pa.string())), ("width", pa.list_(pa.int64())),
                ("height", pa.list_(pa.int64())), ("x", pa.list_(pa.int64())), ("y", pa.list_(pa.int64())),
                ("image_id", pa.string())])
VQA = pa.schema([("image", pa.binary()), ("questions", pa.list_(pa.string())),
                 ("answers", pa.list_(pa.list_(pa.string()))), ("answer_labels", pa.list_(pa.list_(pa.int64()))),
                 ("answer_scores", pa.list_(pa.list_(pa.float64()))), ("image_id", pa.int64()),
                 ("question_id", pa.list_(pa.int64())), ("split", pa.string())])
NLVR2 = pa.schema([("image_0", pa.binary()), ("image_1", pa.binary()), ("questions", pa.list_(pa.string())),
                   ("answers", pa.list_(pa.string())), ("identifier", pa.string())])
SNLI = pa.schema([("image", pa.binary()), ("sentences", pa.list_(pa.list_(pa.string()))),
                  ("labels", pa.list_(pa.int64()))])


def image_bytes(seed: int, size: tuple[int, int] = (40, 30), fmt: str = "JPEG") -> bytes:
    colour = ((seed * 70) % 256, (seed * 30 + 90) % 256, (seed * 150) % 256)
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format=fmt)
    return buf.getvalue()


def frame(schema: pa.Schema, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The DataFrame METER's writers build: one list per row, columns named."""
    return pd.DataFrame([[row[name] for name in schema.names] for row in rows], columns=schema.names)


def write_frame(path: Path, df: pd.DataFrame) -> Path:
    """As METER: ``pa.Table.from_pandas(df)``, then one ``write_table`` into a RecordBatchFileWriter."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(df)
    with pa.OSFile(str(path), "wb") as sink, pa.RecordBatchFileWriter(sink, table.schema) as writer:
        writer.write_table(table)
    return path


def write(path: Path, schema: pa.Schema, rows: list[dict[str, Any]]) -> Path:
    return write_frame(path, frame(schema, rows))


def write_vqa_val(root: Path, rows: list[dict[str, Any]], rest: int) -> None:
    """vqav2_val plus METER's split of it: the val file read back into pandas, the last ``rest`` rows
    → vqav2_rest_val, the others → vqav2_trainable_val (pandas metadata records the slice)."""
    write(root / "vqav2_val.arrow", VQA, rows)
    val = pa.ipc.open_file(pa.memory_map(str(root / "vqav2_val.arrow"), "r")).read_all().to_pandas()
    write_frame(root / "vqav2_trainable_val.arrow", val[:-rest])
    write_frame(root / "vqav2_rest_val.arrow", val[-rest:])


def caption_rows(n: int, per: int = 2, split: str = "train") -> list[dict[str, Any]]:
    return [{"image": image_bytes(i), "caption": [f"image {i} caption {k}" for k in range(per)],
             "image_id": str(i), "split": split} for i in range(n)]


def vqa_rows(n: int, with_answers: bool = True) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        rows.append({
            "image": image_bytes(i), "questions": [f"what is {i}?", f"is it {i}?"],
            "answers": [["yes", "no"], ["2"]] if with_answers else [],
            "answer_labels": [[0, 1], [2]] if with_answers else [],
            "answer_scores": [[1.0, 0.3], [0.9]] if with_answers else [],
            "image_id": 100 + i, "question_id": [1000 + 2 * i, 1001 + 2 * i], "split": "train",
        })
    return rows


def nlvr2_rows(n: int) -> list[dict[str, Any]]:
    return [{"image_0": image_bytes(i), "image_1": image_bytes(i + 50), "questions": [f"statement {i}"],
             "answers": ["True" if i % 2 else "False"], "identifier": f"dev-{i}-0-0"} for i in range(n)]


def snli_rows(n: int) -> list[dict[str, Any]]:
    return [{"image": image_bytes(i), "sentences": [[f"premise {i}", f"hypothesis {i} a"],
                                                    [f"premise {i}", f"hypothesis {i} b"]],
             "labels": [2, i % 3]} for i in range(n)]


def make_root(root: Path, n: int = 4) -> Path:
    """Every file a METER fine-tuning/pre-training run reads, tiny."""
    for split in ("train", "restval", "val", "test"):
        write(root / f"coco_caption_karpathy_{split}.arrow", CAPTION, caption_rows(n, split=split))
    for split in ("train", "val", "test"):
        write(root / f"f30k_caption_karpathy_{split}.arrow", CAPTION, caption_rows(n, per=3, split=split))
    for shard in range(2):
        write(root / f"sbu_{shard}.arrow", CAPTION, caption_rows(n, per=1))
        write(root / f"conceptual_caption_train_{shard}.arrow", CAPTION, caption_rows(n, per=1))
    vg = [{**r, "width": [5, 6], "height": [5, 6], "x": [0, 1], "y": [0, 1]} for r in caption_rows(n)]
    for r in vg:
        r.pop("split")
    write(root / "vg.arrow", VG, vg)
    write(root / "vqav2_train.arrow", VQA, vqa_rows(n))
    write_vqa_val(root, vqa_rows(2 * n), rest=n)
    for split in ("test", "test-dev"):
        write(root / f"vqav2_{split}.arrow", VQA, vqa_rows(n, with_answers=False))
    for split in ("train", "dev", "test1"):
        write(root / f"nlvr2_{split}.arrow", NLVR2, nlvr2_rows(n))
    for split in ("train", "dev", "test"):
        write(root / f"snli_{split}.arrow", SNLI, snli_rows(n))
    return root
