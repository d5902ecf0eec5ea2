"""Classification tasks (VQA, NLVR2, SNLI-VE): METER's task MLP on the pooled pair feature, and
the shared evaluation loop (mean of a per-example score over the split, sharded over processes)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harness.models.fusion import init_new_weights
from harness.models.heads import Head
from harness.train.metrics import correct
from harness.train.plugin import BatchContext, RandomContext, Task

if TYPE_CHECKING:
    from harness.models.meter import MeterModel


class EvalData(Protocol):
    def batches(self, task: str, split: str) -> Iterable[dict[str, Any]]: ...
    def retrieval_set(self, split: str, dataset: str | None = None) -> Any: ...


class ClassifierMLP(Head):
    """METER's task MLP: Linear(in → 2H), LayerNorm, GELU, Linear(→ classes)."""

    meter_decays_norms = True  # METER names this LayerNorm "<task>_classifier.1", which its no-decay list misses

    def __init__(self, in_features: int, hidden: int, classes: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.fc2 = nn.Linear(hidden, classes)
        init_new_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.norm(self.fc1(x))))


def _to(sub: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in sub.items()}


class ClassifierTask(Task):
    """A labelled task: ``labels`` Long[B], cross-entropy, accuracy. Subclasses set ``classes``
    (or override ``num_classes``) and may widen the head's input (``pairs_per_example``)."""

    classes: int = 0
    pairs_per_example: int = 1  # NLVR2 concatenates the pooled features of its two image-text pairs

    def num_classes(self, info: Mapping[str, Any]) -> int:
        return self.classes

    def info(self, table: Any, finetune: Any) -> dict[str, Any]:
        return {"num_classes": self.classes, **({"images": 2} if self.pairs_per_example == 2 else {})}

    def build_head(self, model: MeterModel, info: Mapping[str, Any]) -> nn.Module:
        return ClassifierMLP(self.pairs_per_example * model.pooled_dim, 2 * model.spec.hidden, self.num_classes(info))

    def features(self, model: MeterModel, sub: Mapping[str, Any]) -> Tensor:
        image = model.encode_image(sub["pixel_values"])
        return model.pair_features(image, model.encode_text(sub["input_ids"], sub["attention_mask"]))

    def batch_fields(self, sub: dict[str, Any], samples: list[dict[str, Any]], ctx: BatchContext) -> dict[str, Any]:
        sub["labels"] = torch.tensor([s["label"] for s in samples], dtype=torch.long)
        return sub

    def random_fields(self, sub: dict[str, Any], ctx: RandomContext) -> dict[str, Any]:
        sub["labels"] = torch.randint(0, self.num_classes(ctx.info), (len(sub["input_ids"]),), generator=ctx.generator)
        return sub

    def loss(self, model: MeterModel, sub: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
        logits = model.heads[self.name](self.features(model, sub))
        return F.cross_entropy(logits, sub["labels"]), logits

    # ---- evaluation ----------------------------------------------------------------------------

    def example_scores(self, logits: Tensor, sub: Mapping[str, Any]) -> tuple[Tensor, float]:
        """(per-example score, number of labelled examples) of one batch."""
        scores = correct(logits, sub["labels"])
        return scores, float(len(scores))

    def predictions(self, logits: Tensor, sub: Mapping[str, Any]) -> list[tuple[int, int]]:
        """(example id, predicted class) pairs kept for a split without labels; none by default."""
        return []

    def unlabelled_result(self, predictions: list[tuple[int, int]], data: Any, split: str) -> dict[str, float]:
        raise ValueError(f"task '{self.name}': the '{split}' split has no labels to evaluate against")

    @torch.no_grad()
    def evaluate(self, model: nn.Module, data: Any, split: str, **kwargs: Any) -> dict[str, float]:
        """Mean score over the split. Every process must call it (it shards the batches and sums)."""
        from harness.train.dist import all_sum, rank_world

        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        rank, world = rank_world()
        total = count = loss_sum = labelled = 0.0
        predictions: list[tuple[int, int]] = []
        try:
            for i, sub in enumerate(data.batches(self.name, split)):
                if i % world != rank:  # several processes: each evaluates every world-th batch
                    continue
                sub = _to(sub, device)
                out = model({self.name: sub})
                logits = out[f"logits/{self.name}"].float()
                scores, n_labelled = self.example_scores(logits, sub)
                predictions += self.predictions(logits, sub)
                labelled += n_labelled
                total += float(scores.sum())
                loss_sum += float(out[f"loss/{self.name}"]) * len(scores)
                count += len(scores)
        finally:
            model.train(was_training)
        total, count, loss_sum, labelled = all_sum([total, count, loss_sum, labelled], device)
        if count == 0:
            raise ValueError(f"task '{self.name}': the '{split}' split yielded no examples to evaluate")
        if labelled == 0:
            return self.unlabelled_result(predictions, data, split)
        return {self.metric: total / count, "loss": loss_sum / count}
