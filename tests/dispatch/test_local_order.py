"""Planning (skip done, pull in dependencies, order), job states from run folders, the live view."""

from __future__ import annotations

import io
import json
import os
import socket
from pathlib import Path

import pytest
from test_local_executor import compile_jobs, write_grid

from harness.claim import acquire, hold
from harness.dispatch.order import RETRYABLE, RUNNABLE, dependency_order, plan_runs, zoo_entries
from harness.dispatch.state import (
    ProgressView,
    fmt_duration,
    fmt_metric,
    job_state,
    process_alive,
    read_progress,
    table,
)
from harness.paths import run_dir


@pytest.fixture
def jobs(tmp_path: Path):  # type: ignore[no-untyped-def]
    return compile_jobs(write_grid(tmp_path))


def by(jobs, stage: str, text: str):  # type: ignore[no-untyped-def]
    return next(j for j in jobs if j.stage == stage and j.factors["model.text"] == text)


def test_fresh_grid_runs_everything_dependencies_first(jobs) -> None:  # type: ignore[no-untyped-def]
    plan = plan_runs(jobs, {})
    assert [j.run_id for j in plan.run] == [j.run_id for j in jobs]
    reversed_order = dependency_order(list(reversed(jobs)))
    for i, job in enumerate(reversed_order):
        if job.depends_on:
            assert job.depends_on in [j.run_id for j in reversed_order[:i]]


def test_done_jobs_are_skipped(jobs) -> None:  # type: ignore[no-untyped-def]
    pre = by(jobs, "pretrain", "bert")
    plan = plan_runs(jobs, {pre.run_id: "done", by(jobs, "finetune", "bert").run_id: "done"})
    assert {j.factors["model.text"] for j in plan.run} == {"roberta"}
    assert len(plan.done) == 2 and "2 to run, 2 already done" in plan.summary()


def test_retry_picks_failed_and_pulls_in_their_unfinished_dependency(jobs) -> None:  # type: ignore[no-untyped-def]
    states = {by(jobs, "finetune", "roberta").run_id: "failed", by(jobs, "pretrain", "bert").run_id: "done",
              by(jobs, "pretrain", "roberta").run_id: "cancelled"}
    plan = plan_runs(jobs, states, select=RETRYABLE)
    assert [j.run_id for j in plan.run] == [by(jobs, "pretrain", "roberta").run_id,
                                            by(jobs, "finetune", "roberta").run_id]
    # the pending bert fine-tuning job is not a retry's business
    assert by(jobs, "finetune", "bert") not in plan.run
    assert by(jobs, "finetune", "bert") in plan_runs(jobs, states, select=RUNNABLE).run


def test_running_dependency_blocks_instead_of_starting_twice(jobs) -> None:  # type: ignore[no-untyped-def]
    pre = by(jobs, "pretrain", "bert")
    plan = plan_runs(jobs, {pre.run_id: "running"})
    assert pre not in plan.run and pre in plan.busy
    assert "is running" in plan.blocked[by(jobs, "finetune", "bert").run_id]
    only_finetune = [j for j in jobs if j.stage == "finetune"]
    outside = plan_runs(only_finetune, {})
    assert not outside.run and len(outside.blocked) == 2
    assert "not part of this grid selection" in next(iter(outside.blocked.values()))


def test_zoo_entries_only_for_tiny_pretrained_models(tmp_path: Path) -> None:
    path = write_grid(tmp_path)
    path.write_text(path.read_text().replace("weights: random", "weights: pretrained"))
    jobs = compile_jobs(path)
    assert zoo_entries(jobs) == [("vision", "clip-vit-224/32"), ("text", "bert"), ("text", "roberta")]
    assert zoo_entries(compile_jobs(write_grid(tmp_path, "other"))) == []


def _write_progress(folder: Path, **fields) -> None:  # type: ignore[no-untyped-def]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "progress.json").write_text(json.dumps(fields))


