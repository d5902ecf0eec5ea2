"""train.trackers: W&B (offline files inspected), TensorBoard and MLflow get one project per grid,
runs named by cell, factors/seed/run id/spec as config, training and evaluation metrics; a missing
tracker package is a validation error; trackers never change a run id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from train_toys import settings, toy_accuracy, toy_parts

from harness.cli import main
from harness.spec import schema
from harness.spec.compile import compile_grid
from harness.train.loop import Trainer
from harness.train.tracking import TrackedRun, flatten

torch.set_num_threads(1)

GRID = """\
name: tracked
base:
  model: {{vision: clip-vit-224/32, text: bert, scale: tiny, weights: random, hidden: 32, heads: 2, fusion_layers: 1,
          decoder_layers: 1, max_text_len: 16, dropout: 0.0}}
  data: {{source: synthetic, synthetic: {{image_size: 32, train_images: 64, eval_images: 16, captions_per_image: 2}}}}
  optim: {{lr: 1.0e-3}}
  train: {{log_every: 2, trackers: {trackers}}}
  finetune:
    vqa: {{steps: 4, batch: 8, per_device_batch: 8, image_size: 32, lr: 1.0e-3, dataset: synthetic,
          eval_splits: [test]}}
factors:
  model.text: [emb-only, bert]
"""


def _grid(tmp_path: Path, trackers: str) -> Path:
    path = tmp_path / f"grid{abs(hash(trackers))}.yaml"
    path.write_text(GRID.format(trackers=trackers))
    return path


def test_a_missing_tracker_package_is_a_validation_error(tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(schema.TRACKER_PACKAGES, "mlflow", "no_such_tracker_module")
    assert main(["validate", str(_grid(tmp_path, "[mlflow]"))]) == 2
    err = capsys.readouterr().err
    assert "train.trackers" in err and "pip install 'meter-harness[mlflow]'" in err


def test_trackers_never_change_a_run_id(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for name in schema.TRACKER_PACKAGES:
        monkeypatch.setitem(schema.TRACKER_PACKAGES, name, "json")  # present everywhere
    plain = [j.run_id for j in compile_grid(_grid(tmp_path, "[]")).jobs]
    tracked = compile_grid(_grid(tmp_path, "[wandb, tensorboard, mlflow]")).jobs
    assert [j.run_id for j in tracked] == plain
    assert tracked[0].experiment.train.trackers == ("wandb", "tensorboard", "mlflow")


def _toy_run(root: Path) -> TrackedRun:
    return TrackedRun(grid="toygrid", label="bert / clip-vit-224/32", run_id="ab" * 32, seed=3, stage="finetune",
                      task="vqa", factors={"model.text": "bert", "model.vision": "clip-vit-224/32"},
                      spec={"model": {"text": "bert", "layers": [1, 2]}, "data": {"root": None}}, root=str(root))


def test_flatten_gives_scalars_only() -> None:
    flat = flatten(_toy_run(Path(".")).config())
    assert flat["factors.model.text"] == "bert" and flat["spec.model.layers"] == "[1, 2]"
    assert flat["spec.data.root"] == "null" and flat["seed"] == 3


def test_tensorboard_and_mlflow_get_config_training_and_evaluation(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("tensorboard", reason="tensorboard not installed (pip install 'meter-harness[tensorboard]')")
    mlflow = pytest.importorskip("mlflow", reason="mlflow not installed (pip install 'meter-harness[mlflow]')")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run = _toy_run(tmp_path / "trackers")
    s = settings(total_steps=8, log_every=4, eval_every=4, trackers=("tensorboard", "mlflow"), tracked=run)
    Trainer(toy_parts(8, evaluate=toy_accuracy), s, tmp_path / "run", "toy").run()

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (folder,) = (tmp_path / "trackers" / "tensorboard" / "toygrid").iterdir()
    assert folder.name == "bert_clip-vit-224_32-seed3-ababababab"
    events = EventAccumulator(str(folder)).Reload()
    assert {"train/loss", "val/accuracy"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("val/accuracy")] == [4, 8]

    client = mlflow.tracking.MlflowClient((tmp_path / "trackers" / "mlruns").resolve().as_uri())
    experiment = client.get_experiment_by_name("toygrid")
    (found,) = client.search_runs([experiment.experiment_id])
    assert found.info.run_name == "bert / clip-vit-224/32" and found.data.tags["run_id"] == "ab" * 32
    assert found.data.params["factors.model.text"] == "bert" and found.data.params["seed"] == "3"
    assert {"train.loss", "val.accuracy"} <= set(found.data.metrics)


@pytest.mark.slow
def test_wandb_offline_run_of_a_tiny_grid(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Acceptance: one W&B project for the grid; each run named and grouped by its cell, with the
    factors, seed, run id and spec in its config and the evaluation metrics in its history."""
    pytest.importorskip("wandb", reason="wandb not installed (pip install 'meter-harness[wandb]')")
    from wandb_offline import records

    from harness.train.job import run_job

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    grid = compile_grid(_grid(tmp_path, "[wandb]"))
    results = tmp_path / "results"
    for job in grid.jobs:
        assert run_job(job, results)["status"] == "done"
    files = sorted((results / "trackers" / "wandb" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == len(grid.jobs) == 2
    seen = {}
    for path in files:
        found = list(records(path))
        (run,) = [r.run for r in found if r.WhichOneof("record_type") == "run"]
        config = {item.key: json.loads(item.value_json) for item in run.config.update}
        history = [{i.key or "/".join(i.nested_key): float(i.value_json) for i in r.history.item
                    if not (i.key or "").startswith("_")} for r in found if r.WhichOneof("record_type") == "history"]
        seen[run.display_name] = (run.project, run.run_group, config, history)
    jobs = {job.factors["model.text"]: job for job in grid.jobs}
    assert set(seen) == set(jobs)  # run name = the cell's label
    for label, (project, group, config, history) in seen.items():
        job = jobs[label]
        assert project == "tracked" and group == label
        assert config["factors"] == job.factors and config["seed"] == job.seed and config["run_id"] == job.run_id
        assert config["spec"]["model"]["text"] == label and config["task"] == "vqa"
        final = [h for h in history if "test/vqa_score" in h]
        assert final and 0.0 <= final[-1]["test/vqa_score"] <= 1.0 and any("train/loss" in h for h in history)
