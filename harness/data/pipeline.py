"""Data → trainer API. The trainer calls only these five functions.

    info = task_info(exp, "vqa")                     # {"num_answers": 14, "train_size": ..., ...}
    for batch in train_batches(exp, stage="finetune", task="vqa", tokenizer=tok, image_size=64,
                               mean=m, std=s, per_device_batch=32, seed=0):
        out = model(batch)                           # batch == {"vqa": {...sub-batch...}}

Sources: ``exp.data.source == "synthetic"`` uses the synthetic benchmark for every stage and
task (dataset names are then ignored); ``"arrow"`` reads ViLT/METER Arrow files under
``exp.data.root`` (pre-training: ``exp.pretrain.datasets``; fine-tuning:
``exp.finetune[task].dataset`` or the task's default dataset).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from harness.data.collate import ImageTransform, tokenize
from harness.data.loaders import Collator, KeySampler, SeededDataset
from harness.data.sources import TaskTable, concat_tables, synthetic_tables
from harness.registry import default_dataset

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=16)
def _synthetic_split(spec_json: str, split: str, image_size: int) -> Any:
    from harness.data.config import SyntheticSpec
    from harness.data.synthetic_data import build_split

    return build_split(SyntheticSpec.model_validate(json.loads(spec_json)), split, image_size)


def load_table(exp: Any, task: str, split: str, image_size: int, dataset: str | None = None) -> TaskTable:
    """Samples of `task` ("pretrain" or a fine-tuning task) for `split` ("train", "val", "test", ...)."""
    data = exp.data
    form = _data_form(task)
    if data.source == "synthetic":
        spec_json = data.synthetic.model_dump_json()
        return synthetic_tables(_synthetic_split(spec_json, split, image_size), form)
    from harness.data.arrow import arrow_table

    if task == "pretrain":
        names = exp.pretrain.datasets if exp.pretrain is not None else ("coco", "vg", "sbu", "gcc")
        return concat_tables([arrow_table(data, name, "pretrain", split) for name in names])
    ft = exp.finetune.get(task)
    name = dataset or (ft.dataset if ft is not None and ft.dataset else None) or default_dataset(form)
    return arrow_table(data, name, form, split)


def _data_form(task: str) -> str:
    """Whose samples a task reads: its own, or another task's (a task registered with ``reads=``)."""
    if task == "pretrain":
        return task
    from harness.registry import TASKS

    return TASKS.get(task).meta.form(task) if task in TASKS else task


def task_info(exp: Any, task: str) -> dict[str, Any]:
    """What heads and schedules need: {"train_size"} = training samples per epoch (one per caption /
    question / statement), plus what the task's plug-in reads off its table (``Task.info``: VQA's
    answers, retrieval's negatives, ...)."""
    from harness.registry import TASKS

    size = exp.data.synthetic.image_size if exp.data.source == "synthetic" else 16
    table = load_table(exp, task, "train", size)
    return {"train_size": len(table), **TASKS.build_plugin(task).info(table, exp.finetune.get(task))}


def _loader(dataset: SeededDataset, sampler: KeySampler, collate: Collator, workers: int) -> Iterable[Any]:
    # Pinned host memory on GPU: the trainer's non_blocking copies then overlap the previous step.
    extra: dict[str, Any] = {"pin_memory": torch.cuda.is_available()}
    if workers > 0:
        extra.update(num_workers=workers, multiprocessing_context="fork", prefetch_factor=4)
    return torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, **extra)


def _drain(loader: Iterable[dict[str, Any]], what: str) -> Iterator[dict[str, Any]]:
    """Yield batches without the bookkeeping keys; report skipped images when done."""
    skipped: list[str] = []
    try:
        for batch in loader:
            skipped.extend(batch.pop("_skipped", []))
            if not batch.pop("_empty", False):
                yield batch
    finally:
        if skipped:
            log.warning("%s: skipped %d undecodable image(s): %s%s", what, len(skipped), ", ".join(skipped[:10]),
                        " …" if len(skipped) > 10 else "")


