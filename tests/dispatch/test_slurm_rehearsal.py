"""The paper profiles rehearsed through the local Slurm with fake GPUs: ``harness run GRID --profile paper
--rehearse --executor slurm --cluster local`` as 2-task jobs (one per fake GPU, a gloo world of 2), then
``harness report`` with a value in every cell.

CI runs one cell of each of the 8 paper grids (16 jobs; the whole grids are 63 jobs, the README's acceptance
command, slurm/rehearse-paper-grids.sh). All grids are submitted at once. The 2-CPU node runs one 2-task job at a
time, so to stay near 10 minutes only ``main`` (5 jobs: pre-training and all four tasks) runs as 2-task jobs; the
other grids' cells run with one GPU each (``--set resources.gpus_per_node=1``), two jobs at a time.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from slurm_fakes import cancel_leftovers, needs_cluster, store_statuses, wait_until  # noqa: F401 - a fixture

from harness.cli import main

pytestmark = [pytest.mark.slurm, needs_cluster, pytest.mark.slow, pytest.mark.usefixtures("cancel_leftovers")]

REPO = Path(__file__).resolve().parents[2]
GRIDS = sorted((REPO / "grids").glob("*.yaml"))
MULTI_TASK = "main"


def _cell(grid: Path, rehearse) -> list[str]:  # type: ignore[no-untyped-def]
    """``--only`` arguments selecting one cell: the first whose row has a paper value in every column (a row
    the paper leaves blank, e.g. zero-shot retrieval after MLM-only pre-training, has nothing to show)."""
    from harness.spec.compile import compile_grid
    from harness.spec.report import join_label

    compiled = compile_grid(grid, "paper", transform=rehearse)
    report = compiled.report
    complete = {row for row, values in report.reference.items() if set(values) >= {m.name for m in report.metrics}}
    jobs = [j for j in compiled.jobs if j.stage == "finetune"]
    pick = next((j for j in jobs if join_label([j.factors[r] for r in report.rows]) in complete), jobs[0])
    return [arg for name, level in pick.factors.items() for arg in ("--only", f"{name}={level}")]


def _node_gpus() -> int:
    from harness.dispatch.clusterinfo import ClusterInfo

    part = ClusterInfo.query().default_partition()
    return part.gpus_per_node if part else 0


@pytest.mark.timeout(1800)  # about 10 minutes on two idle cores; the shared cluster may queue it behind others
def test_every_paper_grid_rehearses_on_slurm_and_reports_whole(
        rehearsal_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if _node_gpus() < 2:
        pytest.skip("the cluster's node has no 2 GPUs; start it with slurm/start-local-cluster.sh --fake-gpus 2")
    from harness.rehearsal.setup import rehearsal_transform
    from harness.report.build import build_report
    from harness.spec.compile import compile_grid
    from harness.store import Store

    monkeypatch.setenv("HARNESS_REHEARSAL", str(rehearsal_root))
    for key in ("HF_HUB_CACHE", "HF_HUB_OFFLINE"):  # --rehearse sets them for its jobs; restored afterwards
        monkeypatch.setenv(key, "")
    rehearse = rehearsal_transform()
    results = tmp_path / "results"
    selection = {grid: ["--profile", "paper", "--rehearse", *_cell(grid, rehearse),
                        *(["--set", "resources.gpus_per_node=1"] if grid.stem != MULTI_TASK else [])]
                 for grid in GRIDS}
    start = time.monotonic()
    for grid, args in selection.items():
        assert main(["run", str(grid), *args, "--executor", "slurm", "--cluster", "local",
                     "--results", str(results)]) == 0
    grids = {grid: compile_grid(grid, "paper", only=[v for k, v in zip(args, args[1:], strict=False) if k == "--only"],
                                transform=rehearse) for grid, args in selection.items()}
    expected = {job.run_id for g in grids.values() for job in g.jobs}
    assert len(expected) == 16
    wait_until(lambda: set(store_statuses(results)) >= expected
               and {store_statuses(results)[r] for r in expected} <= {"done", "failed"}, 1700,
               "every rehearsal job to finish", poll_s=3)
    wall = time.monotonic() - start
    assert {r: store_statuses(results)[r] for r in expected} == dict.fromkeys(expected, "done")
    runs = Store(results).runs(run_ids=expected)
    assert set(runs["executor"]) == {"slurm"}
    import json

    from harness.paths import run_dir

    tasks = {job.run_id: json.loads((run_dir(results, job.run_id) / "result.json").read_text())["stats"]
             ["num_processes"] for g, c in grids.items() for job in c.jobs}
    assert {tasks[j.run_id] for j in grids[REPO / "grids" / f"{MULTI_TASK}.yaml"].jobs} == {2}  # a gloo world of 2
    for grid, compiled in grids.items():
        assert main(["report", str(grid), *selection[grid], "--results", str(results)]) == 0
        table = build_report(compiled.jobs, compiled.report, Store(results), compiled.name, tmp_path / grid.stem,
                             with_figures=False).table
        states = {key: cell.state for key, cell in table.cells.items() if cell.state != "not in grid"}
        assert states and set(states.values()) == {"ok"}, f"{grid.stem}: {states}"
    capsys.readouterr()
    print(f"8 paper grids' first cells rehearsed on Slurm: {len(expected)} jobs in {wall:.0f} s")
