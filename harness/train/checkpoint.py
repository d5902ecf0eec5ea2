"""Checkpoints in ``run_dir/checkpoints/step_<n>``: atomic, the last few kept, found again on restart.

A checkpoint is ``accelerator.save_state`` (model, optimizer, scheduler, every process's RNG
state) plus ``trainer_state.json`` (step, metric history, log-window sums). It is written to
a hidden temporary folder and renamed only when complete, so a job killed while saving
leaves the previous checkpoint as the latest.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

STATE_FILE = "trainer_state.json"
_PREFIX = "step_"


def checkpoints(root: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints under ``root``, oldest first."""
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        if path.name.startswith(_PREFIX) and path.name[len(_PREFIX):].isdigit() and (path / STATE_FILE).is_file():
            found.append((int(path.name[len(_PREFIX):]), path))
    return sorted(found)


def latest(root: Path) -> tuple[int, Path] | None:
    found = checkpoints(root)
    return found[-1] if found else None


def read_state(path: Path) -> dict[str, Any]:
    return json.loads((path / STATE_FILE).read_text())


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temporary name in the same folder, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)


def save(accelerator: Any, root: Path, step: int, trainer_state: dict[str, Any], keep: int = 2) -> Path:
    """Save on all processes (each writes its RNG state); the main process publishes and prunes."""
    tmp = root / f".tmp_{_PREFIX}{step}"
    final = root / f"{_PREFIX}{step}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        write_json_atomic(tmp / STATE_FILE, {**trainer_state, "step": step})
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        for _, old in checkpoints(root)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load(accelerator: Any, path: Path) -> dict[str, Any]:
    """Restore model, optimizer, scheduler and RNG states; returns the trainer state."""
    accelerator.load_state(str(path))
    return read_state(path)
