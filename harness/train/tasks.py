"""Fine-tuning tasks' evaluation: VQA score, accuracy, retrieval recall; zero-shot retrieval.

A ``Task`` knows its metric and how to evaluate a model on a split; where the data comes
from is an ``EvalData`` (the data pipeline, or a test's stand-in).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from harness.registry import TASKS
from harness.train.checkpoint import write_json_atomic
from harness.train.metrics import correct, vqa_score
from harness.train.retrieval import evaluate_retrieval


class EvalData(Protocol):
    def batches(self, task: str, split: str) -> Iterable[dict[str, Any]]: ...
    def retrieval_set(self, split: str, dataset: str | None = None) -> Any: ...


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _to(sub: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in sub.items()}


@dataclass(frozen=True)
class ClassificationTask:
    """VQA (soft score of the argmax answer) or a labelled task (accuracy): mean over the split.

    Every process must call ``evaluate`` (it shards the batches and sums the results). A VQA
    split without answers (test-dev, test-std) is scored by the evaluation server instead:
    its predictions go to ``<output_dir>/vqa_<split>_predictions.json`` as
    ``[{"question_id", "answer"}]``, the server's format."""

    name: str
    metric: str

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, data: EvalData, split: str) -> dict[str, float]:
        from harness.train.dist import all_gather, all_sum, rank_world

        was_training = model.training
        model.eval()
        device = _device(model)
        rank, world = rank_world()
        total = count = loss_sum = labelled = 0.0
        predictions: list[tuple[int, int]] = []  # (question_id, answer index)
        try:
            for i, sub in enumerate(data.batches(self.name, split)):
                if i % world != rank:  # several processes: each evaluates every world-th batch
                    continue
                sub = _to(sub, device)
                out = model({self.name: sub})
                logits = out[f"logits/{self.name}"].float()
                if self.metric == "vqa_score":
                    scores = vqa_score(logits, sub["vqa_targets"].float())
                    labelled += float((sub["vqa_targets"].sum(dim=-1) > 0).sum())
                    if "question_id" in sub:
                        predictions += zip(_ints(sub["question_id"]), _ints(logits.argmax(-1)), strict=True)
                else:
                    scores = correct(logits, sub["labels"])
                    labelled += len(scores)
                total += float(scores.sum())
                loss_sum += float(out[f"loss/{self.name}"]) * len(scores)
                count += len(scores)
        finally:
            model.train(was_training)
        total, count, loss_sum, labelled = all_sum([total, count, loss_sum, labelled], device)
        if count == 0:
            raise ValueError(f"task '{self.name}': the '{split}' split yielded no examples to evaluate")
        if self.metric == "vqa_score" and labelled == 0:  # no answers: for the evaluation server
            merged = [p for shard in all_gather(predictions) for p in shard]
            if rank == 0:
                write_vqa_predictions(merged, data, split)
            return {"predictions": float(len(merged))}
        return {self.metric: total / count, "loss": loss_sum / count}


def _ints(values: Any) -> list[int]:
    return [int(v) for v in (values.tolist() if isinstance(values, torch.Tensor) else values)]


def write_vqa_predictions(predictions: list[tuple[int, int]], data: EvalData, split: str) -> Path | None:
    """The evaluation server's ``[{"question_id", "answer"}]`` file; None when the data gives no answers."""
    answers, folder = getattr(data, "answers", None), getattr(data, "output_dir", None)
    if not answers or folder is None:
        return None
    path = Path(folder) / f"vqa_{split}_predictions.json"
    rows = [{"question_id": qid, "answer": answers[idx]} for qid, idx in sorted(predictions)]
    write_json_atomic(path, rows)
    return path


@dataclass(frozen=True)
class RetrievalTask:
    """Image–text retrieval with the rank head (fine-tuned) or the ITM head (zero-shot)."""

    name: str = "retrieval"
    metric: str = "ir_r1"
    head: str = "rank"

    def evaluate(self, model: torch.nn.Module, data: EvalData, split: str,
                 dataset: str | None = None) -> dict[str, float]:
        return evaluate_retrieval(model, data.retrieval_set(split, dataset), head=self.head)


def build_task(name: str, **kwargs: Any) -> ClassificationTask | RetrievalTask:
    if name not in TASKS:
        raise ValueError(TASKS.unknown_message(name))
    metric = str(TASKS.get(name).meta.get("metric", "accuracy"))
    if name == "retrieval":
        return RetrievalTask(head=kwargs.get("head", "rank"))
    return ClassificationTask(name, metric)


def zero_shot_retrieval() -> RetrievalTask:
    """METER's zero-shot retrieval after pre-training: ranked by the ITM score."""
    return RetrievalTask(head="itm")
