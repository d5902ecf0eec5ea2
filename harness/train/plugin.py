"""The plug-in contract of objectives and tasks: each one owns its head, its batch fields,
its loss and its metrics; a task also owns its evaluation.

The registry entry of an objective or task builds one of these (``OBJECTIVES.build_plugin(name)``),
and every part of the harness asks it for the behaviour instead of branching on the name:

- ``MeterModel`` keeps encoders, projections, fusion, pooling and decoder; it calls
  ``build_head`` once per name and ``loss`` inside its own ``forward`` (so one DDP forward
  covers every head);
- the collator calls ``batch_fields`` to add the plug-in's fields to a clean sub-batch, and the
  sampler draws what ``sampler_draw`` names (an ITM negative image, retrieval negative captions);
- the trainer logs ``train_metrics``; a task's ``evaluate`` scores a split;
- ``random_fields`` fills the same fields with random values of the right shapes on a random clean
  sub-batch (``harness.train.random_batch``: benches, the GPU check and the model tests run every
  registered plug-in through it, so a new one needs no edit there).

A new objective is one module with a subclass of ``Objective`` plus one registry line
(``harness/train/catalog.py`` for the package's own; ``@OBJECTIVES.register`` in a user's plug-in).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor, nn

from harness.data.loaders import BatchContext

if TYPE_CHECKING:
    from harness.models.meter import MeterModel

__all__ = ["BatchContext", "HeadPlugin", "Objective", "RandomContext", "Task"]


@dataclass(frozen=True)
class RandomContext:
    """What ``random_fields`` draws with besides the clean sub-batch."""

    generator: torch.Generator  # on the CPU; seed it for the same batch every time
    mask_token_id: int  # the text's [MASK] id (below the vocabulary size)
    info: Mapping[str, Any] = field(default_factory=dict)  # the head's build info (VQA: num_answers)


class HeadPlugin:
    """Shared part of objectives and tasks. Subclasses set the class attributes they need and
    implement ``build_head`` and ``loss``; ``name`` is the registry name the entry was built under."""

    name: str = ""
    # Label key in the sub-batch whose argmax accuracy is worth logging while training (None: loss only).
    label_key: ClassVar[str | None] = None
    # What the sampler draws per sample: "itm" (a random other image) or "retrieval" (negative captions).
    sampler_draw: ClassVar[str | None] = None
    # Name under which ``MeterModel.score_pairs(head=...)`` scores aligned pairs with this plug-in's head.
    score_name: ClassVar[str | None] = None
    # Needs the text tokenizer's mask/pad ids (``model.special_tokens``).
    needs_special_tokens: ClassVar[bool] = False

    def __init__(self, name: str | None = None) -> None:
        self.name = name or self.name or type(self).__name__.lower()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    # ---- model side (inside MeterModel) --------------------------------------------------------

    def build_head(self, model: MeterModel, info: Mapping[str, Any]) -> nn.Module:
        """The head module, stored as ``model.heads[name]`` (declare ``lr_group = "head"``)."""
        raise NotImplementedError

    def loss(self, model: MeterModel, sub: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
        """(loss, logits) of one sub-batch; runs inside ``model.forward``."""
        raise NotImplementedError

    def pair_score(self, head: nn.Module, pooled: Tensor) -> Tensor:
        """Float[N] score of aligned pairs from their pooled features (only with ``score_name``)."""
        raise ValueError(f"'{self.name}' does not score image-text pairs")

    def after_pretrained_load(self, model: MeterModel, state: Mapping[str, Tensor]) -> None:
        """Adjust the model after a pre-training checkpoint was loaded (METER's head initialisations)."""

    # ---- data side (inside the collator) -------------------------------------------------------

    def batch_fields(self, sub: dict[str, Any], samples: list[dict[str, Any]], ctx: BatchContext) -> dict[str, Any]:
        """Add this plug-in's fields to ``sub`` (a clean sub-batch: input_ids, attention_mask,
        pixel_values, index) from the raw samples; the default adds none."""
        return sub

    def random_fields(self, sub: dict[str, Any], ctx: RandomContext) -> dict[str, Any]:
        """The fields ``batch_fields`` adds, with random values of the right shapes and ranges, on ``sub``
        (random clean pairs: input_ids/attention_mask Long[B,L], pixel_values Float[B,3,H,W], on the CPU);
        the default adds none (a plug-in that reads clean pairs, e.g. MIM)."""
        return sub

    # ---- trainer side ------------------------------------------------------------------------

    def train_metrics(self, outputs: Mapping[str, Any], sub: Mapping[str, Any] | None) -> dict[str, Tensor]:
        """``{"acc/<name>": accuracy}`` over labelled positions (-100 = none), when there are labels."""
        logits = outputs.get(f"logits/{self.name}")
        if self.label_key is None or logits is None or sub is None or self.label_key not in sub:
            return {}
        labels = sub[self.label_key].to(logits.device)
        with torch.no_grad():
            predicted = logits.argmax(dim=-1)
            if predicted.shape != labels.shape:  # e.g. the model predicts only at masked positions
                return {}
            keep = labels != -100
            hits = (predicted == labels) & keep
            return {f"acc/{self.name}": hits.sum().float() / keep.sum().clamp(min=1).float()}


class Objective(HeadPlugin):
    """A pre-training objective."""


class Task(HeadPlugin):
    """A fine-tuning task: a head plug-in that also evaluates a split.

    ``metric`` (what the report ranks by) and ``head_mult`` live in the registry metadata, which
    is torch-free; ``evaluate`` returns ``{metric: value, ...}`` for one split."""

    @property
    def metric(self) -> str:
        from harness.registry import TASKS

        return TASKS.get(self.name).meta.metric

    def info(self, table: Any, finetune: Any) -> dict[str, Any]:
        """What the head and schedule need from the task's training table (``table.info``) and its
        ``finetune.<task>`` spec; passed to ``build_head`` as ``info``. None by default."""
        return {}

    def evaluate(self, model: nn.Module, data: Any, split: str, **kwargs: Any) -> dict[str, float]:
        raise NotImplementedError
