"""ViLT/METER Arrow readers: every task, lazy decoding, bad images skipped, clear errors."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from data_arrow_fixtures import CAPTION, caption_rows, image_bytes, make_root, write

from harness.data import pipeline
from harness.data.arrow import DataError, arrow_table, split_files
from harness.data.config import DataSpec
from harness.data.text import word_tokenizer
from harness.spec.schema import ExperimentSpec

MEAN = STD = (0.5, 0.5, 0.5)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_root(tmp_path_factory.mktemp("arrow"))


@pytest.fixture(scope="module")
def tok():
    words = "image caption what is it statement hypothesis premise a b yes no " + " ".join(map(str, range(60)))
    return word_tokenizer([words])


def _exp(root: Path) -> ExperimentSpec:
    torch.set_num_threads(1)
    return ExperimentSpec(
        model={"max_text_len": 12},
        data={"source": "arrow", "root": str(root)},
        pretrain={"objectives": ["mlm", "itm"], "datasets": ["coco", "vg", "sbu", "gcc"]},
        finetune={"vqa": {"steps": 2}, "nlvr2": {"steps": 2}, "snli-ve": {"steps": 2},
                  "retrieval": {"steps": 2, "negatives": 3}},
    )


def test_one_sample_per_caption_question_statement(root: Path) -> None:
    data = DataSpec(source="arrow", root=str(root))
    assert len(arrow_table(data, "coco", "pretrain", "train")) == 2 * 4 * 2  # train+restval, 2 captions
    assert len(arrow_table(data, "f30k", "retrieval", "test")) == 4 * 3
    assert len(arrow_table(data, "sbu", "pretrain", "train")) == 2 * 4  # two shards
    assert len(arrow_table(data, "vqav2", "vqa", "train")) == 2 * 4 * 2  # train+trainable_val
    nlvr2 = arrow_table(data, "nlvr2", "nlvr2", "val")
    assert len(nlvr2) == 4 and nlvr2.extra(1)["label"] == 1 and nlvr2.extra(0)["label"] == 0
    snli = arrow_table(data, "snli-ve", "snli-ve", "val")
    assert snli.text(1) == "hypothesis 0 b" and snli.extra(0)["label"] == 2


def test_vqa_rows_and_unlabelled_test(root: Path) -> None:
    data = DataSpec(source="arrow", root=str(root))
    table = arrow_table(data, "vqav2", "vqa", "train")
    assert table.text(1) == "is it 0?"
    assert table.extra(0) == {"answer_labels": [0, 1], "answer_scores": [1.0, 0.3], "question_id": 1000}
    assert table.info["num_answers"] == 3129  # ViLT's fixed vocabulary when no vocabulary file is present
    test = arrow_table(data, "vqav2", "vqa", "test")
    assert test.extra(3)["answer_labels"] == [] and test.extra(3)["question_id"] == 1003


def test_every_task_batches_from_arrow(root: Path, tok) -> None:
    exp = _exp(root)
    kw = {"tokenizer": tok, "image_size": 32, "mean": MEAN, "std": STD, "per_device_batch": 3, "seed": 0}
    pre = next(iter(pipeline.train_batches(exp, stage="pretrain", task=None, **kw)))
    assert set(pre) == {"mlm", "itm"} and pre["mlm"]["pixel_values"].shape == (3, 3, 32, 32)
    vqa = next(iter(pipeline.train_batches(exp, stage="finetune", task="vqa", **kw)))["vqa"]
    assert vqa["vqa_targets"].shape == (3, 3129) and vqa["vqa_targets"].max() > 0
    nlvr2 = next(iter(pipeline.train_batches(exp, stage="finetune", task="nlvr2", **kw)))["nlvr2"]
    assert nlvr2["pixel_values_2"].shape == (3, 3, 32, 32) and set(nlvr2["labels"].tolist()) <= {0, 1}
    snli = next(iter(pipeline.train_batches(exp, stage="finetune", task="snli-ve", **kw)))["snli-ve"]
    assert set(snli["labels"].tolist()) <= {0, 1, 2}
    ret = next(iter(pipeline.train_batches(exp, stage="finetune", task="retrieval", **kw)))["retrieval"]
    assert ret["input_ids"].shape == (3, 4, 12)
    evals = list(pipeline.eval_batches(exp, task="snli-ve", split="val", tokenizer=tok, image_size=32,
                                       mean=MEAN, std=STD, batch_size=3))
    assert sum(len(b["labels"]) for b in evals) == 8
    rset = pipeline.retrieval_eval_set(exp, split="test", tokenizer=tok, image_size=32, mean=MEAN, std=STD)
    assert rset.pixel_values.shape == (4, 3, 32, 32) and rset.text_to_image == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert pipeline.baselines(exp, "vqa") == {}


def test_missing_shard_is_named(tmp_path: Path) -> None:
    for shard in (0, 2):
        write(tmp_path / f"sbu_{shard}.arrow", CAPTION, caption_rows(2, per=1))
    with pytest.raises(DataError, match=r"sbu_1\.arrow: missing shard"):
        split_files(tmp_path, "sbu", "train")
    with pytest.raises(DataError, match=r"nlvr2_train\.arrow: missing Arrow file"):
        split_files(tmp_path, "nlvr2", "train")


def test_wrong_schema_and_empty_split(tmp_path: Path) -> None:
    write(tmp_path / "vqav2_rest_val.arrow", CAPTION, caption_rows(2))
    data = DataSpec(source="arrow", root=str(tmp_path))
    with pytest.raises(DataError, match=r"vqav2_rest_val\.arrow: missing column\(s\) questions.*a vqa file has"):
        arrow_table(data, "vqav2", "vqa", "val")
    write(tmp_path / "snli_dev.arrow", __import__("data_arrow_fixtures").SNLI, [])
    with pytest.raises(DataError, match=r"snli-ve/val is empty.*snli_dev\.arrow"):
        arrow_table(data, "snli-ve", "snli-ve", "val")
    with pytest.raises(DataError, match="has no split .minival.*known: dev, test, train, val"):
        split_files(tmp_path, "snli-ve", "minival")


def test_split_override(root: Path) -> None:
    data = DataSpec(source="arrow", root=str(root), splits={"vqav2/train": ("vqav2_train",)})
    assert len(arrow_table(data, "vqav2", "vqa", "train")) == 8


def test_corrupt_image_is_skipped_and_reported(tmp_path: Path, tok, caplog: pytest.LogCaptureFixture) -> None:
    rows = caption_rows(6)
    rows[2]["image"] = b"not an image at all"
    rows[4]["image"] = image_bytes(4)[:40]  # truncated JPEG
    write(tmp_path / "f30k_caption_karpathy_train.arrow", CAPTION, rows)
    write(tmp_path / "f30k_caption_karpathy_val.arrow", CAPTION, caption_rows(2))
    exp = ExperimentSpec(model={"max_text_len": 8}, data={"source": "arrow", "root": str(tmp_path)},
                         finetune={"retrieval": {"steps": 1, "dataset": "f30k", "negatives": 2}})
    stream = pipeline.train_batches(exp, stage="finetune", task="retrieval", tokenizer=tok, image_size=16, mean=MEAN,
                                    std=STD, per_device_batch=4, seed=0)
    with caplog.at_level(logging.WARNING):
        batches = [next(stream)["retrieval"] for _ in range(4)]  # one epoch: 16 captions (6+2 images × 2)
        stream.close()
    assert sum(len(b["index"]) for b in batches) == 12  # the 4 captions of the two bad images dropped
    assert "skipped 4 undecodable image(s)" in caplog.text and "f30k_caption_karpathy_train.arrow row 2" in caplog.text


def test_files_written_through_pandas_as_meter_does(root: Path) -> None:
    """METER's writers go through pandas: an unlabelled split's empty answer lists are typed list<null>
    (the reader used to fail in list_flatten), strings may come as large_string (pandas ≥ 3)."""
    import pyarrow as pa

    def schema(name: str) -> pa.Schema:
        return pa.ipc.open_file(pa.memory_map(str(root / name), "r")).schema

    for split in ("test", "test-dev"):
        assert str(schema(f"vqav2_{split}.arrow").field("answer_labels").type) == "list<item: null>"
        table = arrow_table(DataSpec(source="arrow", root=str(root)), "vqav2", "vqa", split)
        assert len(table) == 8 and table.info["num_answers"] == 3129
        assert table.extra(5) == {"answer_labels": [], "answer_scores": [], "question_id": 1005}
    rest = arrow_table(DataSpec(source="arrow", root=str(root)), "vqav2", "vqa", "val")
    assert rest.extra(0)["question_id"] == 1008  # the last 4 of val's 8 images
