"""Metrics, LR groups/schedule, batch splitting and fast retrieval against the per-pair path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from harness.train.metrics import correct, retrieval_recalls, vqa_score
from harness.train.optim import build_optimizer, build_scheduler, lr_factor
from harness.train.retrieval import encode_all, merge_shards, naive_score_matrix, score_matrix, sharded_scores
from harness.train.settings import split_batch, steps_for_epochs
from harness.train.tasks import build_task

torch.set_num_threads(1)


def test_vqa_score_takes_the_soft_score_of_the_argmax_answer() -> None:
    logits = torch.tensor([[0.1, 2.0, 0.3], [3.0, 0.0, 0.0]])
    targets = torch.tensor([[0.0, 0.6, 1.0], [0.3, 1.0, 0.0]])
    assert vqa_score(logits, targets).tolist() == pytest.approx([0.6, 0.3])
    assert correct(logits, torch.tensor([1, 1])).tolist() == [1.0, 0.0]


def test_retrieval_recalls_both_directions() -> None:
    # 3 images, 4 texts; texts 0,1 → image 0, text 2 → image 1, text 3 → image 2.
    scores = torch.tensor([
        [9.0, 1.0, 0.0, 0.0],
        [0.0, 8.0, 7.0, 0.0],  # image 1 prefers text 1 (not its own): TR@1 miss, IR of text 1 miss
        [0.0, 0.0, 0.0, 5.0],
    ])
    r = retrieval_recalls(scores, [0, 0, 1, 2])
    assert r["ir_r1"] == pytest.approx(3 / 4)  # text 1 ranks image 1 first
    assert r["tr_r1"] == pytest.approx(2 / 3)
    assert r["ir_r5"] == r["tr_r5"] == 1.0
    constant = retrieval_recalls(torch.zeros(3, 4), [0, 0, 1, 2])
    assert constant["ir_r1"] == 0.0 and constant["tr_r1"] == 0.0  # ties never count as hits


def test_weight_decay_skips_biases_and_norms_and_groups_get_their_rates() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.Linear(4, 2))
    groups = {"pretrained": list(model[0].named_parameters()), "random": list(model[1].named_parameters()),
              "head": list(model[2].named_parameters())}
    lrs = {"pretrained": 1.0, "random": 5.0, "head": 50.0}
    opt = build_optimizer(model, groups, lrs, weight_decay=0.1, betas=(0.9, 0.98), eps=1e-8)
    by_name = {g["name"]: g for g in opt.param_groups}
    assert set(by_name) == {"pretrained/decay", "pretrained/no_decay", "random/no_decay", "head/decay",
                            "head/no_decay"}
    assert by_name["pretrained/decay"]["params"] == [model[0].weight]
    assert by_name["random/no_decay"]["params"] == [model[1].weight, model[1].bias]
    assert by_name["head/decay"]["weight_decay"] == 0.1 and by_name["head/no_decay"]["weight_decay"] == 0.0
    sched = build_scheduler(opt, total_steps=10, warmup_ratio=0.1, decay="cosine")
    seen = []
    for _ in range(10):
        seen.append({g["name"]: g["lr"] for g in opt.param_groups})
        opt.step()
        sched.step()
    assert seen[1]["head/decay"] == pytest.approx(50.0)  # peak right after 1 warm-up step
    assert seen[5]["random/no_decay"] == pytest.approx(5.0 * lr_factor(5, 10, 0.1, "cosine"))
    with pytest.raises(ValueError, match="in no LR group"):
        build_optimizer(model, {"head": groups["head"]}, lrs, weight_decay=0.1, betas=(0.9, 0.98), eps=1e-8)


def test_batch_split_and_epoch_steps() -> None:
    assert split_batch(4096, 32, 8, "pretrain") == (32, 16)
    assert split_batch(64, None, 2, "x") == (32, 1)
    with pytest.raises(ValueError, match="not a multiple"):
        split_batch(100, 32, 1, "finetune.vqa")
    assert steps_for_epochs(10, 1000, 512) == 20  # optimizer steps, whatever the accumulation


class ToyScorer(nn.Module):
    """Encoders and a fusion that mixes the pair, shaped like MeterModel's retrieval API."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.image = nn.Conv2d(3, 8, 4, stride=4)
        self.text = nn.Embedding(20, 8)
        self.fuse = nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = nn.Linear(8, 1)

    def encode_image(self, pixel_values: torch.Tensor) -> dict[str, torch.Tensor]:
        tokens = self.image(pixel_values).flatten(2).transpose(1, 2)
        return {"tokens": tokens, "mask": torch.ones(tokens.shape[:2], dtype=torch.long)}

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"tokens": self.text(input_ids), "mask": attention_mask}

    def score_pairs(self, image: dict, text: dict, head: str = "itm") -> torch.Tensor:
        fused, _ = self.fuse(text["tokens"], image["tokens"], image["tokens"])
        keep = text["mask"].unsqueeze(-1).float()
        return self.head((fused * keep).sum(1) / keep.sum(1)).squeeze(-1)


