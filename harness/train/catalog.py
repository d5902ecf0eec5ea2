"""Names of pre-training objectives and fine-tuning tasks (torch-free)."""

from __future__ import annotations

from typing import Any

from harness.registry import OBJECTIVES, TASKS


def _objective(name: str, description: str, **meta: Any) -> None:
    def build(**kwargs: Any) -> Any:
        from harness.train.objectives import build_objective

        return build_objective(name, **kwargs)

    OBJECTIVES.register(name, description, **meta)(build)


def _task(name: str, description: str, **meta: Any) -> None:
    def build(**kwargs: Any) -> Any:
        from harness.train.tasks import build_task

        return build_task(name, **kwargs)

    TASKS.register(name, description, **meta)(build)


_objective("mlm", "masked language modelling (15%, 80/10/10, whole words), head not tied")
_objective("itm", "image-text matching: half the pairs get a random other image")
_objective("mim-in-batch-negatives", "masked image modelling: pick the original patch among all in the batch")
_objective("mim-discrete-code", "masked image modelling: predict the patch's code from a discrete tokenizer")
_objective("mim-regression", "masked patch regression (ViLT's variant)")
_objective("span-corruption", "T5-style span corruption through the decoder (encoder-decoder only)",
           needs_decoder=True)

# head_mult: the paper's head LR multiplier; metric: what the report ranks by.
_task("vqa", "VQAv2: soft-score BCE over the answer vocabulary", head_mult=50, metric="vqa_score")
_task("nlvr2", "NLVR2: two images and a statement → true/false", head_mult=10, metric="accuracy", images=2)
_task("snli-ve", "SNLI-VE: image premise + hypothesis → entailment/neutral/contradiction", head_mult=10,
      metric="accuracy")
_task("retrieval", "image-text retrieval: 1 positive + k negatives, rank head", head_mult=5, metric="ir_r1")
