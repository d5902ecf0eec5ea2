"""VQAv2: soft-score BCE over the answer vocabulary (METER: mean BCE × number of answers).

Evaluation is the VQA score of the argmax answer. A split without answers (test-dev,
test-std) is scored by the evaluation server instead: its predictions go to
``<output_dir>/vqa_<split>_predictions.json`` as ``[{"question_id", "answer"}]``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor

from harness.data.collate import vqa_targets
from harness.train.checkpoint import write_json_atomic
from harness.train.metrics import vqa_score
from harness.train.plugin import BatchContext, RandomContext
from harness.train.tasks.classify import ClassifierTask

if TYPE_CHECKING:
    from harness.models.meter import MeterModel


class VQA(ClassifierTask):
    def num_classes(self, info: Mapping[str, Any]) -> int:
        if "num_answers" not in info:
            raise ValueError(f"task '{self.name}' needs tasks['{self.name}']['num_answers'] "
                             "(the answer vocabulary size)")
        return int(info["num_answers"])

    def info(self, table: Any, finetune: Any) -> dict[str, Any]:
        answers = table.info.get("answers")
        out: dict[str, Any] = {"num_answers": len(answers) if answers is not None else int(table.info["num_answers"])}
        if answers is not None:
            out["answers"] = tuple(answers)
        return out

    def batch_fields(self, sub: dict[str, Any], samples: list[dict[str, Any]], ctx: BatchContext) -> dict[str, Any]:
        sub["vqa_targets"] = vqa_targets([s["answer_labels"] for s in samples], [s["answer_scores"] for s in samples],
                                         ctx.num_answers)
        sub["question_id"] = torch.tensor([int(s["question_id"]) for s in samples], dtype=torch.long)
        return sub

    def random_fields(self, sub: dict[str, Any], ctx: RandomContext) -> dict[str, Any]:
        """Soft scores in [0, 1) over the answer vocabulary."""
        sub["vqa_targets"] = torch.rand(len(sub["input_ids"]), self.num_classes(ctx.info), generator=ctx.generator)
        return sub

    def loss(self, model: MeterModel, sub: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
        logits = model.heads[self.name](self.features(model, sub))
        targets = sub["vqa_targets"].to(logits.dtype)
        # METER: mean BCE over answers × number of answers (= sum over answers, mean over batch).
        return F.binary_cross_entropy_with_logits(logits, targets) * targets.shape[1], logits

    def example_scores(self, logits: Tensor, sub: Mapping[str, Any]) -> tuple[Tensor, float]:
        return vqa_score(logits, sub["vqa_targets"].float()), float((sub["vqa_targets"].sum(dim=-1) > 0).sum())

    def predictions(self, logits: Tensor, sub: Mapping[str, Any]) -> list[tuple[int, int]]:
        if "question_id" not in sub:
            return []
        return list(zip(_ints(sub["question_id"]), _ints(logits.argmax(-1)), strict=True))

    def unlabelled_result(self, predictions: list[tuple[int, int]], data: Any, split: str) -> dict[str, float]:
        """No answers in the split: gather every process's predictions for the evaluation server."""
        from harness.train.dist import all_gather, rank_world

        merged = [p for shard in all_gather(predictions) for p in shard]
        if rank_world()[0] == 0:
            write_vqa_predictions(merged, data, split)
        return {"predictions": float(len(merged))}


def _ints(values: Any) -> list[int]:
    return [int(v) for v in (values.tolist() if isinstance(values, torch.Tensor) else values)]


def write_vqa_predictions(predictions: list[tuple[int, int]], data: Any, split: str) -> Path | None:
    """The evaluation server's ``[{"question_id", "answer"}]`` file; None when the data gives no answers."""
    answers, folder = getattr(data, "answers", None), getattr(data, "output_dir", None)
    if not answers or folder is None:
        return None
    path = Path(folder) / f"vqa_{split}_predictions.json"
    rows = [{"question_id": qid, "answer": answers[idx]} for qid, idx in sorted(predictions)]
    write_json_atomic(path, rows)
    return path
