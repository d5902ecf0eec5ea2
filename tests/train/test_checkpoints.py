"""Issue 13, defects 10 and 12: checkpoints are verified (manifest of sizes and hashes, written
last), resume falls back to the newest valid one and names those skipped, and nothing in a
results directory is unpickled (tensors in safetensors, the rest in JSON)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
from train_jobs import finetune_job

from harness.train import run_job
from harness.train.checkpoint import BadCheckpoint, checkpoints, verify
from harness.train.errors import SimulatedKill

torch.set_num_threads(1)


def _job():  # type: ignore[no-untyped-def]
    return finetune_job("snli-ve", steps=6, train={"checkpoint_every": 2, "deterministic": True, "log_every": 1})


def _folders(results: Path, run_id: str) -> list[Path]:
    return [path for _, path in checkpoints(results / "runs" / run_id / "checkpoints")]


def test_a_corrupt_latest_checkpoint_falls_back_to_the_previous_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    whole = run_job(_job(), tmp_path / "whole")
    killed = tmp_path / "killed"
    with pytest.raises(SimulatedKill):
        run_job(_job(), killed, stop_after=5)
    older, newest = _folders(killed, _job().run_id)  # step_2 and step_4
    assert not [p for p in newest.iterdir() if p.suffix in (".pkl", ".bin")]  # nothing pickled was written
    weights = max(newest.glob("*.safetensors"), key=lambda p: p.stat().st_size)
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # truncated, as by a full disk
    capsys.readouterr()
    resumed = run_job(_job(), killed)
    err = capsys.readouterr().err
    assert f"checkpoint skipped: {weights}" in err and "truncated" in err, err
    assert resumed["resumed_from"]["step"] == 2 and resumed["resumed_from"]["checkpoint"] == str(older)
    assert resumed["metrics"] == whole["metrics"]


def test_verification_names_the_bad_file(tmp_path: Path) -> None:
    results = tmp_path / "r"
    with pytest.raises(SimulatedKill):
        run_job(_job(), results, stop_after=3)
    (folder,) = _folders(results, _job().run_id)
    assert verify(folder)["step"] == 2
    state = folder / "trainer_state.json"
    state.write_text(state.read_text().replace('"step": 2', '"step": 3'))  # same size, other content
    with pytest.raises(BadCheckpoint, match="trainer_state.json: sha256 differs"):
        verify(folder)
    (folder / "manifest.json").unlink()
    with pytest.raises(BadCheckpoint, match="manifest.json is missing"):
        verify(folder)


class _Planted:
    """Unpickling this creates a marker file: proof that something was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (self.marker,))


def test_a_planted_pickle_in_a_run_folder_is_never_loaded(tmp_path: Path) -> None:
    results = tmp_path / "r"
    with pytest.raises(SimulatedKill):
        run_job(_job(), results, stop_after=3)
    (folder,) = _folders(results, _job().run_id)
    marker = tmp_path / "unpickled"
    for name in ("custom_checkpoint_0.pkl", "random_states_0.pkl", "optimizer.bin", "scheduler.bin"):
        (folder / name).write_bytes(pickle.dumps(_Planted(marker)))
    resumed = run_job(_job(), results)
    assert resumed["resumed_from"]["step"] == 2
    assert not marker.exists(), "a pickle from the results directory was loaded"
    manifest = json.loads((_folders(results, _job().run_id)[-1] / "manifest.json").read_text())
    assert not [n for n in manifest["files"] if n.endswith((".pkl", ".bin", ".pt"))]