def test_fast_retrieval_scores_equal_the_per_pair_model() -> None:
    model = ToyScorer().eval()
    g = torch.Generator().manual_seed(1)
    pixels = torch.randn(6, 3, 16, 16, generator=g)
    ids = torch.randint(1, 20, (13, 5), generator=g)
    mask = torch.ones_like(ids)
    mask[::3, 3:] = 0
    images, texts = encode_all(model, pixels, ids, mask, batch_size=4)
    fast = score_matrix(model, images, texts, 6, 13, pair_batch=17)
    slow = naive_score_matrix(model, pixels, ids, mask, pair_batch=5)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)
    # and the matrix is really [image, text]: compare one entry with a direct call
    with torch.no_grad():
        one = model.score_pairs(model.encode_image(pixels[2:3]), model.encode_text(ids[7:8], mask[7:8]))
    assert float(fast[2, 7]) == pytest.approx(float(one), rel=1e-5)


def test_retrieval_shards_merge_to_the_whole_matrix() -> None:
    """Three processes' shares of the image rows put back together = the one-process matrix."""
    model = ToyScorer().eval()
    g = torch.Generator().manual_seed(2)
    pixels, ids = torch.randn(7, 3, 16, 16, generator=g), torch.randint(1, 20, (9, 5), generator=g)
    images, texts = encode_all(model, pixels, ids, torch.ones_like(ids))
    whole = score_matrix(model, images, texts, 7, 9)
    shards = [sharded_scores(model, images, texts, rank, 3, "itm", 10) for rank in range(3)]
    assert sorted(int(r) for rows, _ in shards for r in rows) == list(range(7))
    torch.testing.assert_close(merge_shards(shards, 7, 9), whole, rtol=1e-6, atol=1e-7)


class FakeVQA(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 3)
        with torch.no_grad():  # answer = argmax of the input's features: 0 or 1
            self.fc.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
            self.fc.bias.zero_()

    def forward(self, batch: dict) -> dict:
        logits = self.fc(batch["vqa"]["x"])
        loss = logits.sum() * 0
        return {"loss": loss, "loss/vqa": loss, "logits/vqa": logits}


class FakeEvalData:
    answers = ("yes", "no", "two")

    def __init__(self, output_dir: Path) -> None:
        self.output_dir = output_dir
        x = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
        self.splits = {
            "val": [{"x": x, "vqa_targets": torch.tensor([[1.0, 0.0, 0.0], [0.3, 0.6, 0.0]]),
                     "question_id": torch.tensor([11, 12])}],
            "test-dev": [{"x": x, "vqa_targets": torch.zeros(2, 3), "question_id": torch.tensor([21, 22])}],
        }

    def batches(self, task: str, split: str) -> list[dict]:
        return self.splits[split]


def test_vqa_scores_labelled_splits_and_writes_server_predictions(tmp_path: Path) -> None:
    task, data = build_task("vqa"), FakeEvalData(tmp_path)
    assert task.evaluate(FakeVQA(), data, "val")["vqa_score"] == pytest.approx((1.0 + 0.6) / 2)
    assert task.evaluate(FakeVQA(), data, "test-dev") == {"predictions": 2.0}
    written = json.loads((tmp_path / "vqa_test-dev_predictions.json").read_text())
    assert written == [{"question_id": 21, "answer": "yes"}, {"question_id": 22, "answer": "no"}]
