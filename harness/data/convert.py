"""Raw public layouts → ViLT/METER Arrow files (the schemas in :mod:`harness.data.arrow`).

    coco     RAW/dataset_coco.json (Karpathy) + RAW/<filepath>/<filename>
    f30k     RAW/dataset_flickr30k.json (Karpathy) + RAW/flickr30k-images/<filename>
    vqav2    RAW/v2_OpenEnded_mscoco_{train2014,val2014,test2015,test-dev2015}_questions.json,
             RAW/v2_mscoco_{train2014,val2014}_annotations.json, RAW/{train2014,val2014,test2015}/*.jpg
    nlvr2    RAW/{train,dev,test1}.json (JSON lines) + RAW/images/{train/<directory>,dev,test1}/<id>-img{0,1}.png
    snli-ve  RAW/snli_ve_{train,dev,test}.jsonl + RAW/flickr30k-images/<Flikr30kID>
    vg       RAW/annotations/region_descriptions.json + RAW/images/VG_100K{,_2}/<image_id>.jpg → vg.arrow
    sbu      RAW/annot.json ([[url or path, caption], ...]) + RAW/images_train/<any>/<file name> → sbu_N.arrow
    gcc      RAW/{train,val}_annot.json (same form) + RAW/images_{train,val}/<any>/<file name>
             → conceptual_caption_{train,val}_N.arrow

The file names are METER's; web corpora are sharded at 100,000 rows per file as METER shards them. Rows
are written in a stable order (METER shuffles with an unseeded ``random``), so a conversion is reproducible.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from harness.data.arrow import SCHEMAS
from harness.data.vqa import answer_vocabulary, normalize_answer, targets

SNLI_LABELS = {"contradiction": 0, "neutral": 1, "entailment": 2}


class ConvertError(ValueError):
    pass


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise ConvertError(f"{path}: missing ({what})")
    return path


def _progress(items: list[Any], desc: str) -> Iterable[Any]:
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="img", leave=False, mininterval=1.0, disable=None)  # no bars in logs


def write_arrow(path: Path, schema: pa.Schema, rows: Iterator[dict[str, Any]], chunk: int = 512) -> int:
    """Rows → Arrow IPC file (RecordBatchFileWriter), written to a temp name then moved."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    count, buffer = 0, []
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        for row in rows:
            buffer.append(row)
            if len(buffer) == chunk:
                writer.write_batch(pa.RecordBatch.from_pylist(buffer, schema=schema))
                count, buffer = count + len(buffer), []
        if buffer:
            writer.write_batch(pa.RecordBatch.from_pylist(buffer, schema=schema))
            count += len(buffer)
    tmp.replace(path)
    return count


class _Missing:
    """Counts raw images that are not on disk (rows skipped, reported at the end)."""

    def __init__(self) -> None:
        self.paths: list[Path] = []

    def read(self, path: Path) -> bytes | None:
        if not path.is_file():
            self.paths.append(path)
            return None
        return path.read_bytes()


def _karpathy(raw: Path, out: Path, json_name: str, prefix: str, folder: Callable[[dict[str, Any]], Path],
              missing: _Missing) -> dict[str, int]:
    data = json.loads(_need(raw / json_name, "Karpathy split JSON").read_text())
    by_split: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for image in data["images"]:
        by_split[image["split"]].append(image)
    counts = {}
    for split, images in sorted(by_split.items()):
        def rows(images: list[dict[str, Any]] = images, split: str = split) -> Iterator[dict[str, Any]]:
            for im in _progress(images, f"{prefix}{split}"):
                data = missing.read(folder(im) / im["filename"])
                if data is not None:
                    yield {"image": data, "caption": [s["raw"] for s in im["sentences"]],
                           "image_id": str(im.get("cocoid", im.get("imgid", im["filename"]))), "split": split}
        counts[f"{prefix}{split}"] = write_arrow(out / f"{prefix}{split}.arrow", SCHEMAS["caption"], rows())
    return counts


