"""Issue 13, defects 7, 8 and 16, and the guarantee: the store is derived data, rebuilt from the
run folders (spec.json, run_row.json, metrics.json), and `run`/`status`/`report` agree.

Finished runs are recorded through the trainer's own recording path (``ResultSink``), with
stand-in scores, so the test needs no training."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.cli import main

GRID = "grids/text_encoders.yaml"


def _finish_all(results: Path) -> list:  # type: ignore[type-arg]
    from harness.dispatch.order import write_specs
    from harness.spec.compile import compile_grid
    from harness.train.record import ResultSink

    jobs = compile_grid(GRID).jobs
    write_specs(jobs, results)
    for i, job in enumerate(jobs):
        sink = ResultSink(results, results / "runs" / job.run_id)
        sink.run({"spec": job, "status": "running", "start_time": "2026-01-01T00:00:00+00:00"})
        rows = [{"stage": job.stage, "task": job.task or "pretrain", "split": split, "metric": "vqa_score",
                 "value": 0.3 + 0.01 * i + (0.001 if split == "val" else 0.0), "step": 100}
                for split in ("val", "test")]
        sink.metrics(job.run_id, rows)
        sink.run({"spec": job, "status": "done", "start_time": "2026-01-01T00:00:00+00:00", "wall_s": 10.0 + i,
                  "end_time": 1767225600.0 + i})
    return list(jobs)


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _newest(folder: Path) -> Path:
    return sorted(p for p in folder.glob("*.parquet"))[-1]


def test_rebuild_from_run_folders_gives_a_byte_identical_report(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results"
    _finish_all(results)
    code, before, _ = _cli(capsys, "report", GRID, "--results", str(results), "--no-figures")
    assert code == 0 and before.count("(n=3)") == 6, before
    table_before = (results / "reports" / "text_encoders" / "table.md").read_bytes()
    shutil.rmtree(results / "store")
    code, out, _ = _cli(capsys, "store", "rebuild", "--results", str(results))
    assert code == 0 and "from 18 run folder(s)" in out
    code, after, _ = _cli(capsys, "report", GRID, "--results", str(results), "--no-figures")
    assert after == before
    assert (results / "reports" / "text_encoders" / "table.md").read_bytes() == table_before


def test_a_truncated_done_row_heals_and_run_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect 7: the newest runs file of a finished run truncated → quarantined → healed from its folder."""
    monkeypatch.setenv("HARNESS_JOB_FN", "builtins:print")  # should healing fail: train nothing
    results = tmp_path / "results"
    jobs = _finish_all(results)
    newest = _newest(results / "store" / "runs")
    newest.write_bytes(newest.read_bytes()[:20])
    code, out, err = _cli(capsys, "status", GRID, "--results", str(results))
    assert "18 jobs: 18 done" in out, out + err
    assert "re-recorded 1 run(s)" in err
    code, out, err = _cli(capsys, "run", GRID, "--results", str(results))
    assert code == 0 and "18 already done" in out, out + err
    assert len(jobs) == 18


def test_with_the_store_gone_status_and_report_agree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Defect 8: status read progress files, report read the store; both now read the run folders' truth."""
    results = tmp_path / "results"
    _finish_all(results)
    code, before, _ = _cli(capsys, "report", GRID, "--results", str(results), "--no-figures")
    shutil.rmtree(results / "store")
    code, out, _ = _cli(capsys, "status", GRID, "--results", str(results))
    assert "18 jobs: 18 done" in out
    shutil.rmtree(results / "store")
    code, after, _ = _cli(capsys, "report", GRID, "--results", str(results), "--no-figures")
    assert after == before


def test_a_quarantined_metrics_file_is_recorded_again(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Defect 16: a quarantined metrics file left the report at "n=2 of 3"; now its run folder fills it in."""
    results = tmp_path / "results"
    _finish_all(results)
    code, before, _ = _cli(capsys, "report", GRID, "--results", str(results), "--no-figures")
    newest = _newest(results / "store" / "metrics")
    newest.write_bytes(b"not parquet")
    code, after, err = _cli(capsys, "report", GRID, "--results", str(results), "--no-figures")
    assert after == before, err
    assert before.count("(n=3)") == 6 and "of 3" not in after
