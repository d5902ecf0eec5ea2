"""The spec stored beside each run: ``<results>/runs/<run_id>/spec.json``.

The same run id must always mean the same experiment: a stored spec whose identity differs
from the job's is an error, never a silent overwrite. Its placement (data root, weights folder,
workers, per-device batch, trackers, resources) may change between attempts: the stored spec is
then rewritten with the new placement, so the next attempt reads the files where they are now.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from harness.paths import run_dir
from harness.spec.schema import JobSpec


class SpecConflict(RuntimeError):
    """A run folder already holds a different spec under the same run id."""


def write_spec(job: JobSpec, results: Path) -> Path:
    folder = run_dir(Path(results), job.run_id)
    path = folder / "spec.json"
    payload = {"identity": job.identity(), "placement": job.placement(), "job": job.model_dump(mode="json"),
               "plugins": _plugins()}
    if path.exists():
        stored = _stored_payload(path)
        if stored is None:  # unreadable: the run id is the hash of the identity, so rewriting it is exact
            print(f"note: {path} was unreadable (corrupt or half-written); rewritten from the grid", file=sys.stderr)
        elif stored.get("identity") != payload["identity"]:
            raise SpecConflict(f"{path} holds a different spec for run {job.run_id}; "
                               "refusing to overwrite it (move the folder aside if it is stale)")
        elif stored.get("placement") == payload["placement"]:
            return path
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".spec.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=True))
    os.replace(tmp, path)
    return path


def _plugins() -> list[dict[str, str]]:
    """Every user plug-in loaded here (the grid's and installed entry points): module and version."""
    from harness.plugins import loaded_plugins

    return [{"module": p.module, "version": p.version} for p in loaded_plugins()]


def _stored_payload(path: Path) -> dict[str, Any] | None:
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return stored if isinstance(stored, dict) and isinstance(stored.get("identity"), dict) else None


def read_spec(path: Path) -> JobSpec:
    """``path`` is a run folder or its spec.json."""
    path = Path(path)
    if path.is_dir():
        path = path / "spec.json"
    return JobSpec.model_validate(json.loads(path.read_text())["job"])
