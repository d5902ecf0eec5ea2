"""``results_frame``: a grid's results as one long table (one row per job × metric value).

Every job of the compiled grid appears, with status "missing" while the store has no row for
it, and with empty metric columns while it recorded no metric — nothing is silently dropped.
Factor columns are named by ``factor_column`` (``model.text`` → ``model_text``), so pandas'
``.query("model_text == 'bert'")`` works without backticks.
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


FIXED_COLUMNS = ["run_id", "grid", "stage", "task", "seed", "depends_on", *RUN_INFO, *METRIC_COLUMNS]


def factor_column(name: str) -> str:
    """A factor's column: dots and dashes become underscores (``model.text`` → ``model_text``); a name
    that would shadow a fixed column (``seed``, ``status``…) gets the prefix ``factor_``."""
    plain = name.replace(".", "_").replace("-", "_")
    return f"factor_{plain}" if plain in FIXED_COLUMNS else plain


def jobs_frame(jobs: Sequence[JobSpec], factors: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({
        "run_id": [j.run_id for j in jobs], "grid": [j.grid for j in jobs], "stage": [j.stage for j in jobs],
        "task": [j.task for j in jobs], "seed": [j.seed for j in jobs],
        "depends_on": [j.depends_on for j in jobs],
        **{factor_column(name): [j.factors.get(name) for j in jobs] for name in factors},
    })


def final_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Only each run's final evaluation: per (run, stage, task, split, metric) the row at the last step
    (a row without a step counts as final); training-split rows dropped; jobs without metrics kept."""
    evaluation = frame[frame["metric"].notna() & (frame["split"] != "train")]
    order = evaluation.assign(_step=evaluation["step"].astype("float64").fillna(float("inf")))
    keys = ["run_id", "stage", "task", "split", "metric"]
    last = order.sort_values("_step", kind="stable").drop_duplicates(keys, keep="last").drop(columns="_step")
    without = frame[~frame["run_id"].isin(last["run_id"])].drop_duplicates("run_id")
    without = without.assign(**{c: None for c in METRIC_COLUMNS})
    return pd.concat([last, without]).sort_index(kind="stable").reset_index(drop=True)


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