def convert_coco(raw: Path, out: Path, missing: _Missing) -> dict[str, int]:
    return _karpathy(raw, out, "dataset_coco.json", "coco_caption_karpathy_",
                     lambda im: raw / im.get("filepath", ""), missing)


def convert_f30k(raw: Path, out: Path, missing: _Missing) -> dict[str, int]:
    return _karpathy(raw, out, "dataset_flickr30k.json", "f30k_caption_karpathy_",
                     lambda im: raw / "flickr30k-images", missing)


_VQA_SPLITS = {"train": ("train2014", True), "val": ("val2014", True), "test": ("test2015", False),
               "test-dev": ("test-dev2015", False)}


def _vqa_questions(raw: Path, split: str) -> tuple[dict[int, list[dict[str, Any]]], dict[int, dict[str, Any]]]:
    coco_split, annotated = _VQA_SPLITS[split]
    questions = json.loads(_need(raw / f"v2_OpenEnded_mscoco_{coco_split}_questions.json",
                                 f"VQAv2 {split} questions").read_text())["questions"]
    annotations: dict[int, dict[str, Any]] = {}
    if annotated:
        path = _need(raw / f"v2_mscoco_{coco_split}_annotations.json", f"VQAv2 {split} annotations")
        annotations = {a["question_id"]: a for a in json.loads(path.read_text())["annotations"]}
    by_image: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for q in questions:
        by_image[q["image_id"]].append(q)
    return by_image, annotations


def _vqa_rows(raw: Path, split: str, image_ids: list[int], by_image: dict[int, list[dict[str, Any]]],
              annotations: dict[int, dict[str, Any]], vocab: dict[str, int], missing: _Missing,
              arrow_split: str) -> Iterator[dict[str, Any]]:
    folder = "test2015" if split.startswith("test") else _VQA_SPLITS[split][0]
    for image_id in _progress(image_ids, f"vqav2_{arrow_split}"):
        data = missing.read(raw / folder / f"COCO_{folder}_{image_id:012d}.jpg")
        if data is None:
            continue
        qs = by_image[image_id]
        answers, labels, scores = [], [], []
        for q in qs:
            given = [a["answer"] for a in annotations[q["question_id"]]["answers"]] if annotations else []
            ls, ss = targets(given, vocab)
            answers.append([normalize_answer(a) for a in given])
            labels.append(ls)
            scores.append(ss)
        yield {"image": data, "questions": [q["question"] for q in qs], "answers": answers,
               "answer_labels": labels, "answer_scores": scores, "image_id": int(image_id),
               "question_id": [q["question_id"] for q in qs], "split": arrow_split}


def convert_vqav2(raw: Path, out: Path, missing: _Missing, min_count: int = 9, rest_val_images: int = 1000
                  ) -> dict[str, int]:
    """vqav2_{train,val,trainable_val,rest_val,test,test-dev}.arrow and the answer vocabulary
    (majority answers of train+val seen ≥ min_count times; 3,129 for VQAv2 at 9)."""
    splits = {s: _vqa_questions(raw, s) for s in _VQA_SPLITS if s in ("train", "val") or
              (raw / f"v2_OpenEnded_mscoco_{_VQA_SPLITS[s][0]}_questions.json").exists()}
    majors = [a["multiple_choice_answer"] for s in ("train", "val") for a in splits[s][1].values()]
    vocab = answer_vocabulary(majors, min_count)
    out.mkdir(parents=True, exist_ok=True)
    (out / "vqav2_answers.json").write_text(json.dumps(list(vocab)))
    counts = {}
    for split, (by_image, annotated) in splits.items():
        ids = sorted(by_image)
        parts = {split: ids}
        if split == "val":  # ViLT/METER: train on train + trainable_val, validate on the last images
            cut = max(0, len(ids) - rest_val_images)
            parts.update(trainable_val=ids[:cut], rest_val=ids[cut:])
        for name, part in parts.items():
            rows = _vqa_rows(raw, split, part, by_image, annotated, vocab, missing, name)
            counts[f"vqav2_{name}"] = write_arrow(out / f"vqav2_{name}.arrow", SCHEMAS["vqa"], rows)
    return counts


