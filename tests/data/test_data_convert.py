"""Converters from the public raw layouts, and the `harness data` commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from data_arrow_fixtures import image_bytes

from harness.cli import main
from harness.data.arrow import arrow_table, vqa_vocabulary
from harness.data.check import check_root
from harness.data.config import DataSpec


def _img(path: Path, seed: int, fmt: str = "JPEG") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image_bytes(seed, fmt=fmt))


def _karpathy_images(n: int) -> list[dict]:
    splits = ["train", "restval", "val", "test"]
    return [{"filepath": "val2014", "filename": f"im{i}.jpg", "split": splits[i % 4], "cocoid": i,
             "sentences": [{"raw": f"caption {i} {k}"} for k in range(5)]} for i in range(n)]


def test_convert_coco_and_f30k(tmp_path: Path) -> None:
    raw, out = tmp_path / "raw", tmp_path / "out"
    images = _karpathy_images(8)
    for im in images:
        _img(raw / "val2014" / im["filename"], im["cocoid"])
        _img(raw / "flickr30k-images" / im["filename"], im["cocoid"])
    (raw / "dataset_coco.json").write_text(json.dumps({"images": images}))
    (raw / "dataset_flickr30k.json").write_text(json.dumps({"images": images[:-1]}))  # leave test with 1
    (raw / "val2014" / "im7.jpg").unlink()  # a missing raw image: row skipped, reported
    assert main(["data", "convert", "coco", "--raw", str(raw), "--out", str(out)]) == 0
    assert main(["data", "convert", "f30k", "--raw", str(raw), "--out", str(out)]) == 0
    data = DataSpec(source="arrow", root=str(out))
    assert len(arrow_table(data, "coco", "pretrain", "train")) == 4 * 5  # train + restval
    table = arrow_table(data, "f30k", "retrieval", "test")
    assert len(table) == 5 and table.text(0) == "caption 3 0"
    assert table.images.load(0).size == (40, 30)
    assert len(arrow_table(data, "coco", "retrieval", "test")) == 5  # im3 only; im7 was missing


def test_convert_vqav2(tmp_path: Path) -> None:
    raw, out = tmp_path / "raw", tmp_path / "out"
    for split, folder in (("train2014", "train2014"), ("val2014", "val2014")):
        questions, annotations = [], []
        for image_id in range(1, 5):
            _img(raw / folder / f"COCO_{folder}_{image_id:012d}.jpg", image_id)
            for k in range(2):
                qid = image_id * 10 + k
                questions.append({"image_id": image_id, "question": f"q {qid}?", "question_id": qid})
                given = ["Two"] * 7 + ["three", "3", "a cat"] if k == 0 else ["yes"] * 10
                annotations.append({"question_id": qid, "image_id": image_id,
                                    "multiple_choice_answer": given[0], "answers": [{"answer": a} for a in given]})
        (raw / f"v2_OpenEnded_mscoco_{split}_questions.json").write_text(json.dumps({"questions": questions}))
        (raw / f"v2_mscoco_{split}_annotations.json").write_text(json.dumps({"annotations": annotations}))
    _img(raw / "test2015" / "COCO_test2015_000000000009.jpg", 9)
    (raw / "v2_OpenEnded_mscoco_test-dev2015_questions.json").write_text(
        json.dumps({"questions": [{"image_id": 9, "question": "what?", "question_id": 90}]}))
    assert main(["data", "convert", "vqav2", "--raw", str(raw), "--out", str(out)]) == 0
    assert vqa_vocabulary(out) is None or len(vqa_vocabulary(out)) == 0  # nothing seen 9 times here
    from harness.data.convert import _Missing, convert_vqav2

    convert_vqav2(raw, out, _Missing(), min_count=2, rest_val_images=1)
    assert vqa_vocabulary(out) == ["2", "yes"]
    data = DataSpec(source="arrow", root=str(out))
    train = arrow_table(data, "vqav2", "vqa", "train")  # vqav2_train + vqav2_trainable_val (3 of 4 val images)
    assert len(train) == 8 + 6 and train.info["num_answers"] == 2
    assert train.extra(0) == {"answer_labels": [0], "answer_scores": [1.0], "question_id": 10}
    assert len(arrow_table(data, "vqav2", "vqa", "val")) == 2
    test_dev = arrow_table(data, "vqav2", "vqa", "test-dev")
    assert test_dev.text(0) == "what?" and test_dev.extra(0)["answer_labels"] == []


def test_convert_nlvr2_and_snli_ve(tmp_path: Path) -> None:
    raw, out = tmp_path / "raw", tmp_path / "out"
    lines = []
    for i in range(3):
        ident = f"train-{i}-0-{i % 2}"
        for k in (0, 1):
            _img(raw / "images" / "train" / "4" / f"train-{i}-0-img{k}.png", i + k, fmt="PNG")
        lines.append(json.dumps({"identifier": ident, "sentence": f"s{i}", "label": "True" if i else "False",
                                 "directory": 4}))
    (raw / "train.json").write_text("\n".join(lines))
    snli = []
    for i, label in enumerate(["entailment", "neutral", "contradiction", "-"]):
        _img(raw / "flickr30k-images" / f"{i % 2}.jpg", i)
        snli.append(json.dumps({"Flikr30kID": f"{i % 2}.jpg", "sentence1": "p", "sentence2": f"h{i}",
                                "gold_label": label}))
    (raw / "snli_ve_dev.jsonl").write_text("\n".join(snli))
    assert main(["data", "convert", "nlvr2", "--raw", str(raw), "--out", str(out)]) == 0
    assert main(["data", "convert", "snli-ve", "--raw", str(raw), "--out", str(out)]) == 0
    data = DataSpec(source="arrow", root=str(out))
    nlvr2 = arrow_table(data, "nlvr2", "nlvr2", "train")
    assert [nlvr2.extra(i)["label"] for i in range(3)] == [0, 1, 1] and nlvr2.images_2 is not None
    ve = arrow_table(data, "snli-ve", "snli-ve", "val")
    assert sorted((ve.text(i), ve.extra(i)["label"]) for i in range(len(ve))) == [("h0", 2), ("h1", 1), ("h2", 0)]


def test_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from data_arrow_fixtures import CAPTION, caption_rows, make_root, write

    root = make_root(tmp_path / "root", n=2)
    (root / "vqav2_test-dev.arrow").unlink()
    assert main(["data", "check", str(root)]) == 0
    out = capsys.readouterr().out
    assert "ok   vqav2_train.arrow: vqa, 2 rows, 2/2 sample images decode" in out
    assert "ok   sbu/train: 2 file(s)" in out and "vqav2_test-dev.arrow: missing Arrow file" in out
    bad = caption_rows(2)
    bad[0]["image"] = b"junk"
    write(root / "coco_caption_karpathy_val.arrow", CAPTION, bad)
    (root / "nlvr2_dev.arrow").write_bytes(b"not arrow")
    assert main(["data", "check", str(root)]) == 1
    out = capsys.readouterr().out
    assert "WARN coco_caption_karpathy_val.arrow: caption, 2 rows, 1/2" in out and "FAIL nlvr2_dev.arrow" in out
    reports = {r.path.name: r for r in check_root(root)}
    assert reports["snli_train.arrow"].rows == 2


def test_cli_errors_and_baselines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "convert", "vqa2", "--raw", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "did you mean 'vqav2'" in capsys.readouterr().err
    assert main(["data", "convert", "coco", "--raw", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "dataset_coco.json: missing" in capsys.readouterr().err
    assert main(["data", "check", str(tmp_path / "nope")]) == 2
    assert main(["data", "baselines", "--task", "nlvr2"]) == 0
    assert "nlvr2      accuracy     0.500" in capsys.readouterr().out


def test_convert_vg_sbu_gcc_to_meter_file_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw, out = tmp_path / "raw", tmp_path / "out"
    regions = []
    for image_id, folder in ((1, "VG_100K"), (2, "VG_100K_2"), (3, "VG_100K")):
        if image_id != 3:  # image 3 is missing on disk: skipped and reported
            _img(raw / "images" / folder / f"{image_id}.jpg", image_id)
        regions.append({"id": image_id, "regions": [
            {"image_id": image_id, "phrase": f"region {image_id} {k}", "width": 5 + k, "height": 6, "x": k, "y": 1}
            for k in range(2)]})
    (raw / "annotations").mkdir(parents=True)
    (raw / "annotations" / "region_descriptions.json").write_text(json.dumps(regions))
    pairs = {split: [[f"http://x/{split}{i}.jpg", f"{split} caption {i}"] for i in range(5)]
             for split in ("train", "val")}
    for split, items in pairs.items():
        for i in range(5):
            _img(raw / f"images_{split}" / str(i % 2) / f"{split}{i}.jpg", i)
        (raw / f"{split}_annot.json").write_text(json.dumps(items))
    (raw / "annot.json").write_text(json.dumps(pairs["train"]))
    assert main(["data", "convert", "vg", "--raw", str(raw), "--out", str(out)]) == 0
    assert "skipped 1 rows" in capsys.readouterr().out
    assert main(["data", "convert", "sbu", "--raw", str(raw), "--out", str(out), "--shard-rows", "2"]) == 0
    assert main(["data", "convert", "gcc", "--raw", str(raw), "--out", str(out), "--shard-rows", "3"]) == 0
    names = sorted(p.name for p in out.glob("*.arrow"))
    assert names == ["conceptual_caption_train_0.arrow", "conceptual_caption_train_1.arrow",
                     "conceptual_caption_val_0.arrow", "conceptual_caption_val_1.arrow",
                     "sbu_0.arrow", "sbu_1.arrow", "sbu_2.arrow", "vg.arrow"]
    data = DataSpec(source="arrow", root=str(out))
    vg = arrow_table(data, "vg", "pretrain", "train")
    assert [vg.text(i) for i in range(len(vg))] == ["region 1 0", "region 1 1", "region 2 0", "region 2 1"]
    sbu = arrow_table(data, "sbu", "pretrain", "train")
    assert len(sbu) == 5 and sbu.text(4) == "train caption 4"
    assert len(arrow_table(data, "gcc", "pretrain", "val")) == 5
    assert all(r.error is None and r.decoded == r.tried for r in check_root(out))
