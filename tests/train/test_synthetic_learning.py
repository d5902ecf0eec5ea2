"""The synthetic benchmark is learnable: on a small budget, the local profile's tiny METER (zoo
encoders, width 64) beats each task's blind prior by a stated margin, and its local pre-training learns
zero-shot retrieval well above chance.

Budgets and margins come from measured runs (see the grid headers): the classification tasks sit on a
plateau at their blind prior for a few hundred steps while the fusion learns to ground colour words,
then rise well above it (SNLI-VE: 51 % at step 300, 68 % at 450, 90 % at 600, blind prior 54 %).
The margins here are about a third of what was measured, so that seed noise does not fail them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from train_jobs import job

from harness.data.synthetic_data import baselines_for
from harness.spec.schema import ExperimentSpec
from harness.train import run_job

torch.set_num_threads(1)

# The local profile of the grids (grids/common/meter.yaml, grids/text_encoders.yaml), on 100 test images.
LOCAL = {
    "model": {"vision": "clip-vit-224/32", "text": "roberta", "scale": "tiny", "hidden": 64, "heads": 4,
              "fusion_layers": 2, "max_text_len": 16, "dropout": 0.0},
    "data": {"source": "synthetic", "synthetic": {"eval_images": 100}},
    "optim": {"lr": 2e-4, "lr_ratio": 5, "head_mult": 5, "warmup_ratio": 0.1, "weight_decay": 0.01,
              "betas": [0.9, 0.98]},
}
# task → (steps, metric, margin over the blind prior; for retrieval a multiple of chance)
BUDGETS = {
    "vqa": (300, "vqa_score", 0.10),
    "snli-ve": (600, "accuracy", 0.10),
    # NLVR2 (statements about the left image, the right one a distractor; harness/data/synthetic_tasks.py):
    # 52 % at step 300, 99 % at 450 against a blind prior of 56 %; the earlier mixes stayed near their prior.
    "nlvr2": (450, "accuracy", 0.10),
}


def _finetune(task: str, steps: int, **extra: object) -> ExperimentSpec:
    fin = {"steps": steps, "batch": 32, "image_size": 64, "lr": 2e-4, "head_mult": 5, "dataset": "synthetic",
           "eval_splits": ["test"], **extra}
    return ExperimentSpec.model_validate({**LOCAL, "finetune": {task: fin}})


@pytest.mark.slow
@pytest.mark.parametrize("task", list(BUDGETS))
def test_task_beats_its_blind_prior(task: str, tmp_path: Path) -> None:
    steps, metric, margin = BUDGETS[task]
    exp = _finetune(task, steps)
    result = run_job(job(exp, "finetune", task, grid="learning-test"), tmp_path)
    blind = baselines_for(exp.data.synthetic, task)["blind"]
    score = result["metrics"][f"test/{metric}"]
    assert score > blind + margin, f"{task}: {score:.3f} after {steps} steps, blind prior {blind:.3f}"


@pytest.mark.slow
def test_retrieval_beats_chance(tmp_path: Path) -> None:
    exp = _finetune("retrieval", 200, batch=16, negatives=3)
    result = run_job(job(exp, "finetune", "retrieval", grid="learning-test"), tmp_path)
    chance = baselines_for(exp.data.synthetic, "retrieval")["chance"]
    assert result["metrics"]["test/ir_r1"] >= 3 * chance, result["metrics"]


# The local pre-training of the VLP grids (grids/common/meter.yaml): MLM + ITM, 900 steps at batch 32, no LR
# decay after the warm-up. RoBERTa + CLIP-ViT/16 is the combination that needs the constant LR: zero-shot
# IR@1 / TR@1 9.7 / 11.5 % over 2 seeds with it, 2.7 / 1.0 with the linear decay (chance 1 %).
LOCAL_PRETRAIN = {"objectives": ["mlm", "itm"], "steps": 900, "batch": 32, "image_size": 64,
                  "datasets": ["synthetic"], "zero_shot": "synthetic", "itm_negatives": "bernoulli",
                  "mlm_masking": "whole-word", "decay": "constant"}


@pytest.mark.slow
def test_zero_shot_retrieval_after_the_local_pretraining(tmp_path: Path) -> None:
    model = {**LOCAL["model"], "vision": "clip-vit-224/16", "text": "roberta"}  # type: ignore[dict-item]
    exp = ExperimentSpec.model_validate({**LOCAL, "model": model, "pretrain": LOCAL_PRETRAIN})
    result = run_job(job(exp, "pretrain", grid="learning-test"), tmp_path)
    chance = baselines_for(exp.data.synthetic, "retrieval")["chance"]
    metrics = result["metrics"]
    assert metrics["test/ir_r1"] >= 3 * chance and metrics["test/tr_r1"] >= 3 * chance, metrics