def text_length(exp: Any, task: str) -> int:
    """Tokens per text for ``task`` ("pretrain" or a fine-tuning task): the task's own
    ``max_text_len`` (METER: 40 for retrieval, 50 elsewhere), else ``model.max_text_len``."""
    fin = exp.finetune.get(task)
    return int(fin.max_text_len) if fin is not None and fin.max_text_len is not None else int(exp.model.max_text_len)


def randaugment(exp: Any, stage: str, task: str | None) -> bool:
    """RandAugment on training images: ``data.randaugment`` (every stage) or the fine-tuning task's own."""
    fin = exp.finetune.get(task) if stage == "finetune" and task else None
    return bool(exp.data.randaugment or (fin is not None and fin.randaugment))


def train_batches(exp: Any, *, stage: str, task: str | None, tokenizer: Any, image_size: int, mean: Any, std: Any,
                  per_device_batch: int, seed: int, process_index: int = 0,
                  num_processes: int = 1) -> Iterator[dict[str, dict[str, torch.Tensor]]]:
    """Infinite stream of training batches for this process (the trainer counts steps).

    pretrain: {objective: sub_batch} for each of exp.pretrain.objectives — "mlm" has masked
    input_ids + mlm_labels (whole-word, 15%, 80/10/10); "itm" has images swapped for a random
    other image with p=itm_neg_prob + itm_labels; other objectives get the clean pairs.
    finetune: {task: sub_batch} — vqa: vqa_targets Float[B,A], question_id; nlvr2:
    pixel_values_2, labels; snli-ve: labels; retrieval: input_ids/attention_mask [B,1+k,L]
    (positive first). Every sub-batch has input_ids, attention_mask, pixel_values, index.
    Same seed → same samples in the same order, whatever the model."""
    name = "pretrain" if stage == "pretrain" else task
    if name is None:
        raise ValueError("train_batches: a fine-tuning stage needs a task")
    table = load_table(exp, name, "train", image_size)
    pre = exp.pretrain
    objectives = tuple(pre.objectives) if stage == "pretrain" and pre is not None else ()
    aux = _sampler_draw(objectives if stage == "pretrain" else (name,), pretrain=stage == "pretrain")
    fin = exp.finetune.get(name) if stage == "finetune" else None
    sampler = KeySampler(table, per_device_batch, seed, process_index, num_processes, aux=aux,
                         itm_prob=pre.itm_neg_prob if pre is not None else 0.5,
                         negatives=fin.negatives if fin is not None else 15,
                         itm_law=pre.itm_negatives if pre is not None else "bernoulli",
                         negatives_from=fin.negatives_from if fin is not None else "other-images",
                         retrieval_itm=fin is not None and fin.loss == "itm+irtr")
    info_answers = len(table.info.get("answers", ())) or int(table.info.get("num_answers", 0))
    collate = Collator(task=name, tokenizer=tokenizer, max_len=text_length(exp, name), objectives=objectives,
                       mlm_prob=pre.mlm_prob if pre is not None else 0.15, num_answers=info_answers,
                       mlm_masking=pre.mlm_masking if pre is not None else "whole-word")
    transform = ImageTransform(image_size, mean, std, randaugment=randaugment(exp, stage, task))
    dataset = SeededDataset(table, transform, train=True)
    return _drain(_loader(dataset, sampler, collate, exp.data.num_workers), f"{name}/train")


def _sampler_draw(names: tuple[str, ...], *, pretrain: bool) -> str | None:
    """What the sampler draws per sample for these objectives/tasks (their plug-ins say)."""
    from harness.registry import OBJECTIVES, TASKS

    registry = OBJECTIVES if pretrain else TASKS
    draws = [registry.build_plugin(n).sampler_draw for n in names if n in registry]
    return next((d for d in draws if d), None)


