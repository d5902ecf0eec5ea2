"""The synthetic benchmark's splits in every task form, cached on disk, and its baselines.

A split is built from ``SyntheticSpec`` alone (its own seed, not the training seed): the
``train`` split has ``train_images`` scenes, ``val`` and ``test`` have ``eval_images`` each,
all from independent random streams. Rendered images are cached under
``cache_dir()/synthetic/<config hash>/`` as ``.npy`` (memory-mapped on load); the texts are
cheap and regenerated from the scenes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.data.config import SyntheticSpec
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

SPLITS = ("train", "val", "test")
CACHE_VERSION = 2


@dataclass
class SyntheticSplit:
    """One split: images [N,H,W,3] uint8 and, per task, rows that index into them."""

    name: str
    images: np.ndarray
    scenes: list[Scene]
    captions: list[list[str]]
    answers: tuple[str, ...]
    # vqa: (image, question, answer label ids, soft scores, question type)
    vqa: list[tuple[int, str, list[int], list[float], str]] = field(default_factory=list)
    nlvr2: list[tuple[int, int, str, int]] = field(default_factory=list)  # (image, image_2, statement, label)
    snli: list[tuple[int, str, int]] = field(default_factory=list)  # (image, hypothesis, label)


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
    n = split_size(spec, split)
    scenes = sample_scenes(scene_rng(spec.seed, f"{split}/scenes"), n, spec.max_objects)
    if not render:
        images = np.zeros((n, 1, 1, 3), dtype=np.uint8)
    elif cache:
        images = _cached_images(spec, split, size, scenes)
    else:
        images = render_scenes(scenes, size, scene_rng(spec.seed, f"{split}/pixels"))
    out = SyntheticSplit(split, images, scenes, [], vqa_answers(spec.max_objects))
    out.captions = captions_for(scenes, spec.captions_per_image, scene_rng(spec.seed, f"{split}/captions"))
    _fill_tasks(out, spec)
    return out


def _fill_tasks(out: SyntheticSplit, spec: SyntheticSpec) -> None:
    """Every task's rows. One random stream per task, so that redesigning one task's texts
    leaves the others' rows as they were."""
    rngs = {task: scene_rng(spec.seed, f"{out.name}/{task}") for task in ("vqa", "nlvr2", "snli-ve")}
    index = {a: i for i, a in enumerate(out.answers)}
    n = len(out.scenes)
    for i, scene in enumerate(out.scenes):
        for question, answer, qtype in vqa_questions(scene, rngs["vqa"], spec.questions_per_image):
            votes = annotator_answers(answer, answer_family(qtype, answer, spec.max_objects), rngs["vqa"])
            scores = soft_scores(votes, normalise=False)  # our answers are already normal
            labels = [index[a] for a in scores]
            out.vqa.append((i, question, labels, [scores[a] for a in scores], qtype))
        for _ in range(spec.statements_per_image):
            partner = (i + 1 + int(rngs["nlvr2"].integers(n - 1))) % n if n > 1 else i
            statement, label = nlvr2_statement(scene, out.scenes[partner], rngs["nlvr2"])
            out.nlvr2.append((i, partner, statement, label))
            hypothesis, label = snli_hypothesis(scene, rngs["snli-ve"])
            out.snli.append((i, hypothesis, label))


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


@functools.lru_cache(maxsize=8)
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
