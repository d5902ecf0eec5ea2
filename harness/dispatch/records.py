"""What a job leaves in its run folder and the store, read and written without the executors:
``progress.json``, ``error.txt`` with its reason, whether the process behind it is alive, and
``record_end`` (error.txt + runs row for jobs the trainer could not finish). Torch-free.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.paths import run_dir

if TYPE_CHECKING:
    from harness.spec.schema import JobSpec

PROGRESS = "progress.json"
ERROR = "error.txt"
LOG = "log.txt"


def read_progress(path: Path) -> dict[str, Any] | None:
    """``progress.json`` of a run folder (or the file itself); None when absent or half-written."""
    file = path / PROGRESS if path.is_dir() else path
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def process_alive(pid: int | None, host: str | None = None) -> bool:
    """Whether ``pid`` runs on this host (a zombie counts as dead). Other hosts: assumed alive."""
    if host and host != socket.gethostname():
        return True
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # "Z" in /proc/PID/stat: exited, not yet reaped
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def store_status(results: Path) -> dict[str, str]:
    """run id → latest status in the store ({} when the store is empty or absent)."""
    from harness.paths import store_dir

    if not store_dir(results).exists():
        return {}
    from harness.store import Store

    return dict(Store(results).status())


def first_paragraph(path: Path) -> str:
    """error.txt's reason: its lines up to the first blank line (the traceback follows it), "" when
    absent. Whole, not its first line: a missing-weights reason goes on with "Looked in:" and the fix."""
    try:
        text = path.read_text().strip()
    except OSError:
        return ""
    return text.split("\n\n", 1)[0][:4000] if text else ""


def error_reason(folder: Path, state: str) -> str:
    """The reason in error.txt, without its time stamp and state word."""
    reason = re.sub(r"^\[[^\]]*\]\s*", "", first_paragraph(folder / ERROR))
    # The "(recorded <time> UTC)" line that record_failure writes under the reason is not part of it.
    reason = re.sub(r"\n\(recorded [^)\n]*\)$", "", reason, flags=re.MULTILINE)
    return reason.removeprefix(f"{state}: ")


def record_end(job: JobSpec, results: Path, status: str, reason: str, tb: str | None = None) -> None:
    """Mark ``job`` failed or cancelled: ``error.txt`` and the runs row in its run folder, then in the store."""
    from harness.store.runrecord import record_run

    folder = run_dir(results, job.run_id)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    (folder / ERROR).write_text(f"{status}: {reason}\n(recorded {stamp} UTC)\n" + (f"\n{tb}" if tb else ""))
    # The store fills the identity columns (run id, grid, stage, task, seed, factors) from the spec.
    row = {"spec": job, "status": status, "error": reason, "end_time": time.time(), "host": socket.gethostname(),
           "executor": os.environ.get("HARNESS_EXECUTOR") or "local"}
    record_run(results, row)


def format_traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