def convert_nlvr2(raw: Path, out: Path, missing: _Missing) -> dict[str, int]:
    counts = {}
    for split in ("train", "dev", "test1"):
        path = raw / f"{split}.json"
        if not path.exists():
            continue
        examples = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

        def rows(examples: list[dict[str, Any]] = examples, split: str = split) -> Iterator[dict[str, Any]]:
            for ex in _progress(examples, f"nlvr2_{split}"):
                stem = ex["identifier"].rsplit("-", 1)[0]
                folder = raw / "images" / split / (str(ex["directory"]) if split == "train" else "")
                pair = [missing.read(folder / f"{stem}-img{k}.png") for k in (0, 1)]
                if None not in pair:
                    yield {"image_0": pair[0], "image_1": pair[1], "questions": [ex["sentence"]],
                           "answers": [str(ex["label"])], "identifier": ex["identifier"]}
        counts[f"nlvr2_{split}"] = write_arrow(out / f"nlvr2_{split}.arrow", SCHEMAS["nlvr2"], rows())
    if not counts:
        raise ConvertError(f"{raw}: no NLVR2 split files (expected train.json, dev.json, test1.json)")
    return counts


def convert_snli_ve(raw: Path, out: Path, missing: _Missing) -> dict[str, int]:
    counts = {}
    for split in ("train", "dev", "test"):
        path = raw / f"snli_ve_{split}.jsonl"
        if not path.exists():
            continue
        by_image: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for line in path.read_text().splitlines():
            if line.strip():
                ex = json.loads(line)
                by_image[ex["Flikr30kID"]].append(ex)

        def rows(by_image: dict[str, list[dict[str, Any]]] = by_image, split: str = split
                 ) -> Iterator[dict[str, Any]]:
            for name in _progress(sorted(by_image), f"snli_{split}"):
                data = missing.read(raw / "flickr30k-images" / name)
                exs = [e for e in by_image[name] if e["gold_label"] in SNLI_LABELS]
                if data is not None and exs:
                    yield {"image": data, "sentences": [[e["sentence1"], e["sentence2"]] for e in exs],
                           "labels": [SNLI_LABELS[e["gold_label"]] for e in exs]}
        counts[f"snli_{split}"] = write_arrow(out / f"snli_{split}.arrow", SCHEMAS["snli"], rows())
    if not counts:
        raise ConvertError(f"{raw}: no SNLI-VE split files (expected snli_ve_{{train,dev,test}}.jsonl)")
    return counts


def convert_vg(raw: Path, out: Path, missing: _Missing) -> dict[str, int]:
    """vg.arrow: one row per image, its region phrases as captions with their boxes."""
    regions = json.loads(_need(raw / "annotations" / "region_descriptions.json",
                               "Visual Genome region descriptions").read_text())
    by_image: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for entry in regions:
        for region in entry["regions"]:
            by_image[int(region["image_id"])].append(region)
    folders = [raw / "images" / "VG_100K", raw / "images" / "VG_100K_2"]

    def image_file(image_id: int) -> Path:
        return next((f / f"{image_id}.jpg" for f in folders if (f / f"{image_id}.jpg").is_file()),
                    folders[0] / f"{image_id}.jpg")

    def rows() -> Iterator[dict[str, Any]]:
        for image_id in _progress(sorted(by_image), "vg"):
            data = missing.read(image_file(image_id))
            if data is not None:
                rs = by_image[image_id]
                yield {"image": data, "caption": [r["phrase"] for r in rs], "width": [r["width"] for r in rs],
                       "height": [r["height"] for r in rs], "x": [r["x"] for r in rs], "y": [r["y"] for r in rs],
                       "image_id": str(image_id)}
    return {"vg": write_arrow(out / "vg.arrow", SCHEMAS["vg"], rows())}


