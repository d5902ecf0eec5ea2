"""Checkpoints in ``run_dir/checkpoints/step_<n>``: atomic, verified, pickle-free, found again on restart.

A checkpoint holds what Accelerate's ``save_state`` would (model, optimizers, registered objects
such as the scheduler, the grad scaler, every process's RNG state) plus ``trainer_state.json``
(step, metric history, log-window sums) — but tensors go to safetensors and everything else to
JSON: nothing in a results directory is ever unpickled (a planted ``*.pkl`` is never read).
It is written to a hidden temporary folder, ``manifest.json`` (size and sha256 of every file)
last, and renamed only when complete. On restart the newest checkpoint whose manifest checks
out is used; the ones skipped are named with the reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sys
from pathlib import Path
from typing import Any

STATE_FILE = "trainer_state.json"
MANIFEST = "manifest.json"
FORMAT = 1
_PREFIX = "step_"


class BadCheckpoint(Exception):
    """A checkpoint folder that fails verification; the message names the file and the problem."""


def checkpoints(root: Path) -> list[tuple[int, Path]]:
    """Published checkpoint folders under ``root``, oldest first (not yet verified)."""
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        if path.name.startswith(_PREFIX) and path.name[len(_PREFIX):].isdigit() and path.is_dir():
            found.append((int(path.name[len(_PREFIX):]), path))
    return sorted(found)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path) -> dict[str, Any]:
    """The trainer state of a checkpoint whose manifest, sizes and hashes all check out; else BadCheckpoint."""
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except FileNotFoundError:
        raise BadCheckpoint(f"{path / MANIFEST} is missing (incomplete, or written by an older harness "
                            "in Accelerate's pickle format, which is never loaded)") from None
    except (OSError, ValueError) as exc:
        raise BadCheckpoint(f"{path / MANIFEST} is unreadable: {exc}") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if manifest.get("format") != FORMAT or not isinstance(files, dict) or STATE_FILE not in files:
        raise BadCheckpoint(f"{path / MANIFEST}: not a format-{FORMAT} manifest")
    for name, want in files.items():
        file = path / name
        if "/" in name or name.startswith(".") or not file.is_file():
            raise BadCheckpoint(f"{file} is missing")
        size = file.stat().st_size
        if size != want.get("size"):
            raise BadCheckpoint(f"{file} has {size} bytes, the manifest says {want.get('size')} (truncated?)")
        if file_sha256(file) != want.get("sha256"):
            raise BadCheckpoint(f"{file}: sha256 differs from the manifest (corrupted)")
    try:
        state = json.loads((path / STATE_FILE).read_text())
    except ValueError as exc:
        raise BadCheckpoint(f"{path / STATE_FILE} is not valid JSON: {exc}") from None
    if not isinstance(state, dict) or not isinstance(state.get("step"), int):
        raise BadCheckpoint(f"{path / STATE_FILE} has no step")
    return state


def latest(root: Path, echo: bool = True) -> tuple[int, Path] | None:
    """The newest checkpoint that verifies; the newer ones skipped are named (on stderr) with why."""
    for step, path in reversed(checkpoints(root)):
        try:
            verify(path)
        except BadCheckpoint as exc:
            if echo:
                print(f"checkpoint skipped: {exc}; falling back to an older one", file=sys.stderr, flush=True)
            continue
        return step, path
    return None


def read_state(path: Path) -> dict[str, Any]:
    return dict(json.loads((path / STATE_FILE).read_text()))


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temporary name in the same folder, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)


def _write_manifest(folder: Path) -> None:
    files = {p.name: {"size": p.stat().st_size, "sha256": file_sha256(p)}
             for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".") and p.name != MANIFEST}
    write_json_atomic(folder / MANIFEST, {"format": FORMAT, "files": files})


def save(accelerator: Any, root: Path, step: int, trainer_state: dict[str, Any], keep: int = 2) -> Path:
    """Save on all processes (each writes its RNG state); the main process publishes and prunes."""
    from harness.train import checkpoint_io

    tmp = root / f".tmp_{_PREFIX}{step}"
    final = root / f"{_PREFIX}{step}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    checkpoint_io.save_state(accelerator, tmp)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        write_json_atomic(tmp / STATE_FILE, {**trainer_state, "step": step})
        _write_manifest(tmp)  # last: a folder without it was never finished
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        for _, old in checkpoints(root)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load(accelerator: Any, path: Path) -> dict[str, Any]:
    """Restore model, optimizers, registered objects, scaler and RNG states; returns the trainer state."""
    from harness.train import checkpoint_io

    state = verify(path)
    checkpoint_io.load_state(accelerator, path)
    return state


def python_rng_state() -> list[Any]:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def set_python_rng_state(saved: list[Any]) -> None:
    random.setstate((saved[0], tuple(saved[1]), saved[2]))
