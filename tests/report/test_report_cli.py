"""`harness report` and `harness results` on a real grid file, with and without results."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main
from harness.spec.compile import compile_grid
from harness.store import Store

GRID = str(Path(__file__).resolve().parents[2] / "grids" / "text_encoders.yaml")


@pytest.fixture(scope="module")
def grid():  # type: ignore[no-untyped-def]
    return compile_grid(GRID)


def _fill_one(results: Path, grid) -> str:  # type: ignore[no-untyped-def]
    job = grid.jobs[0]
    split = job.experiment.finetune["vqa"].eval_splits[0]
    store = Store(results)
    store.write_run({"spec": job, "status": "done", "wall_s": 3.0})
    store.write_metrics(job.run_id, [{"stage": "finetune", "task": "vqa", "split": split, "metric": "vqa_score",
                                      "value": 0.42, "step": 300}])
    store.write_run({"spec": grid.jobs[1], "status": "failed", "error": "boom"})
    return job.run_id


def test_report_with_no_results_yet(tmp_path: Path, capsys, grid) -> None:
    assert main(["report", GRID, "--results", str(tmp_path), "--no-figures"]) == 0
    out = capsys.readouterr().out
    folder = tmp_path / "reports" / grid.name
    assert f"report: {folder}/" in out and "| Text encoder | VQA score |" in out
    assert out.count("missing (3)") == len({j.factors["model.text"] for j in grid.jobs})
    assert {p.name for p in folder.iterdir()} == {"table.md", "table.tex", "table.csv"}


def test_report_with_results_and_a_corrupt_file(tmp_path: Path, capsys, grid) -> None:
    _fill_one(tmp_path, grid)
    (tmp_path / "store" / "runs" / "00000000000000000009-1-bad.parquet").write_bytes(b"junk")
    assert main(["report", GRID, "--results", str(tmp_path), "--no-figures"]) == 0
    captured = capsys.readouterr()
    assert "| emb-only | **42.00** (n=1 of 3; 1 failed, 1 missing) |" in captured.out
    assert "warning: results store: unreadable file" in captured.err


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl", "parquet"])
def test_results_export(tmp_path: Path, grid, fmt: str) -> None:
    run_id = _fill_one(tmp_path, grid)
    out = tmp_path / f"out.{fmt}"
    assert main(["results", GRID, "--results", str(tmp_path), "--format", fmt, "--out", str(out)]) == 0
    if fmt == "csv":
        frame = pd.read_csv(out)
    elif fmt == "json":
        frame = pd.DataFrame(json.loads(out.read_text()))
    elif fmt == "jsonl":
        lines = out.read_text().splitlines()
        assert len(lines) == len(grid.jobs) and all(line.startswith("{") for line in lines)
        frame = pd.DataFrame([json.loads(line) for line in lines])
    else:
        frame = pd.read_parquet(out)
    assert len(frame) == len(grid.jobs)  # one metric row for the done job, one empty row per other job
    done = frame[frame["run_id"] == run_id].iloc[0]
    assert done["status"] == "done" and done["value"] == pytest.approx(0.42) and done["metric"] == "vqa_score"
    assert done["model_text"] == grid.jobs[0].factors["model.text"]
    assert sorted(frame["status"].unique()) == ["done", "failed", "missing"]
    assert len(frame.query("model_text == 'emb-only' and status == 'done'")) == 1  # no backticks needed


def test_results_final_keeps_only_each_runs_last_evaluation(tmp_path: Path, grid) -> None:
    run_id = _fill_one(tmp_path, grid)
    split = grid.jobs[0].experiment.finetune["vqa"].eval_splits[0]
    Store(tmp_path).write_metrics(run_id, [
        {"stage": "finetune", "task": "vqa", "split": split, "metric": "vqa_score", "value": 0.30, "step": 100},
        {"stage": "finetune", "task": "vqa", "split": "train", "metric": "loss", "value": 1.5, "step": 300}])
    out = tmp_path / "all.csv"
    assert main(["results", GRID, "--results", str(tmp_path), "--out", str(out)]) == 0
    assert len(pd.read_csv(out).query("run_id == @run_id")) == 3
    assert main(["results", GRID, "--results", str(tmp_path), "--final", "--out", str(out)]) == 0
    frame = pd.read_csv(out)
    mine = frame[frame["run_id"] == run_id]
    assert len(mine) == 1 and mine.iloc[0]["value"] == pytest.approx(0.42) and mine.iloc[0]["step"] == 300
    assert len(frame) == len(grid.jobs)  # jobs without metrics stay, one row each


def test_results_parquet_defaults_to_the_report_folder(tmp_path: Path, capsys, grid) -> None:
    assert main(["results", GRID, "--results", str(tmp_path), "--format", "parquet"]) == 0
    assert (tmp_path / "reports" / grid.name / "results.parquet").exists()
    assert "written to" in capsys.readouterr().err


def test_unknown_grid_file_is_a_usage_error(tmp_path: Path, capsys) -> None:
    assert main(["report", str(tmp_path / "nope.yaml"), "--results", str(tmp_path)]) == 2
    assert "nope.yaml" in capsys.readouterr().err
