"""Acceptance: an imported METER checkpoint is the starting point of a tiny fine-tuning grid that
runs to the end and reports (``pretrain: {from: meter:NAME}``: no pre-training job)."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml
from meter_export import write_meter_checkpoint

from harness.cli import main
from harness.models import build_model
from harness.models.config import ModelSpec
from harness.spec.compile import compile_grid
from harness.spec.schema import import_run_id
from harness.store import Store

MODEL = {"vision": "clip-vit-224/16", "text": "bert", "scale": "tiny", "weights": "random", "hidden": 32,
         "heads": 2, "fusion_layers": 1, "max_text_len": 16, "dropout": 0.0}
GRID = {
    "name": "from-meter",
    "base": {
        "model": MODEL,
        "pretrain": {"from": "meter:tiny-export"},
        "finetune": {"vqa": {"steps": 4, "batch": 8, "per_device_batch": 8, "image_size": 32, "lr": 1.0e-3,
                             "dataset": "synthetic", "eval_splits": ["test"]}},
        "data": {"source": "synthetic", "synthetic": {"image_size": 32, "train_images": 64, "eval_images": 16}},
        "train": {"log_every": 2},
    },
    "factors": {"optim.lr": [1.0e-3]},
    "seeds": 1,
    "report": {"title": "from METER", "rows": ["optim.lr"],
               "metrics": [{"name": "vqa", "task": "vqa", "split": "test", "metric": "vqa_score", "label": "VQA"}]},
}


def test_fine_tuning_grid_starts_from_an_imported_meter_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(3)
    source = build_model(ModelSpec(**MODEL), objectives=("mlm", "itm"), image_size=32)
    ckpt = write_meter_checkpoint(source, tmp_path / "meter.ckpt", tokenizer="bert-base-uncased")
    results = tmp_path / "results"
    assert main(["import", "meter", str(ckpt), "--name", "tiny-export", "--results", str(results)]) == 0
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump(GRID))

    jobs = compile_grid(grid).jobs
    imported = import_run_id("meter", "tiny-export")
    assert [(j.stage, j.depends_on) for j in jobs] == [("finetune", imported)]  # no pre-training job
    assert main(["run", str(grid), "--results", str(results)]) == 0

    runs = Store(results).runs()
    assert set(runs[runs["run_id"] == jobs[0].run_id]["status"]) >= {"done"}
    metrics = Store(results).metrics(run_ids=[jobs[0].run_id])
    assert not metrics[(metrics["split"] == "test") & (metrics["metric"] == "vqa_score")].empty
    assert (results / "reports" / "from-meter").is_dir()
    # the fine-tuned encoders started from the imported weights (4 small steps away), not from a fresh init
    from safetensors.torch import load_file

    tuned = load_file(str(results / "runs" / jobs[0].run_id / "model.safetensors"))
    key = "vision.backbone.patch_embed.proj.weight"
    moved = float((tuned[key] - source.state_dict()[key]).abs().max())
    fresh = build_model(ModelSpec(**MODEL), tasks={"vqa": {"num_answers": 10}}, image_size=32).state_dict()[key]
    assert moved < 0.1 * float((tuned[key] - fresh).abs().max())
