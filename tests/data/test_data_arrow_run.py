"""Acceptance path of the data issue: a data root of ViLT/METER Arrow files (written here)
passes `harness data check`, and a tiny pre-train → fine-tune run trains from it."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_arrow_fixtures import make_root

from harness.cli import main
from harness.store import Store

GRID = """
name: arrow_tiny
base:
  model: {{vision: clip-vit-224/32, text: bert, scale: tiny, weights: random, hidden: 32, heads: 2,
          fusion_layers: 1, max_text_len: 12, dropout: 0.0}}
  data: {{source: arrow, root: "{root}"}}
  pretrain: {{objectives: [mlm, itm], steps: 3, batch: 4, image_size: 32, datasets: [coco, vg, sbu, gcc],
             zero_shot: coco}}
  finetune:
    vqa: {{steps: 3, batch: 4, image_size: 32, dataset: vqav2, eval_splits: [val, test-dev]}}
  resources: {{threads: 1}}
"""


@pytest.mark.slow
def test_arrow_root_checks_and_trains(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_root(tmp_path / "arrow")
    assert main(["data", "check", str(root)]) == 0
    grid = tmp_path / "arrow_tiny.yaml"
    grid.write_text(GRID.format(root=root))
    results = tmp_path / "results"
    assert main(["run", str(grid), "--results", str(results), "--workers", "1"]) == 0
    runs = Store(results).runs()
    assert sorted(runs["status"]) == ["done", "done"]
    metrics = Store(results).metrics()
    assert {"loss/mlm", "loss/itm"} <= set(metrics[metrics["stage"] == "pretrain"]["metric"])
    assert "vqa_score" in set(metrics[(metrics["task"] == "vqa") & (metrics["split"] == "val")]["metric"])
    # vqav2_test-dev is written through pandas as METER does (answer lists typed list<null>): it evaluates.
    assert "test-dev" in set(metrics[metrics["task"] == "vqa"]["split"])