def test_states_from_run_folders(jobs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    results = tmp_path / "results"
    job = jobs[0]
    assert job_state(job, results, None).state == "pending"
    folder = run_dir(results, job.run_id)
    host = socket.gethostname()
    _write_progress(folder, state="running", step=3, total=10, eta_s=12.0, pid=os.getpid(), host=host,
                    metrics={"val/score": 0.25})
    claim = acquire(folder, "this test")  # the run's claim is its proof of life
    st = job_state(job, results, "running")
    assert (st.state, st.step, st.total, st.eta_s, st.metrics) == ("running", 3, 10, 12.0, {"val/score": 0.25})
    claim.release()
    assert job_state(job, results, "running").state == "interrupted"
    dead = 2**22 + 12345  # above the default pid_max
    _write_progress(folder, state="running", step=3, total=10, pid=dead, host=host)
    assert job_state(job, results, "running").state == "interrupted"
    (folder / "error.txt").write_text("failed: RuntimeError: boom\n(recorded ...)\n\nTraceback ...")
    assert job_state(job, results, "failed").note == "RuntimeError: boom"
    (folder / "error.txt").write_text("[2026-01-01 10:00:00 UTC] failed: ValueError: x\n")  # the trainer's layout
    assert job_state(job, results, "failed").note == "ValueError: x"
    (folder / "progress.json").unlink()
    with hold(folder):
        assert job_state(job, results, "running").state == "running"  # started, no progress written yet
    (folder / "progress.json").write_text('{"state": "runn')  # half-written
    assert read_progress(folder) is None and job_state(job, results, None).state == "pending"
    assert process_alive(os.getpid()) and not process_alive(None)


def test_view_redraws_on_a_terminal_and_prints_plain_lines_elsewhere(jobs) -> None:  # type: ignore[no-untyped-def]
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    view = ProgressView(tty, refresh_s=0.0)
    progress = {"step": 5, "total": 10, "loss": 0.5, "eta_s": 75}
    view.draw([(jobs[0], progress), (jobs[1], progress)])
    view.draw([(jobs[0], progress)])
    assert "\x1b[2F\x1b[J" in tty.getvalue()
    assert f"{jobs[0].short_id}  pretrain model.text=bert seed=0  step 5/10  loss 0.5000  ETA 1m15s" in tty.getvalue()
    plain = io.StringIO()
    view = ProgressView(plain, refresh_s=0.0, plain_every_s=3600)
    view.draw([(jobs[0], progress)])
    view.draw([(jobs[0], {**progress, "step": 6})])  # too soon to repeat
    view.event(jobs[0], "done", "in 3s")
    text = plain.getvalue()
    assert "\x1b" not in text and text.count("step 5/10") == 1 and "step 6/10" not in text
    assert f"done      {jobs[0].short_id}  pretrain model.text=bert seed=0  (in 3s)" in text


def test_formatting_helpers() -> None:
    assert [fmt_duration(s) for s in (None, 5, 75, 7300)] == ["-", "5s", "1m15s", "2h01m"]
    assert table(["a", "bb"], [["xyz", "1"]]) == "a    bb\nxyz  1"
    assert fmt_metric({"val/vqa_score": 0.41234, "val/loss": 2.0}) == "val/vqa_score=0.4123"
    assert fmt_metric({"val/loss": 2.0}) == "val/loss=2" and fmt_metric({}) == "-"


def test_zoo_is_built_once_in_the_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.models.zoo as zoo
    from harness.dispatch.order import ensure_zoo_for

    calls = []
    monkeypatch.setattr(zoo, "ensure_zoo", lambda names, progress=True: calls.append(list(names)))
    path = write_grid(tmp_path)
    path.write_text(path.read_text().replace("weights: random", "weights: pretrained"))
    said: list[str] = []
    ensure_zoo_for(compile_jobs(path), echo=said.append)
    assert calls == [[("vision", "clip-vit-224/32"), ("text", "bert"), ("text", "roberta")]]
    assert "tiny zoo: ready" in said[-1]
    ensure_zoo_for(compile_jobs(write_grid(tmp_path, "random")), echo=said.append)
    assert len(calls) == 1  # random weights need no zoo


def test_one_dispatcher_per_grid_and_results(tmp_path: Path) -> None:
    from harness.dispatch.order import GridBusy, dispatch_lock

    with dispatch_lock(tmp_path, "g"):
        busy = pytest.raises(GridBusy, match=rf"grid g is already being dispatched .*pid {os.getpid()}")
        with busy, dispatch_lock(tmp_path, "g"):
            pass
        with dispatch_lock(tmp_path, "other"):  # another grid is independent
            pass
    with dispatch_lock(tmp_path, "g"):  # released on exit
        pass


def test_slurm_queue_overrides_stale_files(jobs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from harness.dispatch.state import SlurmView

    results = tmp_path / "results"
    job = jobs[0]
    _write_progress(run_dir(results, job.run_id), state="queued", step=None, total=None)
    gone = SlurmView(frozenset({job.run_id}), {})
    st = job_state(job, results, None, gone)
    assert (st.state, st.note) == ("interrupted", "no longer in the SLURM queue")
    queued_again = SlurmView(frozenset({job.run_id}), {job.run_id: "queued"})
    assert job_state(job, results, "failed", queued_again).state == "queued"  # resubmitted after failing
    assert job_state(job, results, "done", queued_again).state == "done"
    assert job_state(job, results, None, SlurmView(frozenset(), {})).state == "queued"  # never sent to SLURM
    completing = SlurmView(frozenset({job.run_id}), {job.run_id: "running"})
    assert job_state(job, results, "cancelled", completing).state == "cancelled"  # scancel'ed, still completing
    assert job_state(job, results, None, completing).state == "running"
