"""``run_job`` end to end on tiny METER models and synthetic data: every objective and task,
the store records, failures, resume equivalence and the ``harness train`` CLI."""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from train_jobs import TINY_MODEL, finetune_job, pretrain_job

from harness.registry import OBJECTIVES, TASKS
from harness.spec.runs import write_spec
from harness.store import Store
from harness.train import TrainingFailed, run_job
from harness.train.assemble import build_parts
from harness.train.errors import SimulatedKill
from harness.train.loop import Trainer, TrainParts

torch.set_num_threads(1)


def _losses(results: Path, run_id: str, metric: str = "loss") -> list[float]:
    frame = Store(results).metrics(run_ids=[run_id])
    rows = frame[(frame["split"] == "train") & (frame["metric"] == metric)].sort_values("step")
    return rows["value"].tolist()


def _decreases(values: list[float]) -> bool:
    half = len(values) // 2
    return sum(values[half:]) / (len(values) - half) < sum(values[:half]) / half


@pytest.mark.slow
def test_pretrain_then_finetune_every_task(tmp_path: Path) -> None:
    pre = pretrain_job(steps=16)
    out = run_job(pre, tmp_path)
    assert out["status"] == "done" and "test/ir_r1" in out["metrics"]  # zero-shot retrieval (ITM score)
    assert _decreases(_losses(tmp_path, pre.run_id, "loss/mlm"))
    assert (tmp_path / "runs" / pre.run_id / "model.safetensors").is_file()
    runs = Store(tmp_path).runs()
    row = runs[runs["run_id"] == pre.run_id].iloc[0]
    assert row["status"] == "done" and row["throughput"] > 0 and row["git_commit"]
    for task, metric in (("vqa", "vqa_score"), ("nlvr2", "accuracy"), ("snli-ve", "accuracy"),
                         ("retrieval", "ir_r1")):
        fin = finetune_job(task, steps=4, depends_on=pre.run_id)
        result = run_job(fin, tmp_path)
        assert result["status"] == "done" and f"test/{metric}" in result["metrics"], task
        assert len(_losses(tmp_path, fin.run_id)) == 2, task  # log_every 2
    stored = Store(tmp_path).metrics()
    evals = stored[(stored["split"] == "test") & (stored["stage"] == "finetune")]
    assert set(evals["task"]) == {"vqa", "nlvr2", "snli-ve", "retrieval"}


STEPS = int(os.environ.get("FIT_STEPS", "40"))


def _repeat_first(parts: TrainParts) -> TrainParts:
    """The job's own model and data path, but one batch over and over: can the loss go down?"""
    first = next(iter(parts.batches(0, 1)))
    return replace(parts, batches=lambda rank, world: itertools.repeat(first))


# Every objective and task of the package, from the registries (a new one is tested without editing a list).
_OWN_TASKS = [e.name for e in TASKS if e.origin.startswith("harness.")]
_OWN_OBJECTIVES = [e.name for e in OBJECTIVES if e.origin.startswith("harness.")]


@pytest.mark.slow
@pytest.mark.parametrize("name", [*_OWN_OBJECTIVES, *_OWN_TASKS])
def test_every_objective_and_task_fits_a_batch(tmp_path: Path, name: str) -> None:
    """Every head trains through the real trainer path (random tiny encoders need far more
    data and steps to learn retrieval from scratch, so this fits one repeated batch)."""
    common = {"optim": {"warmup_ratio": 0.0, "lr": 2e-3, "decay": "constant"}}
    if name in _OWN_TASKS:
        job = finetune_job(name, steps=STEPS, finetune={"lr": 5e-4}, **common)
        loss_name = f"loss/{name}"
    else:
        decoder = OBJECTIVES.get(name).meta.needs_decoder
        extra = {"model": {**TINY_MODEL, "architecture": "encoder-decoder"}} if decoder else {}
        job = pretrain_job(steps=STEPS, objectives=(name,), pretrain={"zero_shot": None}, **common, **extra)
        loss_name = f"loss/{name}"
    parts, settings = build_parts(job, tmp_path, 1)
    result = Trainer(_repeat_first(parts), settings, tmp_path, job.run_id).run()
    losses = [r["value"] for r in result.history if r["metric"] == loss_name]
    start, end = sum(losses[:3]) / 3, sum(losses[-5:]) / 5
    assert end < 0.85 * start, (name, " ".join(f"{v:.3f}" for v in losses))


