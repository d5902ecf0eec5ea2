"""``--rehearse`` changes sizes and placement only: every other key of every paper job stays as the paper
profile has it, so a rehearsal runs the paper path, not another experiment."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest

from harness.rehearsal.spec import rehearse
from harness.spec.compile import compile_grid

ROOT = Path(__file__).resolve().parents[2]
GRIDS = sorted((ROOT / "grids").glob("*.yaml"))
SIZES = {"steps", "epochs", "batch", "per_device_batch", "image_size"}
ALLOWED = {"model.scale", "model.weights_dir", "model.hidden", "model.heads", "model.fusion_layers",
           "model.decoder_layers", "data.root", "data.num_workers"}


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, sub in value.items():
            out.update(_flat(sub, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: value}


def _allowed(key: str) -> bool:
    head, *_, last = key.split(".")
    return key in ALLOWED or head == "resources" or (head in ("pretrain", "finetune") and last in SIZES)


@pytest.mark.parametrize("grid", GRIDS, ids=[g.stem for g in GRIDS])
def test_rehearsal_differs_from_the_paper_profile_only_in_size_and_placement(grid: Path, tmp_path: Path) -> None:
    paper = compile_grid(grid, "paper")
    rehearsal = compile_grid(grid, "paper", transform=functools.partial(rehearse, root=tmp_path))
    assert [(j.stage, j.task, j.factors, j.seed) for j in paper.jobs] == \
           [(j.stage, j.task, j.factors, j.seed) for j in rehearsal.jobs]
    for before, after in zip(paper.jobs, rehearsal.jobs, strict=True):
        old, new = _flat(before.experiment.model_dump(mode="json")), _flat(after.experiment.model_dump(mode="json"))
        assert old.keys() == new.keys()
        changed = {k for k in old if old[k] != new[k]}
        assert {k for k in changed if not _allowed(k)} == set(), f"{grid.stem}: a rehearsal changed more than size"
        assert new["model.scale"] == "rehearsal" and new["data.root"] == str(tmp_path.absolute() / "arrow")
        assert after.run_id != before.run_id
    if paper.jobs[0].experiment.pretrain is not None:
        assert rehearsal.jobs[0].experiment.pretrain.steps == 3


def test_rehearsal_scales_sizes_and_keeps_factor_levels_apart(tmp_path: Path) -> None:
    grid = compile_grid(ROOT / "grids" / "main.yaml", "paper", transform=functools.partial(rehearse, root=tmp_path))
    model = grid.jobs[0].experiment.model
    assert (model.hidden, model.heads, model.fusion_layers) == (64, 4, 2)
    sizes = {j.factors["model"]: j.experiment.pretrain.image_size for j in grid.jobs if j.stage == "pretrain"}
    assert sizes == {"meter-clip-vit-base": 96, "meter-swin-base": 96}  # paper: 288 and 384
    vqa = next(j.experiment.finetune["vqa"] for j in grid.jobs if j.task == "vqa")
    assert (vqa.steps, vqa.epochs, vqa.batch, vqa.image_size, vqa.eval_splits) == (3, None, 4, 160, ("val", "test-dev"))
    assert grid.jobs[0].experiment.resources.gpus_per_node == 2


def test_plan_rehearse_counts_the_rehearsal_model_not_the_paper_one(tmp_path: Path) -> None:
    """`harness plan GRID --profile paper --rehearse` shows the rehearsal's own sizes: its parameter count is
    that of the encoders `harness rehearsal prepare` saves (the text encoder's saved config, tiny widths on the
    published vocabulary), and its memory and FLOPs follow, far below the paper job's."""
    from transformers import AutoConfig

    from harness.dispatch.cost import job_cost
    from harness.models.config import ModelSpec
    from harness.models.text import build_text_encoder
    from harness.models.text_families import model_from_config
    from harness.rehearsal.checkpoints import save_text

    grid = ROOT / "grids" / "text_encoders.yaml"
    paper = compile_grid(grid, "paper", only=["model.text=bert"])
    rehearsal = compile_grid(grid, "paper", only=["model.text=bert"], transform=functools.partial(rehearse,
                                                                                                     root=tmp_path))
    paper_cost, rehearsal_cost = job_cost(paper.jobs[0]), job_cost(rehearsal.jobs[0])
    assert rehearsal_cost.params < paper_cost.params / 20, (rehearsal_cost.params, paper_cost.params)
    assert rehearsal_cost.peak_mem_gb < paper_cost.peak_mem_gb / 20
    assert rehearsal_cost.flops_per_step < paper_cost.flops_per_step / 1000

    # The text encoder the plan counts is the one the rehearsal loads from its prepared checkpoint.
    saved = AutoConfig.from_pretrained(save_text(tmp_path / "hub", "bert-base-uncased", "bert"))
    loaded = sum(p.numel() for p in model_from_config("bert", saved).parameters())
    spec = ModelSpec(text="bert", scale="rehearsal", weights="random")
    counted = sum(p.numel() for p in build_text_encoder("bert", spec=spec).backbone.parameters())
    assert counted == loaded
