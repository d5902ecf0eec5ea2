"""The local executor with fake quick jobs that keep the trainer's contract.

The fake job (``fake_job``) writes progress.json, runs rows and a metrics row the way
``harness.train.run_job`` does, sleeps a little per step, and crashes when the
``FAKE_CRASH`` environment variable names its stage and text level (e.g. "pretrain:roberta");
``FAKE_SLOW`` lists text levels whose steps take ``FAKE_SLOW_FACTOR`` (200) times longer;
``FAKE_BARRIER=N`` makes each job wait until N jobs have started.
Workers are real subprocesses; they import this module by name (its folder goes on PYTHONPATH).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from harness.paths import run_dir

GRID = """\
name: {name}
base:
  model: {{scale: tiny, weights: random, hidden: 16, heads: 2, fusion_layers: 1}}
  pretrain: {{objectives: [mlm, itm], steps: 5, batch: 4, image_size: 32, datasets: [synthetic], zero_shot: null}}
  finetune:
    vqa: {{steps: 5, batch: 4, image_size: 32, dataset: synthetic}}
factors:
  model.text: [{levels}]
seeds: 1
"""


def write_grid(folder: Path, name: str = "fakegrid", levels: str = "bert, roberta") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(GRID.format(name=name, levels=levels))
    return path


def compile_jobs(path: Path):  # type: ignore[no-untyped-def]
    from harness.spec.compile import compile_grid

    return compile_grid(path).jobs


def _journal(results: Path, what: str, run_id: str) -> None:
    with open(results / "journal.txt", "a") as f:
        f.write(f"{time.time():.6f} {what} {run_id}\n")


def read_journal(results: Path) -> list[tuple[float, str, str]]:
    path = results / "journal.txt"
    if not path.exists():
        return []
    rows = [line.split() for line in path.read_text().splitlines()]
    return [(float(t), what, rid) for t, what, rid in rows]


def _barrier(results: Path, jobs: int, timeout_s: float = 60.0) -> None:
    """Wait until ``jobs`` jobs have started: passes only if that many run at the same time."""
    deadline = time.monotonic() + timeout_s
    while sum(what == "start" for _, what, _ in read_journal(results)) < jobs:
        if time.monotonic() > deadline:
            raise RuntimeError(f"barrier: {jobs} jobs never ran at the same time")
        time.sleep(0.05)


def fake_job(job, results: Path) -> dict:  # type: ignore[no-untyped-def]
    """Stands in for harness.train.run_job: same files, same store rows, no torch."""
    from harness.store import Store
    from harness.train.record import ProgressFile

    results = Path(results)
    folder = run_dir(results, job.run_id)
    steps = int(os.environ.get("FAKE_STEPS", "3"))
    pause = float(os.environ.get("FAKE_STEP_S", "0.05"))
    crash = f"{job.stage}:{job.factors.get('model.text')}" in os.environ.get("FAKE_CRASH", "").split(",")
    if job.factors.get("model.text") in os.environ.get("FAKE_SLOW", "").split(","):
        pause *= float(os.environ.get("FAKE_SLOW_FACTOR", "200"))
    store = Store(results)
    store.write_run({"spec": job, "status": "running"})
    _journal(results, "start", job.run_id)
    _journal(results, f"gpus={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}", job.run_id)
    _barrier(results, int(os.environ.get("FAKE_BARRIER", "0")))
    if job.depends_on and not (run_dir(results, job.depends_on) / "model.safetensors").exists():
        raise RuntimeError("pre-training weights missing")  # what the trainer would hit
    progress = ProgressFile(folder, job.run_id, steps)
    for step in range(1, steps + 1):
        time.sleep(pause)
        progress.write("running", step, loss=1.0 / step)
        print(f"step {step}", flush=True)
        if crash and step == 2:
            raise RuntimeError(f"fake crash in {job.stage} {job.factors}")
    (folder / "model.safetensors").write_bytes(b"weights")
    store.write_metrics(job.run_id, [{"stage": job.stage, "task": job.task or "pretrain", "split": "test",
                                      "metric": "score", "value": 0.5, "step": steps}])
    progress.write("done", steps, loss=1.0 / steps, metrics={"test/score": 0.5})
    store.write_run({"spec": job, "status": "done"})
    _journal(results, "end", job.run_id)
    return {"score": 0.5}


@pytest.fixture
def fake_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("FAKE_STEPS", "3")
    monkeypatch.setenv("FAKE_STEP_S", "0.05")
    monkeypatch.delenv("FAKE_CRASH", raising=False)
    monkeypatch.delenv("FAKE_SLOW", raising=False)
    monkeypatch.delenv("FAKE_BARRIER", raising=False)
    return monkeypatch


def statuses(results: Path) -> dict[str, str]:
    from harness.store import Store

    return dict(Store(results).status())


def submit(jobs, results: Path, workers: int = 2, gpus=()):  # type: ignore[no-untyped-def]
    import io

    from harness.dispatch.local import LocalExecutor
    from harness.dispatch.order import write_specs

    write_specs(jobs, results)
    events = []
    out = io.StringIO()
    LocalExecutor(workers=workers, job_fn=fake_job, poll_s=0.05, stream=out, gpus=gpus).submit(
        jobs, results, on_progress=events.append)
    return events, out.getvalue()


@pytest.mark.slow
def test_two_workers_run_in_parallel_and_honour_dependencies(tmp_path: Path, fake_env: pytest.MonkeyPatch) -> None:
    fake_env.setenv("FAKE_BARRIER", "2")  # each job waits until two have started
    jobs = compile_jobs(write_grid(tmp_path))
    results = tmp_path / "results"
    events, out = submit(jobs, results, workers=2)
    assert statuses(results) == {j.run_id: "done" for j in jobs}
    journal = read_journal(results)
    when = {(what, rid): t for t, what, rid in journal}
    for job in jobs:
        if job.depends_on:
            assert when[("start", job.run_id)] > when[("end", job.depends_on)]
    pre = [j for j in jobs if j.stage == "pretrain"]
    # both pre-training jobs ran at the same time (the barrier let neither end alone)
    assert when[("start", pre[1].run_id)] < when[("end", pre[0].run_id)]
    assert when[("start", pre[0].run_id)] < when[("end", pre[1].run_id)]
    assert [e.state for e in events].count("done") == len(jobs)
    assert "running 4 job(s), 2 at a time" in out
    assert (run_dir(results, jobs[0].run_id) / "log.txt").read_text().count("step 3") == 1


@pytest.mark.slow
def test_crash_is_recorded_and_others_go_on(tmp_path: Path, fake_env: pytest.MonkeyPatch) -> None:
    fake_env.setenv("FAKE_CRASH", "pretrain:roberta")
    jobs = compile_jobs(write_grid(tmp_path))
    results = tmp_path / "results"
    submit(jobs, results)
    by_level = {(j.stage, j.factors["model.text"]): j for j in jobs}
    status = statuses(results)
    assert status[by_level["pretrain", "bert"].run_id] == "done"
    assert status[by_level["finetune", "bert"].run_id] == "done"
    crashed = by_level["pretrain", "roberta"]
    assert status[crashed.run_id] == "failed"
    error = (run_dir(results, crashed.run_id) / "error.txt").read_text()
    assert "RuntimeError: fake crash" in error and "Traceback" in error
    blocked = by_level["finetune", "roberta"]
    assert status[blocked.run_id] == "failed"
    reason = (run_dir(results, blocked.run_id) / "error.txt").read_text()
    assert f"pre-training run {crashed.short_id} ended failed" in reason
    assert ("start", blocked.run_id) not in {(w, r) for _, w, r in read_journal(results)}


def test_worker_count_defaults_to_cores_over_threads(tmp_path: Path) -> None:
    from harness.dispatch.local import LocalExecutor, available_cores

    jobs = compile_jobs(write_grid(tmp_path))
    assert LocalExecutor().worker_count(jobs) == max(1, available_cores())
    assert LocalExecutor(workers=3).worker_count(jobs) == 3
    with pytest.raises(ValueError, match="at least 1"):
        LocalExecutor(workers=0)


def test_job_function_reference_for_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.dispatch.local import DEFAULT_JOB_FN, JOB_FN_ENV, job_fn_ref, load_job_fn

    monkeypatch.delenv(JOB_FN_ENV, raising=False)
    assert job_fn_ref(None) == (DEFAULT_JOB_FN, [])
    monkeypatch.setenv(JOB_FN_ENV, "some.module:fn")
    assert job_fn_ref(None) == ("some.module:fn", [])
    ref, paths = job_fn_ref(fake_job)
    assert ref == f"{__name__}:fake_job" and paths == [str(Path(__file__).resolve().parent)]
    assert load_job_fn("harness.dispatch.order:plan_runs").__name__ == "plan_runs"
    with pytest.raises(ValueError, match="module:function"):
        job_fn_ref("no_colon")


@pytest.mark.slow
def test_cancel_signals_an_orphaned_worker_by_its_progress_pid(tmp_path: Path, fake_env: pytest.MonkeyPatch) -> None:
    """No dispatcher left (e.g. it was killed): cancel finds the worker through progress.json."""
    import subprocess

    from harness.dispatch.local import LocalExecutor
    from harness.dispatch.order import write_specs
    from harness.dispatch.state import read_progress

    fake_env.setenv("FAKE_SLOW", "bert")
    fake_env.setenv("FAKE_STEP_S", "0.01")  # 2 s per slow step: cancelled after the first
    job = compile_jobs(write_grid(tmp_path))[0]
    results = tmp_path / "results"
    write_specs([job], results)
    executor = LocalExecutor(job_fn=fake_job)
    proc = subprocess.Popen(executor.command(job, results), env=executor.environment(job), start_new_session=True)
    deadline = time.monotonic() + 60
    while (read_progress(run_dir(results, job.run_id)) or {}).get("step") is None:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    assert executor.cancel([job], results) == [job.run_id]
    assert proc.wait(timeout=30) == 130
    assert statuses(results)[job.run_id] == "cancelled"
    assert executor.cancel([job], results) == []  # nothing left to signal


@pytest.mark.slow
def test_worker_records_a_job_function_that_cannot_load(tmp_path: Path, fake_env: pytest.MonkeyPatch) -> None:
    import subprocess

    from harness.dispatch.local import LocalExecutor
    from harness.dispatch.order import write_specs

    job = compile_jobs(write_grid(tmp_path))[0]
    results = tmp_path / "results"
    write_specs([job], results)
    executor = LocalExecutor(job_fn="harness.dispatch.order:no_such_function")
    done = subprocess.run(executor.command(job, results), env=executor.environment(job), capture_output=True)
    assert done.returncode == 1
    assert statuses(results)[job.run_id] == "failed"
    assert "AttributeError" in (run_dir(results, job.run_id) / "error.txt").read_text()


def gpu_grid(folder: Path, gpus_per_node: int) -> Path:
    path = write_grid(folder, f"gpus{gpus_per_node}")
    path.write_text(path.read_text().replace("base:\n", f"base:\n  resources: {{gpus_per_node: {gpus_per_node}}}\n"))
    return path


@pytest.mark.slow
def test_gpu_jobs_share_the_visible_gpus_and_cpu_jobs_see_none(tmp_path: Path, fake_env: pytest.MonkeyPatch) -> None:
    results = tmp_path / "results"
    gpu_jobs = [j for j in compile_jobs(gpu_grid(tmp_path, 1)) if j.stage == "pretrain"]
    _, out = submit(gpu_jobs, results, workers=2, gpus=["3"])
    journal = read_journal(results)
    assert {what for _, what, _ in journal if what.startswith("gpus=")} == {"gpus=3"}
    spans = {rid: [t for t, what, r in journal if r == rid and what in ("start", "end")] for rid in
             (j.run_id for j in gpu_jobs)}
    (a0, a1), (b0, b1) = spans.values()
    assert a1 <= b0 or b1 <= a0  # one GPU: never both at once, though two workers were free
    cpu_jobs = [j for j in compile_jobs(write_grid(tmp_path)) if j.stage == "pretrain"]
    _, out = submit(cpu_jobs, tmp_path / "cpu", gpus=["0"])
    assert {w for _, w, _ in read_journal(tmp_path / "cpu") if w.startswith("gpus=")} == {"gpus="}
    assert "visible GPU(s) stay unused" in out


def test_a_job_asking_for_more_gpus_than_visible_is_refused_up_front(tmp_path: Path) -> None:
    from harness.dispatch.gpus import GpuPool, ResourceError

    jobs = compile_jobs(gpu_grid(tmp_path, 2))
    with pytest.raises(ResourceError, match=r"asks for 2 GPU\(s\).*1 visible GPU\(s\) \(0\)"):
        submit(jobs, tmp_path / "results", gpus=["0"])
    assert not (tmp_path / "results" / "journal.txt").exists()
    pool = GpuPool(["0", "1", "2"])
    assert pool.take(2) == ["0", "1"] and not pool.can_take(2)
    pool.give_back(["1"])
    assert pool.free == ["1", "2"] and pool.take(1) == ["1"]


def test_detect_gpus_reads_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.dispatch.gpus import detect_gpus

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert detect_gpus() == ["2", "3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert detect_gpus() == []