SHARD_ROWS = 100_000  # METER's shard size for SBU and GCC


def _web_captions(raw: Path, out: Path, annot: str, images: str, stem: str, split: str, missing: _Missing,
                  shard_rows: int) -> dict[str, int]:
    """One caption per image from ``[[url or path, caption], ...]``; images found by file name anywhere
    under ``RAW/images`` (METER's layout: one sub-folder level). Shards ``{stem}_0``, ``{stem}_1``, ..."""
    pairs = json.loads(_need(raw / annot, f"{stem} annotations").read_text())
    caption = {str(p[0]).rstrip("/").split("/")[-1]: str(p[1]) for p in pairs}
    on_disk = {p.name: p for p in sorted(_need(raw / images, f"{stem} image folder").glob("*/*")) if p.is_file()}
    names = sorted(caption)
    missing.paths.extend(raw / images / name for name in names if name not in on_disk)
    names = [n for n in names if n in on_disk]
    counts: dict[str, int] = {}
    for shard in range(max(1, -(-len(names) // shard_rows))):
        part = names[shard * shard_rows:(shard + 1) * shard_rows]

        def rows(part: list[str] = part, name: str = f"{stem}_{shard}") -> Iterator[dict[str, Any]]:
            for n in _progress(part, name):
                yield {"image": on_disk[n].read_bytes(), "caption": [caption[n]], "image_id": n, "split": split}
        counts[f"{stem}_{shard}"] = write_arrow(out / f"{stem}_{shard}.arrow", SCHEMAS["caption"],
                                                rows())
    return counts


def convert_sbu(raw: Path, out: Path, missing: _Missing, shard_rows: int = SHARD_ROWS) -> dict[str, int]:
    return _web_captions(raw, out, "annot.json", "images_train", "sbu", "train", missing, shard_rows)


def convert_gcc(raw: Path, out: Path, missing: _Missing, shard_rows: int = SHARD_ROWS) -> dict[str, int]:
    counts: dict[str, int] = {}
    for split in ("train", "val"):
        if split == "train" or (raw / f"{split}_annot.json").exists():
            counts.update(_web_captions(raw, out, f"{split}_annot.json", f"images_{split}",
                                        f"conceptual_caption_{split}", split, missing, shard_rows))
    return counts


CONVERTERS: dict[str, Callable[..., dict[str, int]]] = {
    "coco": convert_coco, "f30k": convert_f30k, "vqav2": convert_vqav2, "nlvr2": convert_nlvr2,
    "snli-ve": convert_snli_ve, "vg": convert_vg, "sbu": convert_sbu, "gcc": convert_gcc,
}
SHARDED = ("sbu", "gcc")


def convert(dataset: str, raw: Path, out: Path, shard_rows: int = SHARD_ROWS, rest_val_images: int = 1000
            ) -> tuple[dict[str, int], list[Path]]:
    """Convert one dataset; returns rows written per file and the raw images that were missing.
    ``shard_rows``: SBU/GCC rows per file; ``rest_val_images``: VQAv2 val images kept out of training."""
    if dataset not in CONVERTERS:
        raise ConvertError(f"no converter for '{dataset}'; known: {', '.join(CONVERTERS)}")
    if not raw.is_dir():
        raise ConvertError(f"--raw {raw}: not a directory")
    missing = _Missing()
    extra: dict[str, int] = {"shard_rows": shard_rows} if dataset in SHARDED else {}
    if dataset == "vqav2":
        extra["rest_val_images"] = rest_val_images
    counts = CONVERTERS[dataset](raw, out, missing, **extra)
    return counts, missing.paths
