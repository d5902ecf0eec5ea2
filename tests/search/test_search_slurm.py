"""A search whose workers are a SLURM array (submitit), against a real cluster.

Skipped (reported) when no cluster answers; CI starts one with slurm/start-local-cluster.sh.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from search_fakes import GRID, calls, write_grid

from harness.dispatch.clusterinfo import cluster_answers as _cluster_answers
from harness.search.config import parse_search
from harness.search.launch import run_slurm
from harness.search.study import count_states, finished, open_study
from harness.search.worker import WorkerConfig

pytestmark = [pytest.mark.slurm, pytest.mark.slow,
              pytest.mark.skipif(not _cluster_answers(), reason="no SLURM cluster answers (sinfo failed); "
                                 "start one with slurm/start-local-cluster.sh")]


def test_a_slurm_array_of_workers_finishes_the_study(tmp_path: Path) -> None:
    import yaml

    results = tmp_path / "results"
    spec = parse_search(yaml.safe_load(GRID)["search"])
    config = WorkerConfig(grid_path=str(write_grid(tmp_path)), profile=None, results=str(results),
                          storage=str(results / "search" / "search_toy" / "journal.log"), study_name="search_toy",
                          search=spec.model_dump(mode="json"), trials=4, job_runner="search_fakes:fake_run_job")
    folder = results / "search" / "search_toy" / "slurm"
    said: list[str] = []
    outcomes = run_slurm(config, 2, cluster="local", folder=folder, echo=said.append)
    logs = "\n".join(f"{p.name}:\n{p.read_text()[-2000:]}" for p in sorted(folder.glob("*_log.err")))
    assert len(outcomes) == 2, "both array tasks should end without an error:\n" + "\n".join(said) + "\n" + logs
    study = open_study(spec, config.storage, config.study_name)
    assert finished(count_states(study)) >= 4
    assert sum(sum(o.values()) for o in outcomes) == len(study.trials)
    assert len({c["run_id"] for c in calls(results)}) == len(study.trials)
