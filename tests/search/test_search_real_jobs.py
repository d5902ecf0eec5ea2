"""Two trials of real tiny jobs through ``harness.train.run_job`` (random weights: no tiny zoo needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from search_fakes import GRID, write_grid

from harness.search.config import parse_search
from harness.search.study import count_states, open_study
from harness.search.worker import WorkerConfig, run_worker

REAL_GRID = GRID.replace(
    "  model: {scale: tiny, hidden: 16, heads: 2, fusion_layers: 1, max_text_len: 8}",
    "  model: {scale: tiny, weights: random, hidden: 16, heads: 2, fusion_layers: 1, max_text_len: 8, dropout: 0.0}\n"
    "  data: {synthetic: {train_images: 64, eval_images: 16}}\n"
    "  resources: {threads: 1}",
).replace("vqa: {steps: 50, batch: 8, image_size: 32", "vqa: {steps: 12, batch: 8, image_size: 32")
REAL_GRID = REAL_GRID.replace("eval_every: 10}", "eval_every: 6}")


@pytest.mark.slow
def test_trials_of_real_jobs_report_intermediate_and_final_scores(tmp_path: Path) -> None:
    import yaml

    from harness.store import Store

    grid = write_grid(tmp_path, REAL_GRID)
    results = tmp_path / "results"
    spec = parse_search(yaml.safe_load(REAL_GRID)["search"])
    config = WorkerConfig(grid_path=str(grid), profile=None, results=str(results),
                          storage=str(results / "search" / "search_toy" / "journal.log"), study_name="search_toy",
                          search=spec.model_dump(mode="json"), trials=2)
    assert config.job_runner == "harness.train:run_job"
    assert run_worker(config) == {"COMPLETE": 2}
    study = open_study(spec, config.storage, config.study_name)
    assert count_states(study) == {"COMPLETE": 2}
    metrics = Store(results).metrics()
    for trial in study.trials:
        assert list(trial.intermediate_values) == [6], "on_eval reported the step-6 evaluation"
        run = metrics[(metrics["run_id"] == trial.user_attrs["run_id"]) & (metrics["split"] == "val")
                      & (metrics["metric"] == "vqa_score")]
        assert trial.value == run.sort_values("step")["value"].iloc[-1]
        assert (results / "runs" / trial.user_attrs["run_id"] / "spec.json").exists()
