"""Names of pre-training objectives and fine-tuning tasks (torch-free).

Each line names the plug-in class that implements the behaviour (``module:Class``, imported
only when the entry is built) — see ``harness.train.plugin`` for the contract.
"""

from __future__ import annotations

from typing import Any

from harness.registry import OBJECTIVES, TASKS, Registry, lazy_builder


def _register(registry: Registry, name: str, target: str, description: str, **meta: Any) -> None:
    registry.register(name, description, **meta)(lazy_builder(name, target))


def _objective(name: str, target: str, description: str, **meta: Any) -> None:
    _register(OBJECTIVES, name, f"harness.train.objectives.{target}", description, **meta)


def _task(name: str, target: str, description: str, **meta: Any) -> None:
    _register(TASKS, name, f"harness.train.tasks.{target}", description, **meta)


_objective("mlm", "mlm:MaskedLanguageModelling",
           "masked language modelling (15%, 80/10/10, whole words), head not tied")
_objective("itm", "itm:ImageTextMatching", "image-text matching: half the pairs get a random other image",
           ranks_pairs=True)
_objective("mim-in-batch-negatives", "mim:InBatchNegatives",
           "masked image modelling: pick the original patch among all in the batch")
_objective("mim-discrete-code", "mim:DiscreteCode",
           "masked image modelling: predict the patch's code from a discrete tokenizer")
_objective("mim-regression", "mim:PatchRegression", "masked patch regression (ViLT's variant)")
_objective("span-corruption", "span:SpanCorruption",
           "T5-style span corruption through the decoder (encoder-decoder only)", needs_decoder=True)

# head_mult: the paper's head LR multiplier; metric: what the report ranks by; dataset: what it reads when the
# grid's finetune section names none.
# head_info: what the plan counts the head with before any data is read (VQAv2's 3,129 answers).
_task("vqa", "vqa:VQA", "VQAv2: soft-score BCE over the answer vocabulary", head_mult=50, metric="vqa_score",
      dataset="vqav2", head_info={"num_answers": 3129})
_task("nlvr2", "nlvr2:NLVR2", "NLVR2: two images and a statement → true/false", head_mult=10, metric="accuracy",
      images=2, dataset="nlvr2", head_info={"num_classes": 2, "images": 2})
_task("snli-ve", "snli_ve:VisualEntailment",
      "SNLI-VE: image premise + hypothesis → entailment/neutral/contradiction", head_mult=10, metric="accuracy",
      dataset="snli-ve", head_info={"num_classes": 3})
_task("retrieval", "retrieval:Retrieval", "image-text retrieval: 1 positive + k negatives, rank head", head_mult=5,
      metric="ir_r1", dataset="f30k", head_info={"negatives": 15})
