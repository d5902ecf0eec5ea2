"""Data → trainer API on the synthetic benchmark: layouts, determinism, sharding, workers."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from harness.data import pipeline
from harness.data.synthetic import caption_corpus
from harness.data.text import word_tokenizer
from harness.spec.schema import ExperimentSpec

MEAN = STD = (0.5, 0.5, 0.5)


@pytest.fixture(scope="module")
def tok():
    return word_tokenizer(caption_corpus(0, 2000))


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.set_num_threads(1)
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _exp(**data) -> ExperimentSpec:
    synthetic = {"train_images": 200, "eval_images": 40, "image_size": 32}
    return ExperimentSpec(
        model={"max_text_len": 16, "text": "bert"},
        data={"synthetic": synthetic, **data},
        pretrain={"objectives": ["mlm", "itm", "mim-in-batch-negatives"], "datasets": ["synthetic"]},
        finetune={"vqa": {"steps": 5}, "nlvr2": {"steps": 5}, "snli-ve": {"steps": 5},
                  "retrieval": {"steps": 5, "negatives": 3}},
    )


def _take(exp: ExperimentSpec, tok, n: int = 3, **kw) -> list[dict]:
    args = {"stage": "finetune", "task": "vqa", "tokenizer": tok, "image_size": 32, "mean": MEAN, "std": STD,
            "per_device_batch": 4, "seed": 0, **kw}
    return list(itertools.islice(pipeline.train_batches(exp, **args), n))


def test_pretrain_layout(tok) -> None:
    batch = _take(_exp(), tok, 1, stage="pretrain", task=None, per_device_batch=16)[0]
    assert set(batch) == {"mlm", "itm", "mim-in-batch-negatives"}
    mlm, itm, mim = batch["mlm"], batch["itm"], batch["mim-in-batch-negatives"]
    assert mlm["input_ids"].shape == mlm["mlm_labels"].shape == (16, 16)
    assert (mlm["mlm_labels"] != -100).any() and (mlm["input_ids"] == tok.mask_token_id).any()
    assert itm["itm_labels"].dtype == torch.long and set(itm["itm_labels"].tolist()) == {0, 1}
    negative = itm["itm_labels"] == 0
    assert not torch.equal(itm["pixel_values"][negative], mim["pixel_values"][negative])
    assert torch.equal(itm["pixel_values"][~negative], mim["pixel_values"][~negative])
    assert torch.equal(mim["input_ids"], itm["input_ids"])  # clean text


def test_finetune_layouts(tok) -> None:
    exp = _exp()
    vqa = _take(exp, tok, 1)[0]["vqa"]
    assert vqa["vqa_targets"].shape == (4, pipeline.task_info(exp, "vqa")["num_answers"])
    assert ((vqa["vqa_targets"] > 0).sum(1) >= 1).all()
    nlvr2 = _take(exp, tok, 1, task="nlvr2")[0]["nlvr2"]
    assert nlvr2["pixel_values_2"].shape == nlvr2["pixel_values"].shape == (4, 3, 32, 32)
    ret = _take(exp, tok, 1, task="retrieval")[0]["retrieval"]
    assert ret["input_ids"].shape == ret["attention_mask"].shape == (4, 4, 16)
    # One NLVR2 sample per (image pair, statement): 200 training images × statements_per_image.
    per_image = exp.data.synthetic.statements_per_image
    assert pipeline.task_info(exp, "nlvr2") == {"train_size": 200 * per_image, "num_classes": 2, "images": 2}
    assert pipeline.task_info(exp, "retrieval")["negatives"] == 3


def test_same_seed_same_order_whatever_the_model(tok) -> None:
    a = _take(_exp(), tok, 3)
    other_model = _exp().model_copy(update={"model": _exp().model.model_copy(update={"text": "roberta"})})
    b = _take(other_model, tok, 3)
    c = _take(_exp(), tok, 3, seed=1)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x["vqa"]["index"], y["vqa"]["index"])
        assert torch.equal(x["vqa"]["pixel_values"], y["vqa"]["pixel_values"])
    assert not all(torch.equal(x["vqa"]["index"], z["vqa"]["index"]) for x, z in zip(a, c, strict=True))


def test_processes_get_disjoint_shards(tok) -> None:
    full = _take(_exp(), tok, 2, per_device_batch=8)
    parts = [_take(_exp(), tok, 2, per_device_batch=4, process_index=p, num_processes=2) for p in (0, 1)]
    for step in range(2):
        mine = [set(parts[p][step]["vqa"]["index"].tolist()) for p in (0, 1)]
        assert not mine[0] & mine[1]
        assert mine[0] | mine[1] == set(full[step]["vqa"]["index"].tolist())


@pytest.mark.slow
def test_workers_give_the_same_batches(tok) -> None:
    plain = _take(_exp(), tok, 3, stage="pretrain", task=None)
    workers = _take(_exp(num_workers=2), tok, 3, stage="pretrain", task=None)
    for x, y in zip(plain, workers, strict=True):
        for name in x:
            for key in x[name]:
                assert torch.equal(x[name][key], y[name][key]), (name, key)


def test_eval_batches_cover_split_in_order(tok) -> None:
    batches = list(pipeline.eval_batches(_exp(), task="vqa", split="test", tokenizer=tok, image_size=32,
                                         mean=MEAN, std=STD, batch_size=32))
    ids = torch.cat([b["question_id"] for b in batches]).tolist()
    assert ids == sorted(ids) and len(ids) == len(set(ids)) > 40
    assert "vqa_targets" in batches[0] and "vqa" not in batches[0]


def test_retrieval_eval_set_and_baselines(tok) -> None:
    rset = pipeline.retrieval_eval_set(_exp(), split="val", tokenizer=tok, image_size=32, mean=MEAN, std=STD)
    assert rset.pixel_values.shape == (40, 3, 32, 32) and rset.input_ids.shape == (120, 16)
    assert rset.text_to_image[:4] == [0, 0, 0, 1] and rset.num_images == 40
    b = pipeline.baselines(_exp(), "nlvr2")
    assert b["chance"] == 0.5 and 0.3 < b["blind"] < 0.8  # tiny splits: a noisy prior


def test_synthetic_images_render_at_the_stage_resolution(tok, tmp_path: Path) -> None:
    batch = _take(_exp(), tok, 1, image_size=48)[0]["vqa"]
    assert batch["pixel_values"].shape == (4, 3, 48, 48)
