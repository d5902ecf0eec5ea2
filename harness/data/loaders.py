"""Torch side of the pipeline: the sample dataset, the deterministic sharded batch sampler,
and the collators that build the batch layouts of harness/README.md ("Batches")."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from harness.data.collate import ImageTransform, tokenize
from harness.data.sources import TaskTable

Key = tuple[int, Any, int]  # (sample index, auxiliary draw, batch seed)


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers (stable across processes, unlike hash())."""
    value = 0x9E3779B97F4A7C15
    for p in parts:
        value = (value * 6364136223846793005 + (int(p) & 0xFFFFFFFFFFFF) + 1442695040888963407) % (1 << 63)
    return value


@dataclass
class KeySampler:
    """Batches of keys for one process. Every epoch is a permutation drawn from (seed, epoch);
    a global batch of per_device × num_processes is cut into per-process slices, so all cells of
    a grid with the same seed see the same samples in the same order.

    aux: "itm" draws, per sample, a random OTHER image with probability itm_prob (-1 = keep), or with
    itm_law "meter" exactly ⌊b/2⌋ positives per batch of b and, for the rest, the image of any random
    caption (METER's compute_itm); "retrieval" draws `negatives` captions of other images (with
    negatives_from "any": of any image, as METER's draw_false_text); None draws nothing."""

    table: TaskTable
    per_device: int
    seed: int
    process_index: int = 0
    num_processes: int = 1
    shuffle: bool = True
    infinite: bool = True
    drop_last: bool = True
    aux: str | None = None
    itm_prob: float = 0.5
    negatives: int = 15
    itm_law: str = "bernoulli"
    negatives_from: str = "other-images"
    retrieval_itm: bool = False  # retrieval also draws METER's ITM negative image (finetune loss itm+irtr)

    def __iter__(self) -> Iterator[list[Key]]:
        n, global_batch = len(self.table), self.per_device * self.num_processes
        if n == 0:
            raise ValueError(f"no samples for task '{self.table.task}'")
        epoch = 0
        while True:
            g = torch.Generator().manual_seed(mix_seed(self.seed, epoch))
            order = torch.randperm(n, generator=g) if self.shuffle else torch.arange(n)
            if self.drop_last and n < global_batch:  # tiny data: wrap around to fill one batch
                order = order.repeat(math.ceil(global_batch / n))
            stop = len(order) - global_batch + 1 if self.drop_last else len(order)
            for b, start in enumerate(range(0, max(stop, 0), global_batch)):
                mine = order[start + self.process_index * self.per_device:][: self.per_device]
                if len(mine) == 0:
                    continue
                batch_seed = mix_seed(self.seed, epoch, b, self.process_index)
                if self.aux == "retrieval" and self.retrieval_itm:
                    draws = self._meter_itm(len(mine), g)
                    yield [(int(i), {"texts": self._aux(int(i), g), "itm": d}, batch_seed)
                           for i, d in zip(mine, draws, strict=True)]
                elif self.aux == "itm" and self.itm_law == "meter":
                    yield list(zip((int(i) for i in mine), self._meter_itm(len(mine), g), [batch_seed] * len(mine),
                                   strict=True))
                else:
                    yield [(int(i), self._aux(int(i), g), batch_seed) for i in mine]
            epoch += 1
            if not self.infinite:
                return

    def _meter_itm(self, size: int, g: torch.Generator) -> list[int]:
        """METER's ITM draw for one per-device batch: ⌊size/2⌋ positives (-1) at random places;
        each other sample gets the image of a uniformly random caption of the split."""
        positives = torch.zeros(size, dtype=torch.bool)
        positives[: size // 2] = True
        positives = positives[torch.randperm(size, generator=g)]
        return [-1 if keep else int(self.table.image_of[int(torch.randint(len(self.table), (1,), generator=g))])
                for keep in positives.tolist()]

    def _aux(self, i: int, g: torch.Generator) -> Any:
        own = int(self.table.image_of[i])
        if self.aux == "itm":
            if self.table.num_images < 2 or torch.rand(1, generator=g).item() >= self.itm_prob:
                return -1
            j = int(torch.randint(self.table.num_images - 1, (1,), generator=g))
            return j + 1 if j >= own else j
        if self.aux == "retrieval":
            out = []
            for _ in range(self.negatives):
                k = int(torch.randint(len(self.table), (1,), generator=g))
                for _ in range(8 if self.negatives_from == "other-images" else 0):  # another image's caption
                    if int(self.table.image_of[k]) != own:
                        break
                    k = int(torch.randint(len(self.table), (1,), generator=g))
                out.append(k)
            return out
        return None


IMAGE_FIELDS = ("image", "image_2", "neg_image")  # a raw sample's images, normalised per batch


class SampleDataset(torch.utils.data.Dataset):
    """key → raw sample: transformed image tensor(s), text(s), task extras. An undecodable image
    gives {"skip": where} so the collator drops the sample (counted, never a crash).

    The DataLoader asks for a whole batch of keys at once (``__getitems__``): the images are
    prepared one by one (resize, crop, RandAugment with the sample's own seed) and normalised in
    one call for the batch — the same values as one call per image, at a fraction of the cost of
    a tiny local step (~2.5 ms of a ~6 ms VQA batch of 32)."""

    def __init__(self, table: TaskTable, transform: ImageTransform, train: bool) -> None:
        self.table, self.transform, self.train = table, transform, train

    def __len__(self) -> int:
        return len(self.table)

    def _image(self, source: Any, index: int, seed: int) -> torch.Tensor | None:
        """uint8 Tensor[3,S,S] (normalised later, with the batch), or None when undecodable."""
        raw = source.load(index)
        if raw is None:
            return None
        if self.train and self.transform.randaugment is not None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                return self.transform.prepare(raw, train=True)
        return self.transform.prepare(raw, train=self.train)

    def __getitem__(self, key: Key | int) -> dict[str, Any]:
        return self.__getitems__([key])[0]

    def __getitems__(self, keys: list[Key | int]) -> list[dict[str, Any]]:
        samples = [self._sample(key) for key in keys]
        images = [(s, f) for s in samples for f in IMAGE_FIELDS if f in s]
        if images:
            normalised = self.transform.normalize(torch.stack([s[f] for s, f in images])).unbind(0)
            for (sample, name), image in zip(images, normalised, strict=True):
                sample[name] = image
        return samples

    def _sample(self, key: Key | int) -> dict[str, Any]:
        i, aux, seed = key if isinstance(key, tuple) else (key, None, 0)
        t = self.table
        image = self._image(t.images, int(t.image_of[i]), mix_seed(seed, i))
        if image is None:
            return {"skip": t.images.where(int(t.image_of[i]))}
        sample: dict[str, Any] = {"index": i, "image": image, "text": t.text(i), **t.extra(i)}
        if t.images_2 is not None and t.image2_of is not None:
            image_2 = self._image(t.images_2, int(t.image2_of[i]), mix_seed(seed, i, 2))
            if image_2 is None:
                return {"skip": t.images_2.where(int(t.image2_of[i]))}
            sample["image_2"] = image_2
        if isinstance(aux, dict):  # retrieval negatives and an ITM draw (METER's itm+irtr fine-tuning)
            sample["neg_texts"] = [t.text(k) for k in aux["texts"]]
            aux = aux["itm"]
        if isinstance(aux, int) and aux >= 0:  # ITM negative: a different image
            negative = self._image(t.images, aux, mix_seed(seed, i, 3))
            sample["neg_image"] = negative if negative is not None else image
            sample["itm_label"] = 0 if negative is not None else 1
        elif isinstance(aux, int):
            sample["itm_label"] = 1
        elif isinstance(aux, list):  # retrieval negatives: other images' captions
            sample["neg_texts"] = [t.text(k) for k in aux]
        return sample


@dataclass(frozen=True)
class BatchContext:
    """What an objective or task plug-in may need to build its batch fields from raw samples."""

    tokenizer: Any
    max_len: int
    seed: int  # the batch's seed: seed any random masking from it (same seed → same batch)
    encoding: Any  # the tokenizer's output for the clean texts (word ids for whole-word masking)
    mlm_prob: float = 0.15
    num_answers: int = 0
    mlm_masking: str = "whole-word"  # or "meter" (harness.data.collate.mask_like_meter)


class Collator:
    """Raw samples → batch. Training: {objective or task: sub_batch}; eval: one flat sub_batch.

    Each sub-batch starts as the clean pairs; the objective's or task's plug-in (its registry
    entry) adds its own fields (``batch_fields``). A name no registry knows ("eval-pairs") gets
    the clean pairs."""

    def __init__(self, *, task: str, tokenizer: Any, max_len: int, objectives: tuple[str, ...] = (),
                 mlm_prob: float = 0.15, num_answers: int = 0, nested: bool = True,
                 mlm_masking: str = "whole-word") -> None:
        self.task, self.tokenizer, self.max_len, self.mlm_masking = task, tokenizer, max_len, mlm_masking
        self.objectives, self.mlm_prob, self.num_answers, self.nested = objectives, mlm_prob, num_answers, nested
        self._plugins: dict[str, Any] = {}

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        skipped = [s["skip"] for s in samples if "skip" in s]
        good = [s for s in samples if "skip" not in s]
        seed = samples[0].get("_seed", 0) if samples else 0
        if not good:
            return {"_skipped": skipped, "_empty": True}
        base = self._base(good)
        if self.task == "pretrain":
            batch: dict[str, Any] = {name: self._fields(name, base, good, seed, True) for name in self.objectives}
        else:
            sub = self._fields(self.task, base, good, seed, False)
            batch = {self.task: sub} if self.nested else sub
        batch["_skipped"] = skipped
        return batch

    def _base(self, good: list[dict[str, Any]]) -> dict[str, Any]:
        enc = tokenize(self.tokenizer, [s["text"] for s in good], self.max_len)
        return {"encoding": enc, "input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                "pixel_values": torch.stack([s["image"] for s in good]),
                "index": torch.tensor([s["index"] for s in good], dtype=torch.long)}

    @staticmethod
    def _clean(base: dict[str, Any]) -> dict[str, Any]:
        return {k: base[k] for k in ("input_ids", "attention_mask", "pixel_values", "index")}

    def _plugin(self, name: str, pretrain: bool) -> Any:
        from harness.registry import OBJECTIVES, TASKS

        if name not in self._plugins:
            registry = OBJECTIVES if pretrain else TASKS
            self._plugins[name] = registry.build_plugin(name) if name in registry else None
        return self._plugins[name]

    def _fields(self, name: str, base: dict[str, Any], good: list[dict[str, Any]], seed: int,
                pretrain: bool) -> dict[str, Any]:
        sub = self._clean(base)
        plugin = self._plugin(name, pretrain)
        if plugin is None:
            return sub
        ctx = BatchContext(self.tokenizer, self.max_len, seed, base["encoding"], self.mlm_prob, self.num_answers,
                           self.mlm_masking)
        return plugin.batch_fields(sub, good, ctx)


class SeededDataset(SampleDataset):
    """Carries the batch seed into the sample so the collator can seed its masking."""

    def _sample(self, key: Key | int) -> dict[str, Any]:
        sample = super()._sample(key)
        sample["_seed"] = key[2] if isinstance(key, tuple) else 0
        return sample
