"""The synthetic benchmark: deterministic, fast, balanced, word-order questions, cached, baselines."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from harness.data.config import SyntheticSpec
from harness.data.synthetic import COLOURS, Obj, Scene, caption_corpus, render_images
from harness.data.synthetic_data import baselines_for, build_split, config_hash
from harness.data.synthetic_tasks import _q_left_of, vqa_answers
from harness.data.text import word_tokenizer

SMALL = SyntheticSpec(train_images=300, eval_images=100)


def test_render_is_deterministic_and_seeded() -> None:
    a, la = render_images(3, 20, 32)
    b, lb = render_images(3, 20, 32)
    c, _ = render_images(4, 20, 32)
    assert a.shape == (20, 32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and all(np.array_equal(la[k], lb[k]) for k in la)
    assert not np.array_equal(a, c)
    assert set(la) >= {"shape", "colour", "count", "size"}
    assert la["count"].min() >= 0 and la["count"].max() <= 2 and la["colours_present"].shape == (20, len(COLOURS))


def test_pixels_show_the_scene() -> None:
    scene = Scene((Obj(shape=0, colour=0, size=1, column=0, y=0.5),), max_objects=3)  # a large red square
    from harness.data.synthetic import render_scenes

    img = render_scenes([scene], 64, np.random.default_rng(0))[0]
    centre = img[32, int(64 / 6)]
    assert centre[0] > 180 and centre[1] < 90 and centre[2] < 90  # red where the square is
    assert img[5, 60].max() < 80  # dark background far away


def test_render_speed() -> None:
    render_images(0, 50, 64)
    start = time.perf_counter()
    render_images(1, 1000, 64)
    rate = 1000 / (time.perf_counter() - start)
    assert rate > 500, f"{rate:.0f} images/s"  # ≥ 1,500/s on an idle core; loose here (shared machine)


def test_caption_corpus_and_word_tokenizer_round_trip(tmp_path: Path) -> None:
    corpus = caption_corpus(0, 500)
    assert corpus == caption_corpus(0, 500) and corpus != caption_corpus(1, 500)
    tok = word_tokenizer(corpus)
    assert tok.convert_ids_to_tokens([0, 1, 2, 3, 4]) == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    ids = tok("What colour is the square?")["input_ids"]
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id and tok.unk_token_id not in ids
    tok.save_pretrained(tmp_path)
    from transformers import AutoTokenizer

    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again("is the red shape left of the blue shape?")["input_ids"] == tok(
        "is the red shape left of the blue shape?")["input_ids"]
    assert again.mask_token == "[MASK]" and again.pad_token_id == 0


def test_left_of_questions_depend_on_word_order() -> None:
    red_square = Obj(shape=0, colour=0, size=1, column=0, y=0.5)
    blue_circle = Obj(shape=1, colour=2, size=0, column=2, y=0.4)
    scene = Scene((red_square, blue_circle), max_objects=3)
    rng = np.random.default_rng(0)
    asked = {q: a for q, a, _ in (_q_left_of(scene, rng) for _ in range(200))}
    forward, backward = "is the red shape left of the blue shape?", "is the blue shape left of the red shape?"
    assert sorted(forward.split()) == sorted(backward.split())  # the same bag of words ...
    assert asked[forward] == "yes" and asked[backward] == "no"  # ... opposite answers
    assert asked["is the blue shape right of the red shape?"] == "yes"


def test_split_balance_and_answers() -> None:
    split = build_split(SMALL, "train", 32, cache=False)
    answers = vqa_answers()
    top = Counter(answers[labels[int(np.argmax(scores))]] for _, _, labels, scores, _ in split.vqa)
    assert 0.4 < top["yes"] / (top["yes"] + top["no"]) < 0.6
    assert {qt for *_, qt in split.vqa} >= {"colour", "shape", "count", "exists", "left_of", "neighbour"}
    assert 0.4 < np.mean([y for *_, y in split.nlvr2]) < 0.6
    labels = Counter(y for *_, y in split.snli)
    assert labels[0] > labels[1] > 0 and labels[2] > 0
    assert all(len(c) == SMALL.captions_per_image for c in split.captions)
    test = build_split(SMALL, "test", 32, cache=False)
    assert not np.array_equal(test.images[:10], split.images[:10])


def test_cache_reuses_rendered_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    first = build_split(SMALL, "val", 32)
    files = list((tmp_path / "synthetic").glob("*/images.npy"))
    assert len(files) == 1 and files[0].parent.name == config_hash(SMALL, "val", 32)
    second = build_split(SMALL, "val", 32)
    assert isinstance(second.images, np.memmap) and np.array_equal(first.images, second.images)
    assert second.vqa == first.vqa


def test_baselines_chance_below_blind_below_one() -> None:
    for task in ("vqa", "snli-ve"):
        b = baselines_for(SMALL, task)
        assert 0 < b["chance"] < b["blind"] < 0.8, (task, b)
    # NLVR2's statements (the left image's colours, labels balanced) leave the text no prior beyond
    # chance: the blind prior is chance up to the sampling noise of a small test set.
    b = baselines_for(SMALL, "nlvr2")
    assert b["chance"] == 0.5 and abs(b["blind"] - 0.5) < 0.1, b


def test_texts_shared_and_each_task_built_on_first_use() -> None:
    """A VQA job builds no NLVR2/SNLI-VE texts, the baselines reuse the split's texts, and a
    task's rows do not depend on which other tasks were built before (own random stream)."""
    from harness.data.synthetic_data import SplitTexts

    split = build_split(SMALL, "val", 32, cache=False)
    assert split.vqa and set(split.texts._rows) == {"vqa"}
    assert build_split(SMALL, "val", render=False).texts is split.texts
    assert build_split(SMALL, "val", 48, cache=False).texts is split.texts
    others_first = SplitTexts(SMALL, "val")
    others_first.rows("nlvr2"), others_first.rows("snli-ve")
    assert others_first.rows("vqa") == split.vqa
    assert SplitTexts(SMALL, "val").rows("nlvr2") == others_first.rows("nlvr2")