def test_missing_pretraining_weights_fail_clearly(tmp_path: Path) -> None:
    job = finetune_job("snli-ve", steps=2, depends_on="0" * 64)
    with pytest.raises(TrainingFailed, match="has no final weights"):
        run_job(job, tmp_path)
    assert Store(tmp_path).status()[job.run_id] == "failed"
    assert "has no final weights" in (tmp_path / "runs" / job.run_id / "error.txt").read_text()


def test_killed_job_resumes_to_the_same_result(tmp_path: Path) -> None:
    def job():  # noqa: ANN202
        return finetune_job("snli-ve", steps=6, train={"checkpoint_every": 2, "deterministic": True,
                                                       "log_every": 1}, model={"dropout": 0.1})

    whole = run_job(job(), tmp_path / "whole")
    assert whole["resumed_from"] is None and whole["stats"]["steps_run"] == 6
    with pytest.raises(SimulatedKill):
        run_job(job(), tmp_path / "killed", stop_after=3)
    assert Store(tmp_path / "killed").status()[job().run_id] == "running"
    resumed = run_job(job(), tmp_path / "killed")
    # Resumed from step 2's checkpoint, ran steps 3..6 only, and says so in result.json, progress.json and the store.
    checkpoint_2 = str(tmp_path / "killed" / "runs" / job().run_id / "checkpoints" / "step_2")
    assert resumed["resumed_from"] == {"step": 2, "checkpoint": checkpoint_2} and resumed["stats"]["steps_run"] == 4
    progress = json.loads((tmp_path / "killed" / "runs" / job().run_id / "progress.json").read_text())
    assert progress["resumed_from"]["step"] == 2 and progress["steps_run"] == 4
    row = Store(tmp_path / "killed").runs().set_index("run_id").loc[job().run_id]
    assert row["resumed_from_step"] == 2 and row["resumed_from"] == checkpoint_2
    assert resumed["metrics"] == whole["metrics"]
    untimed = ("loss", "loss/snli-ve", "lr/head")
    for metric in untimed:
        assert _losses(tmp_path / "killed", job().run_id, metric) == _losses(tmp_path / "whole", job().run_id, metric)


def test_on_eval_prunes_a_real_job(tmp_path: Path) -> None:
    from harness.train import StopTraining

    seen: list[tuple[int, dict[str, float]]] = []

    def prune(step: int, metrics: dict[str, float]) -> None:
        seen.append((step, metrics))
        raise StopTraining("trial below the median")

    job = finetune_job("vqa", steps=6, finetune={"eval_every": 2})
    out = run_job(job, tmp_path, on_eval=prune)
    assert out["status"] == "pruned" and out["step"] == 2 and out["reason"] == "trial below the median"
    assert seen[0][0] == 2 and "test/vqa_score" in seen[0][1]
    assert Store(tmp_path).status()[job.run_id] == "pruned"
    assert not (tmp_path / "runs" / job.run_id / "model.safetensors").exists()


def test_harness_train_cli_runs_a_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    job = finetune_job("nlvr2", steps=2)
    spec = write_spec(job, tmp_path)
    assert main(["train", str(spec.parent)]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["status"] == "done" and "test/accuracy" in printed["metrics"]
    assert json.loads((spec.parent / "progress.json").read_text())["state"] == "done"
    assert main(["train", str(tmp_path / "nowhere")]) == 2
