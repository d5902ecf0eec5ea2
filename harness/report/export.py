"""``results_frame``: a grid's results as one long table (one row per job × metric value).

Every job of the compiled grid appears, with status "missing" while the store has no row for
it, and with empty metric columns while it recorded no metric — nothing is silently dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from harness.spec.schema import JobSpec
from harness.store import Store

# Columns of the runs table carried into the export (identity comes from the jobs themselves).
RUN_INFO = ["status", "start_time", "end_time", "wall_s", "device_hours", "throughput", "peak_mem_gb", "host",
            "executor", "slurm_job_id", "requeues", "git_commit", "git_dirty", "error"]
METRIC_COLUMNS = ["split", "metric", "value", "step"]


def jobs_frame(jobs: Sequence[JobSpec], factors: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({
        "run_id": [j.run_id for j in jobs], "grid": [j.grid for j in jobs], "stage": [j.stage for j in jobs],
        "task": [j.task for j in jobs], "seed": [j.seed for j in jobs],
        "depends_on": [j.depends_on for j in jobs],
        **{f"f_{name}": [j.factors.get(name) for j in jobs] for name in factors},
    })


def results_frame(jobs: Sequence[JobSpec], store: Store) -> pd.DataFrame:
    factors = list(dict.fromkeys(name for job in jobs for name in job.factors))
    frame = jobs_frame(jobs, factors)
    run_ids = set(frame["run_id"])
    runs = store.runs(run_ids=run_ids, with_spec=False)
    info = runs[["run_id", *RUN_INFO]] if not runs.empty else pd.DataFrame(columns=["run_id", *RUN_INFO])
    frame = frame.merge(info, on="run_id", how="left")
    frame["status"] = frame["status"].astype(object).where(frame["status"].notna(), "missing")
    metrics = store.metrics(run_ids=run_ids)
    values = metrics[["run_id", *METRIC_COLUMNS]] if not metrics.empty else \
        pd.DataFrame(columns=["run_id", *METRIC_COLUMNS])
    return frame.merge(values, on="run_id", how="left").reset_index(drop=True)
