"""An imported checkpoint recorded as a finished run that grids can start from.

``meter:NAME`` (a grid's ``pretrain: {from: meter:NAME}``) names the run ``import_run_id("meter",
NAME)``: its folder ``<results>/runs/<id>/`` holds ``model.safetensors`` (harness names, what a
fine-tuning job loads), ``import.json`` (source file, its sha256, the architecture, the key report)
and ``result.json``; the store gets a "done" runs row, so dispatch treats the fine-tuning jobs'
dependency as finished. A name is bound to one checkpoint: importing other weights under a used
name is refused (the name is part of the fine-tuning jobs' run ids).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from harness.spec.schema import IMPORT_NAME_PATTERN, import_run_id

IMPORT_FILE = "import.json"
NAME_PATTERN = IMPORT_NAME_PATTERN  # what `pretrain: {from: meter:NAME}` accepts


class ImportConflict(ValueError):
    """The name already holds a different checkpoint."""




def read_import(results: Path, source: str, name: str) -> dict[str, Any] | None:
    """The import record of ``source:name`` in ``results``, or None when it was never imported."""
    from harness.paths import run_dir

    path = run_dir(Path(results), import_run_id(source, name)) / IMPORT_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def record_import(results: Path, *, source: str, name: str, record: dict[str, Any],
                  state: dict[str, Any]) -> tuple[Path, bool]:
    """Write the run folder (all at once: a temporary folder renamed into place) and the store row.

    Returns (run folder, written); ``written`` is False when the same checkpoint (same sha256)
    was imported under this name before. A different checkpoint under the name raises.
    """
    from safetensors.torch import save_file

    from harness.paths import run_dir
    from harness.store import Store
    from harness.train.record import utc_now, versions

    results = Path(results)
    run_id = import_run_id(source, name)
    folder = run_dir(results, run_id)
    previous = read_import(results, source, name)
    if previous is not None:
        if previous.get("sha256") == record["sha256"]:
            return folder, False
        raise ImportConflict(f"'{source}:{name}' already holds another checkpoint ({previous.get('path')}, sha256 "
                             f"{str(previous.get('sha256'))[:12]}…); fine-tuning run ids refer to it by name, so "
                             "choose another --name")
    if folder.exists():
        raise ImportConflict(f"{folder} exists but holds no import record; move it aside first")
    tmp = folder.with_name(f".{run_id}.import{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp / "model.safetensors"),
                  metadata={"format": "pt"})
        full = {**record, "run_id": run_id, "reference": f"{source}:{name}", "imported": utc_now()}
        (tmp / IMPORT_FILE).write_text(json.dumps(full, indent=1, sort_keys=True))
        (tmp / "result.json").write_text(json.dumps({"run_id": run_id, "status": "done", "reason": None,
                                                     "step": record.get("global_step") or 0, "metrics": {},
                                                     "imported_from": f"{source}:{name}"}, indent=1))
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    now = utc_now()
    Store(results).write_run({
        "run_id": run_id, "grid": f"import:{source}", "stage": record["arch"]["stage"], "task": None, "seed": 0,
        "depends_on": None, "factors": {"import": f"{source}:{name}"}, "status": "done", "spec": full,
        "start_time": now, "end_time": now, "wall_s": 0.0, "versions": versions()})
    return folder, True
