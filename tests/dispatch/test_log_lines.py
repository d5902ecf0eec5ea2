"""Progress written to files is one line per interval, never a carriage return (issue 15, item 7).

`harness run` with its output redirected to a file, as a batch system or `> run.log` does: the
dispatcher builds the tiny zoo (2 steps per entry) and runs one real trainer job in a worker.
Neither the redirected output nor the run folder's log.txt may hold a carriage return (a tqdm
bar in a file turns a multi-day job's log into one line), and both must still show progress.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.spec.compile import compile_grid

GRID = """\
name: loglines
base:
  model: {vision: clip-vit-224/32, text: bert, scale: tiny, hidden: 16, heads: 2, fusion_layers: 1, max_text_len: 8}
  data: {synthetic: {train_images: 16, eval_images: 8, image_size: 32}}
  finetune:
    vqa: {steps: 3, batch: 4, image_size: 32, dataset: synthetic, eval_splits: [test]}
  resources: {threads: 1}
seeds: 1
"""


@pytest.mark.slow
def test_redirected_run_and_zoo_build_write_lines_without_carriage_returns(tmp_path: Path) -> None:
    grid, results, output = tmp_path / "loglines.yaml", tmp_path / "results", tmp_path / "run.log"
    grid.write_text(GRID)
    env = {**os.environ, "HARNESS_CACHE": str(tmp_path / "cache"), "HARNESS_ZOO_STEPS": "2"}
    env.pop("HARNESS_JOB_FN", None)
    with open(output, "wb") as sink:
        done = subprocess.run([sys.executable, "-m", "harness", "run", str(grid), "--results", str(results)],
                              stdout=sink, stderr=subprocess.STDOUT, env=env, timeout=600)
    dispatcher = output.read_bytes().decode()
    assert done.returncode == 0, dispatcher
    (job,) = compile_grid(grid).jobs
    log = (results / "runs" / job.run_id / "log.txt").read_bytes().decode()
    assert "\r" not in dispatcher and "\r" not in log
    assert any(line.startswith("tiny zoo") and "(100%)" in line for line in dispatcher.splitlines())  # zoo build
    assert "step 3/3 (100%)" in log  # the trainer's progress line