def eval_batches(exp: Any, *, task: str, split: str, tokenizer: Any, image_size: int, mean: Any, std: Any,
                 batch_size: int) -> Iterator[dict[str, torch.Tensor]]:
    """One pass over `split`, in order, as flat sub-batches of the task's training layout
    (vqa: vqa_targets — zeros for unlabelled test splits — and question_id; nlvr2/snli-ve:
    labels; "pretrain": clean pairs). Retrieval is evaluated with retrieval_eval_set."""
    if task == "retrieval":
        raise ValueError("retrieval is evaluated with retrieval_eval_set(), not eval_batches()")
    table = load_table(exp, task, split, image_size)
    sampler = KeySampler(table, batch_size, 0, shuffle=False, infinite=False, drop_last=False)
    num_answers = len(table.info.get("answers", ())) or int(table.info.get("num_answers", 0))
    collate = Collator(task=task, tokenizer=tokenizer, max_len=text_length(exp, task), num_answers=num_answers,
                       nested=False, objectives=())
    if task == "pretrain":
        collate.task, collate.nested = "eval-pairs", False
    dataset = SeededDataset(table, ImageTransform(image_size, mean, std), train=False)
    return _drain(_loader(dataset, sampler, collate, exp.data.num_workers), f"{task}/{split}")


@dataclass
class RetrievalEvalSet:
    """All images and all captions of a split. ``text_to_image[t]`` is caption t's image row;
    ``pixel_values`` is Float[NI,3,H,W], or, for sets too big for memory, an iterable of
    Float[b,3,H,W] chunks in image order (``num_images`` tells how many)."""

    pixel_values: Any
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    text_to_image: list[int]
    num_images: int


def retrieval_eval_set(exp: Any, *, split: str, tokenizer: Any, image_size: int, mean: Any, std: Any,
                       dataset: str | None = None, max_bytes: int = 2 << 30) -> RetrievalEvalSet:
    table = load_table(exp, "retrieval", split, image_size, dataset=dataset)
    transform = ImageTransform(image_size, mean, std)
    # Images that fail to decode are dropped with their captions; rows are renumbered.
    keep = [j for j in range(table.num_images)]
    enc = tokenize(tokenizer, [table.text(i) for i in range(len(table))], text_length(exp, "retrieval"))
    text_to_image = [int(j) for j in table.image_of]
    images = _ImageChunks(table, transform, keep)
    if len(keep) * 3 * image_size * image_size * 4 <= max_bytes:
        pixel_values: Any = torch.cat(list(images)) if keep else torch.empty(0, 3, image_size, image_size)
        keep_rows = images.kept
        remap = {old: new for new, old in enumerate(keep_rows)}
        texts = [t for t, j in enumerate(text_to_image) if j in remap]
        return RetrievalEvalSet(pixel_values, enc["input_ids"][texts], enc["attention_mask"][texts],
                                [remap[text_to_image[t]] for t in texts], len(keep_rows))
    return RetrievalEvalSet(images, enc["input_ids"], enc["attention_mask"], text_to_image, len(keep))


class _ImageChunks:
    """Iterates transformed images in chunks; remembers which decoded (``kept``)."""

    def __init__(self, table: TaskTable, transform: ImageTransform, rows: list[int], chunk: int = 64) -> None:
        self.table, self.transform, self.rows, self.chunk = table, transform, rows, chunk
        self.kept: list[int] = []

    def __iter__(self) -> Iterator[torch.Tensor]:
        self.kept, skipped = [], []
        for start in range(0, len(self.rows), self.chunk):
            tensors = []
            for j in self.rows[start: start + self.chunk]:
                raw = self.table.images.load(j)
                if raw is None:
                    skipped.append(self.table.images.where(j))
                    continue
                self.kept.append(j)
                tensors.append(self.transform(raw))
            if tensors:
                yield torch.stack(tensors)
        if skipped:
            log.warning("retrieval eval: skipped %d undecodable image(s): %s", len(skipped), ", ".join(skipped[:10]))


def baselines(exp: Any, task: str) -> dict[str, float]:
    """{"chance", "blind"} on the synthetic test split; {} for real data (no such baselines)."""
    if exp.data.source != "synthetic" or _data_form(task) != task:
        return {}  # a task reading another task's samples labels them its own way: no known baseline
    from harness.data.synthetic_data import baselines_for

    return baselines_for(exp.data.synthetic, task)
