"""A finished grid stays finished when its placement moves, and `harness rekey` carries runs recorded
under an older run-id scheme to today's ids (folders, specs, store rows, parents before children)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_cli_run import cli_env  # noqa: F401
from test_local_executor import compile_jobs, fake_env, write_grid  # noqa: F401

from harness.cli import main
from harness.paths import run_dir
from harness.store import Store


def _run(grid: Path, results: Path, *extra: str) -> None:
    assert main(["run", str(grid), "--results", str(results), "--workers", "2", *extra]) == 0


@pytest.mark.slow
def test_finished_grid_stays_done_after_a_placement_change(tmp_path: Path, cli_env, capsys) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    grid, results = write_grid(tmp_path), tmp_path / "results"
    _run(grid, results)
    capsys.readouterr()
    moved = ["--set", "data.num_workers=4", "--set", "model.weights_dir=/w", "--set", "pretrain.per_device_batch=2",
             "--set", "finetune.vqa.per_device_batch=2", "--set", "resources.mem_gb=2"]
    assert main(["plan", str(grid), "--results", str(results), *moved]) == 0
    assert "status: done 4" in capsys.readouterr().out
    _run(grid, results, *moved)
    assert "nothing to run" in capsys.readouterr().out


def _age(results: Path, jobs) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Put every run under a made-up old id, as an older scheme would have: new id → old id."""
    old = {j.run_id: f"{i:x}" * 64 for i, j in enumerate(jobs, start=1)}
    shutil.rmtree(results / "store")  # an older scheme's store knows only the old ids
    store = Store(results)
    for job in jobs:
        aged = job.model_copy(update={"run_id": old[job.run_id], "depends_on": old.get(job.depends_on)})
        run_dir(results, job.run_id).rename(run_dir(results, aged.run_id))
        spec = run_dir(results, aged.run_id) / "spec.json"
        spec.write_text(json.dumps({"identity": {"schema": 1}, "job": aged.model_dump(mode="json")}))
        store.write_run({"spec": aged, "status": "done"})
        store.write_metrics(aged.run_id, [{"stage": job.stage, "task": job.task or "pretrain", "split": "test",
                                           "metric": "score", "value": 0.25, "step": 3}])
    return old


@pytest.mark.slow
def test_rekey_moves_old_runs_to_todays_ids(tmp_path: Path, cli_env, capsys) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    grid, results = write_grid(tmp_path), tmp_path / "results"
    _run(grid, results)
    jobs = compile_jobs(grid)
    old = _age(results, jobs)
    capsys.readouterr()
    assert main(["plan", str(grid), "--results", str(results)]) == 0
    assert "done" not in capsys.readouterr().out  # the aged runs are orphaned
    assert main(["rekey", "--results", str(results), "--dry-run"]) == 0
    assert "4 of 4 runs to re-key" in capsys.readouterr().out
    assert run_dir(results, old[jobs[0].run_id]).is_dir()  # dry run moved nothing
    assert main(["rekey", "--results", str(results)]) == 0
    assert "4 of 4 runs re-keyed" in capsys.readouterr().out
    for job in jobs:
        spec = json.loads((run_dir(results, job.run_id) / "spec.json").read_text())
        assert spec["job"]["run_id"] == job.run_id and spec["job"]["depends_on"] == job.depends_on
    metrics = Store(results).metrics(run_ids=[j.run_id for j in jobs])
    assert set(metrics["value"]) == {0.25}
    _run(grid, results)
    assert "nothing to run" in capsys.readouterr().out
    assert main(["rekey", "--results", str(results)]) == 0
    assert "0 of 4 runs re-keyed" in capsys.readouterr().out
