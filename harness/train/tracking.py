"""Experiment trackers (``train.trackers``): Weights & Biases, TensorBoard, MLflow.

One project (W&B) / experiment (MLflow) / log folder (TensorBoard) per grid; each run is named
by its cell's readable label and grouped by cell; its config holds the factors, seed, run id,
stage, task and the full spec. Training means (every ``log_every`` steps) and every evaluation
are logged. Trackers are placement, not identity: they never enter a run id.

Where they write (``<results>/trackers/``, so a whole grid is in one place):
- wandb: ``<results>/trackers/wandb/`` (``WANDB_MODE=offline`` on air-gapped nodes; later
  ``wandb sync <results>/trackers/wandb/wandb/offline-run-*``);
- tensorboard: ``<results>/trackers/tensorboard/<grid>/<cell>-seed<k>-<run id[:10]>/``;
- mlflow: ``$MLFLOW_TRACKING_URI`` if set, else ``<results>/trackers/mlruns`` (a file store).
The packages are optional (``pip install 'meter-harness[wandb]'`` etc.); a grid listing a tracker
whose package is missing is refused at validation (exit 2), before anything runs.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.spec.schema import missing_tracker_package


@dataclass(frozen=True)
class TrackedRun:
    """Who a run is, for the trackers (built from the JobSpec; display only)."""

    grid: str
    label: str  # the cell's readable label, e.g. "roberta" or "co-attention / encoder-only"
    run_id: str
    seed: int
    stage: str
    task: str | None
    factors: dict[str, str]
    spec: dict[str, Any] = field(repr=False)
    root: str = "results/trackers"

    def config(self) -> dict[str, Any]:
        """Nested config: factors, seed, run id, grid, stage, task and the full spec."""
        return {"grid": self.grid, "cell": self.label, "run_id": self.run_id, "seed": self.seed,
                "stage": self.stage, "task": self.task, "factors": dict(self.factors), "spec": self.spec}


def tracked_run(job: Any, root: str | os.PathLike[str]) -> TrackedRun:
    """The TrackedRun of a JobSpec; ``root`` is ``<results>/trackers``."""
    label = " / ".join(job.factors.values()) or "base"
    return TrackedRun(grid=job.grid, label=label, run_id=job.run_id, seed=job.seed, stage=job.stage,
                      task=job.task, factors=dict(job.factors), spec=job.experiment.model_dump(mode="json"),
                      root=str(root))


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, str | int | float | bool]:
    """``{"spec": {"model": {"text": "bert"}}}`` → ``{"spec.model.text": "bert"}``; lists and None as text
    (TensorBoard's hparams and MLflow's params take scalars only)."""
    flat: dict[str, str | int | float | bool] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, (str, int, float, bool)):
            flat[name] = value
        else:
            flat[name] = json.dumps(value)
    return flat


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text).strip("_") or "run"


class Trackers:
    """The run's open trackers (main process only); ``log`` and ``finish`` are no-ops without any."""

    def __init__(self, names: tuple[str, ...], run: TrackedRun | None, main: bool) -> None:
        self.backends: list[Any] = []
        if not names or run is None or not main:
            return
        for name in names:
            problem = missing_tracker_package(name)
            if problem is not None:  # validation refuses this before dispatch; a changed node still says so
                raise RuntimeError(problem)
            self.backends.append(_OPENERS[name](run))

    def log(self, values: dict[str, float], step: int) -> None:
        for backend in self.backends:
            backend.log(values, step)

    def finish(self) -> None:
        for backend in self.backends:
            backend.finish()
        self.backends = []


class _Wandb:
    def __init__(self, run: TrackedRun) -> None:
        import wandb

        folder = Path(run.root) / "wandb"
        folder.mkdir(parents=True, exist_ok=True)
        # The run id as W&B id: a requeued job continues the same W&B run instead of starting another.
        self.run = wandb.init(project=run.grid, name=run.label, group=run.label,
                              job_type=run.stage if run.task is None else f"{run.stage}-{run.task}",
                              id=run.run_id[:32], resume="allow", dir=str(folder), config=run.config(),
                              tags=[run.stage, *([run.task] if run.task else [])], reinit="create_new")

    def log(self, values: dict[str, float], step: int) -> None:
        self.run.log(values, step=step)

    def finish(self) -> None:
        self.run.finish()


class _TensorBoard:
    def __init__(self, run: TrackedRun) -> None:
        from torch.utils.tensorboard import SummaryWriter

        name = f"{_safe(run.label)}-seed{run.seed}-{run.run_id[:10]}"
        folder = Path(run.root) / "tensorboard" / _safe(run.grid) / name
        self.writer = SummaryWriter(log_dir=str(folder))
        self.writer.add_text("config", "```\n" + json.dumps(run.config(), indent=1) + "\n```", 0)
        self.hparams = flatten({k: v for k, v in run.config().items() if k != "spec"})

    def log(self, values: dict[str, float], step: int) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)

    def finish(self) -> None:
        self.writer.add_hparams(self.hparams, {}, run_name=".")
        self.writer.close()


class _MLflow:
    def __init__(self, run: TrackedRun) -> None:
        import mlflow

        if not os.environ.get("MLFLOW_TRACKING_URI"):
            # A plain-file store needs no server or database on an air-gapped node; MLflow 3 asks to opt in.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            mlflow.set_tracking_uri((Path(run.root) / "mlruns").resolve().as_uri())
        try:
            mlflow.set_experiment(run.grid)
        except mlflow.exceptions.MlflowException:  # another job of the grid created it at the same moment
            mlflow.set_experiment(run.grid)
        self.mlflow = mlflow
        self.active = mlflow.start_run(run_name=run.label, tags={"cell": run.label, "run_id": run.run_id,
                                                                 "seed": str(run.seed), "stage": run.stage})
        params = flatten(run.config())
        items = list(params.items())
        for i in range(0, len(items), 100):  # MLflow takes at most 100 params per call
            mlflow.log_params(dict(items[i:i + 100]))

    def log(self, values: dict[str, float], step: int) -> None:
        self.mlflow.log_metrics({_mlflow_key(k): v for k, v in values.items()}, step=step)

    def finish(self) -> None:
        self.mlflow.end_run()


def _mlflow_key(key: str) -> str:
    # "train/loss" and "train/loss/vqa" cannot both exist in MLflow's file store (a file and a folder).
    return re.sub(r"[^A-Za-z0-9_\-.]", "_", key.replace("/", "."))


_OPENERS = {"wandb": _Wandb, "tensorboard": _TensorBoard, "mlflow": _MLflow}
