"""Issue 13, defects 6 and 11, and the claim guarantee: one claim per run id, whatever asked.

Workers are real subprocesses running the fake job of test_local_executor (no torch)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_local_executor import compile_jobs, read_journal, write_grid

from harness.claim import CLAIM, RunBusy, acquire, hold, holder_alive, read_claim
from harness.dispatch.state import job_states
from harness.paths import run_dir

HERE = Path(__file__).resolve().parent


def _env(results: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "HARNESS_JOB_FN": "test_local_executor:fake_job", "HARNESS_RESULTS": str(results),
            "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]), "FAKE_STEPS": "3",
            "FAKE_STEP_S": "0.05", **extra}


def _harness(*argv: str, env: dict[str, str]) -> subprocess.Popen[str]:
    code = "import sys; from harness.cli import main; sys.exit(main())"
    return subprocess.Popen([sys.executable, "-c", code, *argv], env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def _write_claim(folder: Path, **fields: object) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CLAIM).write_text(json.dumps(fields))


def test_a_live_claim_keeps_others_out_and_is_reentrant(tmp_path: Path) -> None:
    folder = tmp_path / "runs" / "abc"
    with hold(folder, "first") as outer:
        assert outer.owner and holder_alive(read_claim(folder))
        with hold(folder, "same process again") as inner:  # a worker claims, then its job function
            assert not inner.owner
        assert (folder / CLAIM).exists()  # the inner release leaves the outer claim
        child = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                                "from harness.claim import acquire, RunBusy\n"
                                f"try: acquire(Path({str(folder)!r}))\n"
                                "except RunBusy as e: print(e); sys.exit(3)"],
                               capture_output=True, text=True, timeout=60)
        assert child.returncode == 3 and "being trained by pid" in child.stdout and "first" in child.stdout
    assert not (folder / CLAIM).exists()


def test_stale_claims_are_taken_over_and_said(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "runs" / "abc"
    here = socket.gethostname()
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    dead = 2**22 + 12345  # above the default pid_max
    cases = [
        dict(host=here, pid=dead, start="1", boot=boot),            # dead pid on this host
        dict(host=here, pid=os.getpid(), start="0", boot=boot),     # a recycled pid: another start time
        dict(host=here, pid=os.getpid(), start="0", boot="old"),    # this host rebooted since
    ]
    for fields in cases:
        _write_claim(folder, **fields)
        with hold(folder):
            assert read_claim(folder)["pid"] == os.getpid()  # type: ignore[index]
        assert "taking over the stale claim of pid" in capsys.readouterr().err
    _write_claim(folder, host="node-elsewhere", pid=1, start="1", boot="x")
    with pytest.raises(RunBusy, match="node-elsewhere"):  # a fresh heartbeat elsewhere: alive
        acquire(folder)
    old = time.time() - 3600
    os.utime(folder / CLAIM, (old, old))  # its heartbeat stopped an hour ago
    acquire(folder).release()
    assert "taking over the stale claim" in capsys.readouterr().err
    (folder / CLAIM).write_text("{garbage")
    os.utime(folder / CLAIM, (old, old))
    acquire(folder).release()
    assert "unreadable claim" in capsys.readouterr().err


def test_killed_in_the_start_up_window_is_interrupted_and_runs_again(tmp_path: Path) -> None:
    """Defect 6: a "running" row but no progress.json (or a garbage one): interrupted, and `run` heals it."""
    from harness.dispatch.order import write_specs
    from harness.store import Store

    grid = write_grid(tmp_path)
    jobs = compile_jobs(grid)
    results = tmp_path / "results"
    write_specs(jobs, results)
    early, garbage = jobs[0], jobs[1]
    Store(results).write_run({"spec": early, "status": "running"})  # killed right after its first row
    Store(results).write_run({"spec": garbage, "status": "running"})
    (run_dir(results, garbage.run_id) / "progress.json").write_text('{"state": "running", "pid": ')
    states = job_states(jobs, results)
    assert states[early.run_id].state == "interrupted"
    assert states[garbage.run_id].state == "interrupted"
    proc = _harness("run", str(grid), env=_env(results))
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out
    assert {st.state for st in job_states(jobs, results).values()} == {"done"}


@pytest.mark.slow
def test_two_grids_sharing_run_ids_never_train_a_run_twice(tmp_path: Path) -> None:
    """Defect 11: the dispatch lock was per grid name; the claim is per run id."""
    first, second = write_grid(tmp_path, "grid_one"), write_grid(tmp_path, "grid_two")
    assert {j.run_id for j in compile_jobs(first)} == {j.run_id for j in compile_jobs(second)}
    results = tmp_path / "results"
    env = _env(results, FAKE_STEPS="6", FAKE_STEP_S="0.4")
    procs = [_harness("run", str(first), "--workers", "2", env=env)]
    time.sleep(0.5)
    procs.append(_harness("run", str(second), "--workers", "2", env=env))
    outs = [p.communicate(timeout=300)[0] for p in procs]
    starts: dict[str, int] = {}
    for _, what, rid in read_journal(results):
        if what == "start":
            starts[rid] = starts.get(rid, 0) + 1
    assert starts and max(starts.values()) == 1, (starts, outs)
    # The second dispatcher sees the claims while planning ("running elsewhere"), or its worker
    # finds the claim taken at start ("running in another process"): either way, it says so.
    said = "".join(outs)
    assert "running in another process" in said or "running elsewhere" in said, outs
    # Once the first dispatcher is done, a rerun of the second grid finds everything done.
    again = _harness("run", str(second), env=env)
    out, _ = again.communicate(timeout=240)
    assert again.returncode == 0 and "4 already done" in out, out
