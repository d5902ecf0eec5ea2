"""Progress in log files: one complete line per interval, never a carriage return (tqdm only on a TTY)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from train_toys import settings, toy_parts

from harness.progress import LineProgress, progress_bar
from harness.train.loop import Trainer

torch.set_num_threads(1)


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_one_line_per_interval_with_rate_and_eta() -> None:
    clock, out = _Clock(), io.StringIO()
    bar = LineProgress(total=100, every_s=30.0, stream=out, clock=clock)
    for _ in range(100):
        clock.now += 1.0  # one step per second: a line every 30 steps, and one at the end
        bar.update(1)
        bar.set_postfix(loss="0.5000")
    bar.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and len(lines) == 4
    assert lines[0] == "step 30/100 (30%) loss 0.5000 1.00 step/s elapsed 0m30s eta 1m10s"
    assert lines[-1].startswith("step 100/100 (100%)") and "eta" not in lines[-1]


def test_a_resumed_run_counts_its_rate_from_the_resume_step() -> None:
    clock, out = _Clock(), io.StringIO()
    bar = LineProgress(total=100, initial=50, every_s=10.0, stream=out, clock=clock)
    clock.now = 10.0
    bar.update(20)
    assert out.getvalue().startswith("step 70/100 (70%) 2.00 step/s")


def test_trainer_off_a_tty_writes_lines_not_a_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert isinstance(progress_bar(10, 0, disable=False), LineProgress)  # pytest's stderr is no TTY
    Trainer(toy_parts(8), settings(total_steps=12, log_every=4), tmp_path, "toy-run").run()
    err = capsys.readouterr().err
    assert "\r" not in err and "step 12/12 (100%)" in err


def test_phases_each_get_a_closing_line_and_with_closes_once() -> None:
    """The tiny-zoo build's use: one line when each entry ends (set_description), one at the end."""
    clock, out = _Clock(), io.StringIO()
    with LineProgress(total=4, every_s=30.0, stream=out, clock=clock, desc="tiny zoo") as bar:
        bar.set_description("tiny zoo: text bert")
        clock.now = 2.0
        bar.update(2)
        bar.set_description("tiny zoo: vision vit")
        clock.now = 4.0
        bar.update(2)
        bar.close()
    lines = out.getvalue().splitlines()
    assert lines == ["tiny zoo: text bert: step 2/4 (50%) 1.00 step/s elapsed 0m02s eta 0m02s",
                     "tiny zoo: vision vit: step 4/4 (100%) 1.00 step/s elapsed 0m04s"]
