"""The synthetic benchmark's splits in every task form, cached on disk, and its baselines.

A split is built from ``SyntheticSpec`` alone (its own seed, not the training seed): the
``train`` split has ``train_images`` scenes, ``val`` and ``test`` have ``eval_images`` each,
all from independent random streams. Rendered images are cached under
``cache_dir()/synthetic/<config hash>/`` as ``.npy`` (memory-mapped on load); the texts are
regenerated from the scenes, once per process and split (shared by every image size and by the
baselines), and each task's rows only when that task is first read: a VQA job never builds the
NLVR2 or SNLI-VE texts (all three took ~1.3 s of CPU for a train split, twice per local job).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.data.config import SyntheticSpec
from harness.data.splits import SYNTHETIC_SPLITS
from harness.data.synthetic import Scene, captions_for, render_scenes, sample_scenes, scene_rng
from harness.data.synthetic_tasks import (
    annotator_answers,
    answer_family,
    nlvr2_statement,
    snli_hypothesis,
    vqa_answers,
    vqa_questions,
)
from harness.data.vqa import soft_scores

SPLITS = SYNTHETIC_SPLITS
CACHE_VERSION = 2


class SplitTexts:
    """One split's scenes, captions and per-task rows, independent of image size. Each task's
    rows are built on first use from its own random stream, so building one task alone gives the
    same rows as building all of them."""

    def __init__(self, spec: SyntheticSpec, split: str) -> None:
        self.spec, self.name = spec, split
        self.scenes = sample_scenes(scene_rng(spec.seed, f"{split}/scenes"), split_size(spec, split),
                                    spec.max_objects)
        self.captions = captions_for(self.scenes, spec.captions_per_image, scene_rng(spec.seed, f"{split}/captions"))
        self.answers = vqa_answers(spec.max_objects)
        self._rows: dict[str, list[Any]] = {}

    def rows(self, task: str) -> list[Any]:
        if task not in self._rows:
            self._rows[task] = _TASK_ROWS[task](self)
        return self._rows[task]


@functools.lru_cache(maxsize=8)
def _split_texts(spec_json: str, split: str) -> SplitTexts:
    return SplitTexts(SyntheticSpec.model_validate_json(spec_json), split)


@dataclass
class SyntheticSplit:
    """One split: images [N,H,W,3] uint8 and, per task, rows that index into them."""

    images: np.ndarray
    texts: SplitTexts

    @property
    def name(self) -> str:
        return self.texts.name

    @property
    def scenes(self) -> list[Scene]:
        return self.texts.scenes

    @property
    def captions(self) -> list[list[str]]:
        return self.texts.captions

    @property
    def answers(self) -> tuple[str, ...]:
        return self.texts.answers

    @property
    def vqa(self) -> list[tuple[int, str, list[int], list[float], str]]:
        """(image, question, answer label ids, soft scores, question type)"""
        return self.texts.rows("vqa")

    @property
    def nlvr2(self) -> list[tuple[int, int, str, int]]:
        """(image, image_2, statement, label)"""
        return self.texts.rows("nlvr2")

    @property
    def snli(self) -> list[tuple[int, str, int]]:
        """(image, hypothesis, label)"""
        return self.texts.rows("snli-ve")


def split_size(spec: SyntheticSpec, split: str) -> int:
    if split not in SPLITS:
        raise ValueError(f"unknown synthetic split '{split}'; expected one of {', '.join(SPLITS)}")
    return spec.train_images if split == "train" else spec.eval_images


def config_hash(spec: SyntheticSpec, split: str, image_size: int) -> str:
    body = {"v": CACHE_VERSION, "spec": spec.model_dump(mode="json"), "split": split, "size": image_size}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def _cached_images(spec: SyntheticSpec, split: str, image_size: int, scenes: list[Scene]) -> np.ndarray:
    """Render once per config; later loads are a memory map of the .npy file."""
    from harness.paths import cache_dir

    path = cache_dir() / "synthetic" / config_hash(spec, split, image_size) / "images.npy"
    if path.exists():
        try:
            images = np.load(path, mmap_mode="r")
            if images.shape == (len(scenes), image_size, image_size, 3):
                return images
        except (OSError, ValueError):
            pass  # a truncated cache file: render again
    images = render_scenes(scenes, image_size, scene_rng(spec.seed, f"{split}/pixels"))
    _atomic_save(path, images)
    return images


def _atomic_save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.save(f, array)
    os.replace(tmp, path)


def build_split(spec: SyntheticSpec, split: str, image_size: int | None = None, cache: bool = True,
                render: bool = True) -> SyntheticSplit:
    """All task forms of one split, deterministic in (spec, split, image_size).
    render=False leaves the images out (1×1 placeholders), for text-only uses such as baselines."""
    size = image_size or spec.image_size
    texts = _split_texts(spec.model_dump_json(), split)
    if not render:
        images = np.zeros((len(texts.scenes), 1, 1, 3), dtype=np.uint8)
    elif cache:
        images = _cached_images(spec, split, size, texts.scenes)
    else:
        images = render_scenes(texts.scenes, size, scene_rng(spec.seed, f"{split}/pixels"))
    return SyntheticSplit(images, texts)


def _task_rng(texts: SplitTexts, task: str) -> np.random.Generator:
    return scene_rng(texts.spec.seed, f"{texts.name}/{task}")


def _vqa_rows(texts: SplitTexts) -> list[Any]:
    spec, rng = texts.spec, _task_rng(texts, "vqa")
    index = {a: i for i, a in enumerate(texts.answers)}
    rows = []
    for i, scene in enumerate(texts.scenes):
        for question, answer, qtype in vqa_questions(scene, rng, spec.questions_per_image):
            votes = annotator_answers(answer, answer_family(qtype, answer, spec.max_objects), rng)
            scores = soft_scores(votes, normalise=False)  # our answers are already normal
            rows.append((i, question, [index[a] for a in scores], [scores[a] for a in scores], qtype))
    return rows


def _nlvr2_rows(texts: SplitTexts) -> list[Any]:
    scenes, rng, rows = texts.scenes, _task_rng(texts, "nlvr2"), []
    n = len(scenes)
    for i, scene in enumerate(scenes):
        for _ in range(texts.spec.statements_per_image):
            partner = (i + 1 + int(rng.integers(n - 1))) % n if n > 1 else i
            statement, label = nlvr2_statement(scene, scenes[partner], rng)
            rows.append((i, partner, statement, label))
    return rows


def _snli_rows(texts: SplitTexts) -> list[Any]:
    rng, rows = _task_rng(texts, "snli-ve"), []
    for i, scene in enumerate(texts.scenes):
        for _ in range(texts.spec.statements_per_image):
            hypothesis, label = snli_hypothesis(scene, rng)
            rows.append((i, hypothesis, label))
    return rows


# Every task's rows, each from its own random stream (redesigning one task's texts leaves the
# others' rows as they were).
_TASK_ROWS: dict[str, Callable[[SplitTexts], list[Any]]] = {"vqa": _vqa_rows, "nlvr2": _nlvr2_rows,
                                                              "snli-ve": _snli_rows}


# ---- baselines --------------------------------------------------------------------------------

def _prior_accuracy(train: list[tuple[str, int]], test: list[tuple[str, int]]) -> float:
    """Text-only prior: predict the commonest train label of the exact same text (else overall)."""
    by_text: dict[str, Counter[int]] = defaultdict(Counter)
    for text, label in train:
        by_text[text][label] += 1
    overall = Counter(label for _, label in train).most_common(1)[0][0]
    hits = [(by_text[t].most_common(1)[0][0] if t in by_text else overall) == y for t, y in test]
    return float(np.mean(hits))


def _vqa_baselines(train: SyntheticSplit, test: SyntheticSplit) -> dict[str, float]:
    num_answers = len(test.answers)
    best: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(num_answers))
    for _, question, labels, scores, _ in train.vqa:
        best[question][labels] += scores
    overall = sum(best.values())
    chance, blind = [], []
    for _, question, labels, scores, _ in test.vqa:
        score_of = dict(zip(labels, scores, strict=True))
        chance.append(sum(scores) / num_answers)
        guess = int(np.argmax(best.get(question, overall)))
        blind.append(score_of.get(guess, 0.0))
    return {"chance": float(np.mean(chance)), "blind": float(np.mean(blind))}


def _text_split(spec_json: str, split: str) -> SyntheticSplit:
    return build_split(SyntheticSpec.model_validate_json(spec_json), split, render=False)


def baselines_for(spec: SyntheticSpec, task: str, split: str = "test") -> dict[str, float]:
    """Chance (uniform guess) and blind (best text-only prior learnt from train) on `split`."""
    train, test = _text_split(spec.model_dump_json(), "train"), _text_split(spec.model_dump_json(), split)
    if task == "vqa":
        return _vqa_baselines(train, test)
    if task == "nlvr2":
        blind = _prior_accuracy([(s, y) for *_, s, y in train.nlvr2], [(s, y) for *_, s, y in test.nlvr2])
        return {"chance": 0.5, "blind": blind}
    if task == "snli-ve":
        blind = _prior_accuracy([(h, y) for _, h, y in train.snli], [(h, y) for _, h, y in test.snli])
        return {"chance": 1 / 3, "blind": blind}
    if task == "retrieval":
        # Text alone ranks nothing: the blind ranking is a random one.
        r1 = 1 / max(1, len(test.scenes))
        return {"chance": r1, "blind": r1}
    if task in ("pretrain", "itm"):
        return {"chance": 0.5, "blind": 0.5}
    raise ValueError(f"no synthetic baseline for task '{task}'")
