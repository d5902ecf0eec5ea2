"""One claim per run id: ``<run>/claim.json``, created atomically, so a run never trains twice at once.

Whatever asked for the run — a grid, another grid sharing its run ids, a search, the local or
the SLURM executor — the process that trains it first takes the claim. The file appears
complete or not at all (written to a temporary name, then ``os.link``-ed, which fails when the
name exists) and says who holds it: host, pid, the process's start time (a recycled pid is not
mistaken for the holder) and the boot id; a heartbeat thread touches it every HEARTBEAT_S.

A claim is stale when its holder is provably gone: on this host, the pid is dead or belongs to
another process; elsewhere, the heartbeat is older than STALE_AFTER_S. A stale claim is taken
over (renamed aside, so exactly one contender wins) and the takeover is said on stderr.
The same process may claim again (a worker claims, then its job function does): re-entrant.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLAIM = "claim.json"
HEARTBEAT_S = 30.0
STALE_AFTER_S = 300.0


class RunBusy(RuntimeError):
    """Another live process holds the run's claim."""


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_start(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (Linux), or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] in ("Z", "X") else fields[19]  # a zombie has exited; X: dead


def _me() -> dict[str, Any]:
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "start": process_start(pid), "boot": _boot_id()}


def read_claim(folder: Path) -> dict[str, Any] | None:
    """The claim of a run folder; ``{}`` when the file exists but cannot be read, None when absent."""
    path = folder / CLAIM
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    with contextlib.suppress(OSError):
        data["heartbeat"] = path.stat().st_mtime
    return data


def holder_alive(claim: dict[str, Any] | None, now: float | None = None) -> bool:
    """Whether the process named by ``claim`` may still be training the run."""
    if not claim:
        return False
    if claim.get("host") != socket.gethostname() or claim.get("boot") != _boot_id():
        if claim.get("host") == socket.gethostname():
            return False  # this host rebooted since: nothing from before runs now
        beat = claim.get("heartbeat")
        return isinstance(beat, (int, float)) and (now or time.time()) - beat < STALE_AFTER_S
    pid = claim.get("pid")
    return isinstance(pid, int) and pid > 0 and process_start(pid) == claim.get("start")


def describe(claim: dict[str, Any]) -> str:
    since = claim.get("claimed")
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(since)) if isinstance(since, (int, float)) else "?"
    by = f" for {claim['by']}" if claim.get("by") else ""
    return f"pid {claim.get('pid')} on {claim.get('host')}{by}, claimed {when}"


def _is_mine(claim: dict[str, Any] | None) -> bool:
    me = _me()
    return bool(claim) and all(claim.get(k) == me[k] for k in ("host", "pid", "start", "boot"))  # type: ignore[union-attr]


def _create(path: Path, body: dict[str, Any]) -> bool:
    """Publish ``body`` at ``path`` unless the name exists; True when this call created it."""
    tmp = path.with_name(f".{CLAIM}.{os.getpid()}.{secrets.token_hex(4)}")
    tmp.write_text(json.dumps(body, indent=1))
    try:
        os.link(tmp, path)  # atomic, and fails when a claim exists: the O_EXCL of complete files
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def _take_over(path: Path, old: dict[str, Any]) -> bool:
    """Move a stale claim aside; True when this process moved it (so only one contender proceeds)."""
    aside = path.with_name(f".{CLAIM}.stale.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return False  # another contender moved it first
    moved = read_claim_file(aside)
    aside.unlink(missing_ok=True)
    if moved != {k: v for k, v in old.items() if k != "heartbeat"} and holder_alive(moved):
        _create(path, moved)  # we moved a fresh claim taken meanwhile: put it back
        return False
    who = describe(old) if old else "an unreadable claim"
    print(f"note: run folder {path.parent.name[:10]}: taking over the stale claim of {who} "
          "(that process is gone)", file=sys.stderr, flush=True)
    return True


def read_claim_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@dataclass
class Claim:
    """A held claim; ``release()`` (or leaving ``hold``) removes it and stops the heartbeat."""

    path: Path
    owner: bool
    _stop: threading.Event
    _thread: threading.Thread | None = None

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.owner and _is_mine(read_claim(self.path.parent)):
            self.path.unlink(missing_ok=True)


def acquire(folder: Path, by: str = "", *, heartbeat_s: float = HEARTBEAT_S) -> Claim:
    """Claim the run whose folder is ``folder``; RunBusy when a live process holds it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CLAIM
    body = {**_me(), "claimed": time.time(), "by": by}
    for _attempt in range(20):
        if _create(path, body):
            return _start_heartbeat(Claim(path, True, threading.Event()), heartbeat_s)
        current = read_claim(folder)
        if current is None:
            continue  # released between our attempt and our read
        if _is_mine(current):
            return Claim(path, False, threading.Event())  # re-entrant: the outer holder releases it
        if current == {} and _age(path) < 5.0:
            time.sleep(0.05)  # (only a foreign tool writes a claim in place; give it a moment)
            continue
        if holder_alive(current):
            raise RunBusy(f"run {folder.name[:10]} is being trained by {describe(current)}; "
                          "it is not started twice (`harness status` follows it)")
        _take_over(path, current)
    raise RunBusy(f"run {folder.name[:10]}: could not take its claim (contended); try again")


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


def _start_heartbeat(claim: Claim, every_s: float) -> Claim:
    def beat() -> None:
        while not claim._stop.wait(every_s):
            with contextlib.suppress(OSError):
                os.utime(claim.path)

    claim._thread = threading.Thread(target=beat, name="claim-heartbeat", daemon=True)
    claim._thread.start()
    return claim


@contextlib.contextmanager
def hold(folder: Path, by: str = "") -> Iterator[Claim]:
    """``with hold(run_folder, "grid X"):`` — the run is ours inside, released after (also on errors)."""
    claim = acquire(folder, by)
    try:
        yield claim
    finally:
        claim.release()
