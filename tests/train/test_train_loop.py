"""The training loop's mechanics on a tiny stand-in model: schedule, accumulation, resume, failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from train_toys import settings, toy_accuracy, toy_parts

from harness.train import checkpoint
from harness.train.errors import SimulatedKill, StopTraining, TrainingFailed
from harness.train.interrupt import Interrupt
from harness.train.loop import Trainer
from harness.train.optim import lr_factor

torch.set_num_threads(1)


def _train(tmp: Path, parts, s, **kw):  # type: ignore[no-untyped-def]
    return Trainer(parts, s, tmp, "toy-run", **kw).run()


def _curve(history: list[dict], metric: str, split: str = "train") -> list[float]:
    return [r["value"] for r in history if r["metric"] == metric and r["split"] == split]


def _untimed(history: list[dict]) -> list[dict]:
    return [r for r in history if r["metric"] not in ("step_time_s", "samples_per_s")]


def _params(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_lr_groups_follow_the_schedule(tmp_path: Path) -> None:
    s = settings(total_steps=10, warmup_ratio=0.2)
    result = _train(tmp_path, toy_parts(8), s)
    for group, peak in s.lrs.items():
        expected = [peak * lr_factor(k, 10, 0.2, "linear") for k in range(10)]
        assert _curve(result.history, f"lr/{group}") == pytest.approx(expected)
    # warm-up rises, then linear decay towards 0
    lrs = _curve(result.history, "lr/head")
    assert lrs[0] < lrs[1] < lrs[2] and lrs[2] > lrs[5] > lrs[9] > 0


def test_loss_decreases_and_final_eval_runs(tmp_path: Path) -> None:
    s = settings(total_steps=60, log_every=10, warmup_ratio=0.1)
    result = _train(tmp_path, toy_parts(8, evaluate=toy_accuracy), s)
    losses = _curve(result.history, "loss")
    assert len(losses) == 6 and losses[-1] < losses[0] * 0.7
    assert result.final_metrics["val/accuracy"] > 0.5
    assert result.status == "done" and result.stats["flops_per_step"] > 0
    progress = (tmp_path / "progress.json").read_text()
    assert '"step": 60' in progress


def test_accumulation_gives_the_same_update(tmp_path: Path) -> None:
    """8 samples × 1 micro-batch and 4 × 2 micro-batches: the same optimizer steps."""
    one = _train(tmp_path / "a", toy_parts(8), settings(total_steps=4, per_device_batch=8, accumulation=1))
    two = _train(tmp_path / "b", toy_parts(4), settings(total_steps=4, per_device_batch=4, accumulation=2))
    for p, q in zip(_params(one.model), _params(two.model), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert _curve(one.history, "loss") == pytest.approx(_curve(two.history, "loss"), rel=1e-5)


def test_resume_after_kill_ends_like_an_uninterrupted_run(tmp_path: Path) -> None:
    s = settings(total_steps=9, checkpoint_every=2, log_every=3, eval_every=4, deterministic=True)
    whole = _train(tmp_path / "whole", toy_parts(8, dropout=0.2, evaluate=toy_accuracy), s)
    assert whole.resumed_from is None and whole.stats["steps_run"] == 9
    with pytest.raises(SimulatedKill):
        _train(tmp_path / "killed", toy_parts(8, dropout=0.2, evaluate=toy_accuracy), s, interrupt=Interrupt(5))
    assert checkpoint.latest(tmp_path / "killed" / "checkpoints")[0] == 4
    parts = toy_parts(8, dropout=0.2, evaluate=toy_accuracy)
    resumed = _train(tmp_path / "killed", parts, s)
    # Resumed from step 4's checkpoint and ran steps 5..9 only: the model counts its own training passes.
    checkpoint_4 = str(tmp_path / "killed" / "checkpoints" / "step_4")
    assert resumed.resumed_from == {"step": 4, "checkpoint": checkpoint_4}
    assert parts.model.training_passes == 5 and resumed.stats["steps_run"] == 5
    progress = json.loads((tmp_path / "killed" / "progress.json").read_text())
    assert progress["resumed_from"] == {"step": 4, "checkpoint": checkpoint_4} and progress["steps_run"] == 5
    # ... and ended exactly where the uninterrupted run did.
    assert _untimed(resumed.history) == _untimed(whole.history)
    assert resumed.final_metrics == whole.final_metrics
    for p, q in zip(_params(whole.model), _params(resumed.model), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    kept = [step for step, _ in checkpoint.checkpoints(tmp_path / "killed" / "checkpoints")]
    assert kept == [8, 9]


def test_non_finite_loss_stops_with_reason(tmp_path: Path) -> None:
    with pytest.raises(TrainingFailed, match="non-finite loss at step 3"):
        _train(tmp_path, toy_parts(8, nan_at_call=3), settings(total_steps=5))


def test_on_eval_can_prune(tmp_path: Path) -> None:
    seen: list[tuple[int, dict]] = []

    def prune_at_4(step: int, metrics: dict[str, float]) -> None:
        seen.append((step, metrics))
        if step >= 4:
            raise StopTraining("below the median")

    result = _train(tmp_path, toy_parts(8, evaluate=toy_accuracy), settings(total_steps=10, eval_every=2),
                    on_eval=prune_at_4)
    assert result.status == "pruned" and result.reason == "below the median" and result.step == 4
    assert [step for step, _ in seen] == [2, 4] and "val/accuracy" in seen[0][1]


def test_fp16_on_cpu_is_refused_clearly(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(TrainingFailed, match="fp16 needs a GPU"):
        _train(tmp_path, toy_parts(8), settings(precision="fp16"))
