"""One cost model: `harness plan` counts parameters as `harness ls --params` does, costs each fine-tuning task
with its own dataset's size, shows the per-device batch × accumulation and the estimated memory per GPU, and warns
when a job's estimate exceeds its time_min."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.cli import main
from harness.dispatch.cost import job_cost, time_warning
from harness.spec.compile import compile_grid

ROOT = Path(__file__).resolve().parents[2]
MAIN = ROOT / "grids" / "main.yaml"


@pytest.fixture(scope="module")
def paper_rows() -> list[dict]:  # type: ignore[type-arg]
    from harness.cli.plan import plan_rows

    grid = compile_grid(MAIN, "paper")
    return plan_rows(grid, {})


def _row(rows, stage: str, task: str, model: str = "meter-clip-vit-base"):  # type: ignore[no-untyped-def]
    return next(r for r in rows if r["stage"] == stage and r["task"] == task and r["factors"]["model"] == model)


def test_plan_and_ls_params_print_the_same_count(paper_rows, capsys) -> None:  # type: ignore[no-untyped-def]
    from harness.models.config import ModelSpec
    from harness.models.params import PAPER_PRETRAIN_SIZE, PAPER_SPEC, parameter_counts

    assert main(["ls", "--params"]) == 0
    total = re.search(r"total\s+([\d.]+)M", capsys.readouterr().out)
    assert total is not None
    pre = _row(paper_rows, "pretrain", "-")
    # main.yaml's METER-CLIP-ViT-B pre-training job is ls --params's model
    counted = parameter_counts(ModelSpec(**PAPER_SPEC), objectives=("mlm", "itm"), image_size=PAPER_PRETRAIN_SIZE)
    assert pre["params_m"] == pytest.approx(counted["total"] / 1e6)
    assert f"{pre['params_m']:.2f}" == total.group(1)


def test_each_task_is_costed_with_its_own_dataset(paper_rows) -> None:  # type: ignore[no-untyped-def]
    steps = {task: _row(paper_rows, "finetune", task)["steps"] for task in ("vqa", "nlvr2", "snli-ve", "retrieval")}
    assert steps["nlvr2"] == 3374      # 10 epochs × 86,373 NLVR2 statements / 256
    assert steps["vqa"] == 12854       # 10 epochs × 658,111 VQAv2 train+val questions / 512
    assert steps["snli-ve"] == 41370   # 5 epochs × 529,527 SNLI-VE hypotheses / 64
    assert steps["retrieval"] == 2832 or steps["retrieval"] == 2833  # 10 × 145,000 F30K captions / 512


def test_fine_tuning_heads_are_counted_with_the_tasks_registered_head_info() -> None:
    """Before any data exists, a task's head is counted with its registry's head_info (VQAv2: 3,129 answers)."""
    from harness.models.params import parameter_counts

    job = next(j for j in compile_grid(MAIN, "paper").jobs if j.task == "vqa")
    ft = job.experiment.finetune["vqa"]
    expected = parameter_counts(job.experiment.model, objectives=(), tasks={"vqa": {"num_answers": 3129}},
                                image_size=ft.image_size)["total"]
    assert job_cost(job).params == expected


def test_paper_profile_runs_32_per_gpu_with_accumulation(paper_rows) -> None:  # type: ignore[no-untyped-def]
    pre = _row(paper_rows, "pretrain", "-")
    assert (pre["gpus"], pre["per_device_batch"], pre["accumulation"]) == (8, 32, 16)  # 4096 = 32 × 8 × 16
    assert (_row(paper_rows, "finetune", "vqa")["per_device_batch"], _row(paper_rows, "finetune", "vqa")[
        "accumulation"]) == (32, 2)
    # the estimate sees what 512 per GPU would do: far beyond an 80 GB GPU, and 32 per GPU fits
    unsplit = job_cost(compile_grid(MAIN, "paper", sets=["pretrain.per_device_batch=512"]).jobs[0])
    assert unsplit.peak_mem_gb > 200 and pre["peak_mem_gb"] < 80


def test_time_limit_warning_names_the_requeues_needed() -> None:
    job = compile_grid(MAIN, "paper", sets=["resources.time_min=600", "resources.requeues=2"]).jobs[0]
    warning = time_warning(job, job_cost(job))
    assert warning is not None and "> time_min 600" in warning and "raise resources.requeues" in warning
    job = compile_grid(MAIN, "paper", sets=["resources.time_min=100000"]).jobs[0]
    assert time_warning(job, job_cost(job)) is None


def test_plan_prints_memory_and_warnings(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["plan", str(MAIN), "--profile", "paper", "--set", "resources.time_min=600"]) == 0
    out = capsys.readouterr().out
    assert "mem/GPU" in out and "32×16" in out and "warning:" in out and "time_min 600" in out
    assert main(["plan", str(MAIN), "--profile", "paper", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert all(r["peak_mem_gb"] > 0 for r in rows)
