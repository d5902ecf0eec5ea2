"""Tiny raw datasets in the public download layouts that ``harness data convert`` reads (see
:mod:`harness.data.convert`), so a rehearsal's Arrow root is written by the converters themselves.

Every dataset, every split METER uses, a few images each: enough rows for a handful of steps at batch 4,
15 retrieval negatives, and VQA answers frequent enough for METER's "seen ≥ 9 times" vocabulary.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

COLOURS = ("red", "green", "blue", "yellow")
SHAPES = ("square", "circle")
ANSWERS = ("yes", "no", "2", "red")


def image_bytes(seed: int, fmt: str = "JPEG") -> bytes:
    """A small picture: a coloured shape on grey, its colour and place drawn from ``seed``."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    img = Image.new("RGB", (48, 40), (128, 128, 128))
    x, y = rng.randrange(0, 24), rng.randrange(0, 16)
    colour = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220), "yellow": (230, 230, 20)}
    ImageDraw.Draw(img).rectangle((x, y, x + 20, y + 20), fill=colour[COLOURS[seed % 4]])
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def _image(path: Path, seed: int, fmt: str = "JPEG") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image_bytes(seed, fmt))


def caption(seed: int, k: int) -> str:
    return f"a {COLOURS[seed % 4]} {SHAPES[(seed + k) % 2]} on the {'left' if k % 2 else 'right'} picture {k}"


def _karpathy(raw: Path, name: str, folder: str, splits: dict[str, int], base: int) -> None:
    images, seed = [], base
    for split, count in splits.items():
        for _ in range(count):
            filename = f"{seed:06d}.jpg"
            _image(raw / folder / filename, seed)
            images.append({"filepath": folder, "filename": filename, "split": split, "cocoid": seed, "imgid": seed,
                           "sentences": [{"raw": caption(seed, k)} for k in range(5)]})
            seed += 1
    (raw / name).write_text(json.dumps({"images": images}))


def coco(raw: Path, n: int) -> None:
    _karpathy(raw, "dataset_coco.json", "val2014", {"train": n, "restval": n, "val": n, "test": n}, 1000)


def f30k(raw: Path, n: int) -> None:
    _karpathy(raw, "dataset_flickr30k.json", "flickr30k-images", {"train": n, "val": n, "test": n}, 2000)


def vqav2(raw: Path, n: int) -> None:
    """Three questions per image; ten human answers, a clear majority so that answers repeat ≥ 9 times."""
    qid = 1
    for split, folder, labelled in (("train2014", "train2014", True), ("val2014", "val2014", True),
                                    ("test2015", "test2015", False), ("test-dev2015", "test2015", False)):
        questions, annotations = [], []
        first = {"train2014": 1, "val2014": 101, "test2015": 201, "test-dev2015": 201 + n}[split]
        for image_id in range(first, first + n):
            _image(raw / folder / f"COCO_{folder}_{image_id:012d}.jpg", image_id)
            for k in range(3):
                questions.append({"image_id": image_id, "question": f"is there a {COLOURS[k]} shape?",
                                  "question_id": qid})
                major = ANSWERS[(image_id + k) % len(ANSWERS)]
                given = [major] * 8 + [ANSWERS[(image_id + k + 1) % len(ANSWERS)]] * 2
                annotations.append({"question_id": qid, "image_id": image_id, "multiple_choice_answer": major,
                                    "answers": [{"answer": a} for a in given]})
                qid += 1
        (raw / f"v2_OpenEnded_mscoco_{split}_questions.json").write_text(json.dumps({"questions": questions}))
        if labelled:
            (raw / f"v2_mscoco_{split}_annotations.json").write_text(json.dumps({"annotations": annotations}))


def nlvr2(raw: Path, n: int) -> None:
    for split in ("train", "dev", "test1"):
        lines = []
        for i in range(n):
            folder = raw / "images" / split / ("7" if split == "train" else "")
            for k in (0, 1):
                _image(folder / f"{split}-{i}-0-img{k}.png", 3000 + 2 * i + k, fmt="PNG")
            lines.append(json.dumps({"identifier": f"{split}-{i}-0-0", "directory": 7, "label": str(i % 2 == 0),
                                     "sentence": f"the left picture has a {COLOURS[i % 4]} shape"}))
        (raw / f"{split}.json").write_text("\n".join(lines) + "\n")


def snli_ve(raw: Path, n: int) -> None:
    labels = ("entailment", "neutral", "contradiction")
    for s, split in enumerate(("train", "dev", "test")):
        lines = []
        for i in range(n):
            name = f"{4000 + 100 * s + i}.jpg"
            _image(raw / "flickr30k-images" / name, 4000 + 100 * s + i)
            for k in range(2):
                lines.append(json.dumps({"Flikr30kID": name, "sentence1": caption(i, 0),
                                         "sentence2": f"there is a {COLOURS[(i + k) % 4]} shape",
                                         "gold_label": labels[(i + k) % 3]}))
        (raw / f"snli_ve_{split}.jsonl").write_text("\n".join(lines) + "\n")


def vg(raw: Path, n: int) -> None:
    regions = []
    for i in range(n):
        image_id = 5000 + i
        _image(raw / "images" / ("VG_100K" if i % 2 else "VG_100K_2") / f"{image_id}.jpg", image_id)
        regions.append({"id": image_id, "regions": [
            {"image_id": image_id, "phrase": caption(image_id, k), "x": 2 * k, "y": k, "width": 20, "height": 20}
            for k in range(3)]})
    (raw / "annotations").mkdir(parents=True, exist_ok=True)
    (raw / "annotations" / "region_descriptions.json").write_text(json.dumps(regions))


def _web(raw: Path, annot: str, images: str, n: int, base: int) -> None:
    pairs = []
    for i in range(n):
        name = f"{base + i}.jpg"
        _image(raw / images / str(i % 2) / name, base + i)
        pairs.append([f"http://images.example/{name}", caption(base + i, 0)])
    (raw / annot).write_text(json.dumps(pairs))


def sbu(raw: Path, n: int) -> None:
    _web(raw, "annot.json", "images_train", n, 6000)


def gcc(raw: Path, n: int) -> None:
    _web(raw, "train_annot.json", "images_train", n, 7000)
    _web(raw, "val_annot.json", "images_val", n, 7500)


WRITERS: dict[str, Callable[[Path, int], None]] = {
    "coco": coco, "f30k": f30k, "vqav2": vqav2, "nlvr2": nlvr2, "snli-ve": snli_ve, "vg": vg, "sbu": sbu,
    "gcc": gcc,
}


def write_raw(dataset: str, raw: Path, n: int = 8, **_: Any) -> Path:
    raw.mkdir(parents=True, exist_ok=True)
    WRITERS[dataset](raw, n)
    return raw
