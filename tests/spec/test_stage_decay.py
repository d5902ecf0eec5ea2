"""pretrain.decay: a pre-training-only LR schedule after the warm-up. Unset, it leaves every run id as it
was before the key existed (pinned below); set, it changes the pre-training job (and so its fine-tunings)
and reaches the pre-training's scheduler only."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.spec.compile import compile_grid
from harness.spec.schema import JobSpec, job_identity
from harness.train.settings import resolve

GRID = """\
name: staged
base:
  model: {scale: tiny, weights: random, hidden: 16, heads: 2, fusion_layers: 1}
  pretrain: {objectives: [mlm, itm], steps: 5, batch: 8, image_size: 32, datasets: [coco], zero_shot: null}
  finetune:
    vqa: {steps: 5, batch: 8, image_size: 32, dataset: vqav2}
  data: {source: arrow, root: /data/a}
seeds: 1
"""

# Recorded at a72e2e2, before pretrain.decay existed.
PINNED = {"pretrain": "027d8542e0f04b7ce5170a156b4cf3c796fe2a2d71829f8c564130ee19f80032",
          "finetune": "88980b04050509fb228884623517e69c670d1d9d697edbcaf04cbd18aad55921"}


@pytest.fixture
def grid(tmp_path: Path) -> Path:
    path = tmp_path / "staged.yaml"
    path.write_text(GRID)
    return path


def _jobs(path: Path, sets: list[str] | None = None) -> dict[str, JobSpec]:
    return {j.stage: j for j in compile_grid(path, sets=sets or []).jobs}


def test_unset_decay_keeps_earlier_run_ids(grid: Path) -> None:
    jobs = _jobs(grid)
    assert {stage: j.run_id for stage, j in jobs.items()} == PINNED
    pre = jobs["pretrain"]
    identity = job_identity(pre.experiment, "pretrain", None, pre.seed, None)
    assert "decay" not in identity["pretrain"]


def test_set_decay_is_identity(grid: Path) -> None:
    before, after = _jobs(grid), _jobs(grid, ["pretrain.decay=constant"])
    for stage in ("pretrain", "finetune"):  # the fine-tuning starts from another pre-training
        assert after[stage].run_id != before[stage].run_id
    pre = after["pretrain"]
    identity = job_identity(pre.experiment, "pretrain", None, pre.seed, None)
    assert identity["pretrain"]["decay"] == "constant"


@pytest.mark.parametrize("decay", ["constant", "cosine"])
def test_decay_reaches_the_pretraining_schedule_only(grid: Path, decay: str) -> None:
    jobs = _jobs(grid, [f"pretrain.decay={decay}", "optim.decay=linear"])
    assert resolve(jobs["pretrain"]).decay == decay
    assert resolve(jobs["finetune"]).decay == "linear"


def test_unset_decay_follows_optim(grid: Path) -> None:
    jobs = _jobs(grid, ["optim.decay=cosine"])
    assert resolve(jobs["pretrain"]).decay == "cosine"


def test_unknown_decay_is_refused(grid: Path) -> None:
    from harness.spec.errors import GridError

    with pytest.raises(GridError, match="decay"):
        _jobs(grid, ["pretrain.decay=step"])
