"""What ``--rehearse`` changes in a grid's jobs — sizes and placement, nothing else.

Applied to every compiled cell after its profile, factors and ``--set``s (so factor levels that set an image
size or a depth are scaled too), before run ids are computed:

    model.scale             → rehearsal: the tiny architecture of each encoder family, loaded through the paper
                              path (HF ``from_pretrained`` / timm ``pretrained=True``) from the hub-layout cache
    model.weights_dir       → none (the weights come from the hub cache that ``harness rehearsal prepare`` wrote)
    model.hidden / heads    → ÷12 / ÷3 (768/12 → 64/4); fusion_layers, decoder_layers → ÷3 (6 → 2), at least 1
    pretrain.steps          → 3;  finetune.<task>: steps 3 (epochs dropped)
    batch                   → 4 global (per-device batch unset: the trainer splits it over the tasks)
    every image size        → ×64/224 to a multiple of 32 (224 → 64, 288/384 → 96, 576 → 160)
    data.root               → DIR/arrow (every file METER's writers produce); data.num_workers → 0
    resources               → at most 2 GPUs on 1 node, 1 CPU per task, 2 GB, 30 min (the local cluster's size)

Everything else — objectives and their probabilities, tasks, datasets and splits, evaluation splits, retrieval
negatives, optimiser, LR ratio and head multipliers, warm-up and decay, precision, text length, seeds, the
report — is the paper profile's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.spec.schema import ExperimentSpec

STEPS = 3
BATCH = 4
MAX_GPUS = 2


def _size(size: int) -> int:
    from harness.models.vision import rehearsal_image_size

    return rehearsal_image_size(size)


def _model(model: Any) -> Any:
    hidden = max(16, model.hidden // 12)
    heads = max(1, model.heads // 3)
    while hidden % heads:
        heads -= 1
    return model.model_copy(update={
        "scale": "rehearsal", "weights_dir": None, "hidden": hidden, "heads": heads,
        "fusion_layers": max(1, model.fusion_layers // 3), "decoder_layers": max(1, model.decoder_layers // 3)})


def _stage(stage: Any, **extra: Any) -> Any:
    return stage.model_copy(update={"steps": STEPS, "batch": BATCH, "per_device_batch": None,
                                    "image_size": _size(stage.image_size), **extra})


def rehearse(exp: ExperimentSpec, root: Path) -> ExperimentSpec:
    """The rehearsal of ``exp`` reading the prepared folder ``root`` (see the module docstring)."""
    res = exp.resources
    update: dict[str, Any] = {
        "model": _model(exp.model),
        "finetune": {task: _stage(ft, epochs=None) for task, ft in exp.finetune.items()},
        "data": exp.data.model_copy(update={"root": str(root.absolute() / "arrow"), "num_workers": 0}),
        "resources": res.model_copy(update={"nodes": 1, "gpus_per_node": min(res.gpus_per_node, MAX_GPUS),
                                            "cpus_per_task": 1, "threads": 1, "mem_gb": 2.0, "time_min": 30}),
    }
    if exp.pretrain is not None:
        update["pretrain"] = _stage(exp.pretrain)
    # Validate the result as a whole (model_copy does not): a rehearsal is a valid experiment.
    return ExperimentSpec.model_validate(exp.model_copy(update=update).model_dump())
