"""Splits by column: an evaluation split its dataset does not have and a report column whose split no job
evaluates are compile-time errors naming both sides; the paper grids' columns are the paper's."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.spec.compile import compile_grid
from harness.spec.errors import GridError

ROOT = Path(__file__).resolve().parents[2]

GRID = """\
name: splitty
base:
  model: {{scale: tiny, weights: random, hidden: 16, heads: 2, fusion_layers: 1}}
  data: {{source: {source}, root: /data/arrow}}
  finetune:
    nlvr2: {{steps: 5, batch: 8, image_size: 32, dataset: {dataset}, eval_splits: {splits}}}
factors:
  model.text: [bert, roberta]
report:
  rows: [model.text]
  metrics:
    - {{name: nlvr2_col, task: {task}, split: {column}, metric: accuracy}}
"""


def _grid(tmp_path: Path, source: str = "arrow", dataset: str = "nlvr2", splits: str = "[dev, test]",
          task: str = "nlvr2", column: str = "test") -> Path:
    path = tmp_path / "splitty.yaml"
    path.write_text(GRID.format(source=source, dataset=dataset, splits=splits, task=task, column=column))
    return path


def _error(path: Path) -> str:
    with pytest.raises(GridError) as caught:
        compile_grid(path)
    return str(caught.value)


def test_meter_split_names_compile(tmp_path: Path) -> None:
    grid = compile_grid(_grid(tmp_path, splits="[dev, test-p, test]", column="dev"))
    assert grid.jobs[0].experiment.finetune["nlvr2"].eval_splits == ("dev", "test-p", "test")
    from harness.data.arrow import DEFAULT_SPLITS

    assert DEFAULT_SPLITS["nlvr2/dev"] == ("nlvr2_dev",) and DEFAULT_SPLITS["nlvr2/test-p"] == ("nlvr2_test1",)
    assert DEFAULT_SPLITS["snli-ve/dev"] == ("snli_dev",) and DEFAULT_SPLITS["snli-ve/test"] == ("snli_test",)


def test_eval_split_the_dataset_does_not_have(tmp_path: Path) -> None:
    text = _error(_grid(tmp_path, splits="[dev, testp]"))
    assert "splitty.yaml:6" in text and "evaluation split 'testp'" in text and "dataset 'nlvr2'" in text
    assert "did you mean 'test-p'" in text and "data.splits['nlvr2/testp']" in text
    text = _error(_grid(tmp_path, source="synthetic", dataset="synthetic", splits="[dev]", column="dev"))
    assert "evaluation split 'dev': synthetic data has no such split (it has: train, val, test)" in text


def test_data_splits_override_adds_a_split(tmp_path: Path) -> None:
    path = _grid(tmp_path, splits="[hard]", column="hard")
    path.write_text(path.read_text().replace("root: /data/arrow}", "root: /data/arrow, splits: {nlvr2/hard: "
                                                                    "[nlvr2_test2]}}"))
    assert compile_grid(path).jobs


def test_report_column_whose_split_no_job_evaluates(tmp_path: Path) -> None:
    text = _error(_grid(tmp_path, splits="[dev]", column="test"))
    # both sides: the report column's line and the eval_splits line
    assert "splitty.yaml:12: report.metrics.0.split" in text
    assert "reads nlvr2 split 'test', which no job evaluates" in text and "splitty.yaml:6 evaluates: dev" in text


def test_report_column_whose_task_no_job_runs(tmp_path: Path) -> None:
    text = _error(_grid(tmp_path, task="snli-ve", column="test"))
    assert "report column 'nlvr2_col' reads task 'snli-ve'" in text and "tasks run: nlvr2" in text


def test_paper_grids_columns_are_the_papers() -> None:
    main = compile_grid(ROOT / "grids" / "main.yaml", "paper")
    columns = {m.name: (m.task, m.split) for m in main.report.metrics}
    assert columns["nlvr2_dev"] == ("nlvr2", "dev") and columns["nlvr2_test_p"] == ("nlvr2", "test")
    assert columns["snli_ve_dev"] == ("snli-ve", "dev") and columns["snli_ve_test"] == ("snli-ve", "test")
    for direction in ("ir", "tr"):
        for k in (1, 5, 10):
            assert columns[f"f30k_{direction}_r{k}"] == ("retrieval", "test")
            assert columns[f"flickr_zs_{direction}_r{k}"] == ("pretrain", "test")
    assert "proxy" in next(m.label for m in main.report.metrics if m.task == "vqa")
    assert columns["vqa_test_dev_submission"] == ("vqa", "test-dev")  # the job writes the EvalAI file
    text = compile_grid(ROOT / "grids" / "text_encoders.yaml", "paper")
    evaluated = {s for j in text.jobs for s in j.experiment.finetune["vqa"].eval_splits}
    assert {m.split for m in text.report.metrics} <= evaluated
