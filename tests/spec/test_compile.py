"""Grid compiler: every shipped grid compiles under every profile; run ids are stable and
content-addressed; identical pre-training is shared; the golden job list holds."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.spec.cells import run_id
from harness.spec.compile import compile_grid
from harness.spec.document import load_document
from harness.spec.runs import SpecConflict, read_spec, write_spec

ROOT = Path(__file__).resolve().parents[2]
GRIDS = sorted((ROOT / "grids").glob("*.yaml"))
HERE = Path(__file__).parent
GOLDEN = HERE / "golden" / "text_encoders_local.json"


def _profiles(path: Path) -> list[str | None]:
    return sorted(load_document(path).data.get("profiles") or {}) or [None]


@pytest.mark.parametrize(
    ("path", "profile"),
    [(p, prof) for p in GRIDS for prof in _profiles(p)],
    ids=[f"{p.stem}-{prof}" for p in GRIDS for prof in _profiles(p)],
)
def test_every_shipped_grid_compiles(path: Path, profile: str | None) -> None:
    grid = compile_grid(path, profile)
    assert grid.jobs
    ids = [j.run_id for j in grid.jobs]
    assert len(ids) == len(set(ids))
    assert all(run_id(j.identity()) == j.run_id for j in grid.jobs)
    known = set(ids)
    assert all(j.depends_on in known for j in grid.jobs if j.depends_on)


def test_every_shipped_grid_has_local_and_paper_profiles() -> None:
    for path in GRIDS:
        profiles = _profiles(path)
        assert "local" in profiles and "paper" in profiles, path.name


def _golden_view(grid) -> list[dict]:  # type: ignore[no-untyped-def]
    return [{"run_id": j.run_id, "stage": j.stage, "task": j.task, "seed": j.seed, "factors": j.factors,
             "depends_on": j.depends_on} for j in grid.jobs]


def test_golden_compiled_job_list() -> None:
    """Re-record after an intended change: HARNESS_RERECORD=1 pytest tests/spec/test_compile.py"""
    view = _golden_view(compile_grid(ROOT / "grids" / "text_encoders.yaml", "local"))
    if os.environ.get("HARNESS_RERECORD"):
        GOLDEN.write_text(json.dumps(view, indent=1) + "\n")
    assert view == json.loads(GOLDEN.read_text()), "compiled jobs changed: re-record if intended (see docstring)"


def test_identical_pretraining_is_shared() -> None:
    grid = compile_grid(HERE / "grids" / "shared_pretrain.yaml")
    pre = [j for j in grid.jobs if j.stage == "pretrain"]
    fine = [j for j in grid.jobs if j.stage == "finetune"]
    # cells: 2 resolutions × 2 fusions × 3 lr pairs − 2 excluded (merged × lr 5e-4) = 10
    assert grid.cells == 10
    # pre-training differs by fusion and lr pair (5 combos), not by fine-tuning resolution; × 2 seeds
    assert len(pre) == 5 * 2
    assert all("finetune.vqa.image_size" not in j.factors for j in pre)
    # vqa at two resolutions + retrieval once (retrieval jobs of the two resolution cells are identical)
    assert len(fine) == 5 * 2 * 3
    parents = {j.run_id for j in pre}
    assert all(j.depends_on in parents for j in fine)


def _write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text)
    return path


BASE = "base:\n  optim: {{lr: {lr}, lr_ratio: 5}}\n  finetune: {{vqa: {{steps: 10, batch: 8}}}}\n{extra}"


def test_run_id_stable_under_key_order_number_format_and_display_fields(tmp_path: Path) -> None:
    a = compile_grid(_write(tmp_path, "a.yaml", BASE.format(lr="1.0e-5", extra="")))
    b = compile_grid(_write(tmp_path, "b.yaml", (
        "report: {title: other}\ndescription: reordered\n"
        "base:\n  finetune: {vqa: {batch: 8, steps: 10, eval_every: 5}}\n  optim: {lr_ratio: 5.0, lr: 0.00001}\n"
        "  resources: {time_min: 999, mem_gb: 3}\n")))
    c = compile_grid(_write(tmp_path, "c.yaml", BASE.format(lr="2.0e-5", extra="")))
    assert a.jobs[0].run_id == b.jobs[0].run_id
    assert a.jobs[0].run_id != c.jobs[0].run_id


def test_seed_and_precision_change_the_run_id(tmp_path: Path) -> None:
    grid = compile_grid(_write(tmp_path, "s.yaml", BASE.format(lr="1.0e-5", extra="seeds: 2\n")))
    assert grid.jobs[0].run_id != grid.jobs[1].run_id
    bf16 = compile_grid(grid.path, sets=["train.precision=bf16"])
    assert bf16.jobs[0].run_id not in {j.run_id for j in grid.jobs}


def test_speed_settings_leave_the_run_id_alone(tmp_path: Path) -> None:
    grid = compile_grid(_write(tmp_path, "s.yaml", BASE.format(lr="1.0e-5", extra="")))
    fast = compile_grid(grid.path, sets=["train.compile=true", "train.activation_checkpointing=true"])
    assert fast.jobs[0].experiment.train.compile is True and fast.jobs[0].experiment.train.activation_checkpointing
    assert fast.jobs[0].run_id == grid.jobs[0].run_id


def test_extends_profiles_sets_and_only(tmp_path: Path) -> None:
    _write(tmp_path, "parent.yaml", BASE.format(lr="1.0e-5", extra=(
        "factors:\n  model.text: [bert, roberta, electra]\n"
        "profiles:\n  local: {seeds: 2, base: {model: {scale: tiny}}}\n  paper: {seeds: 1}\n")))
    child = _write(tmp_path, "child.yaml", "extends: parent.yaml\nbase:\n  optim: {lr: 3.0e-5}\n")
    grid = compile_grid(child)
    assert grid.name == "child" and grid.profile == "local"
    assert len(grid.jobs) == 3 * 2
    assert all(j.experiment.optim.lr == 3e-5 and j.experiment.model.scale == "tiny" for j in grid.jobs)
    paper = compile_grid(child, "paper", sets=["optim.warmup_ratio=0.2"], only=["model.text=bert",
                                                                            "model.text=electra"])
    assert [j.factors["model.text"] for j in paper.jobs] == ["bert", "electra"]
    assert all(j.experiment.optim.warmup_ratio == 0.2 and j.experiment.model.scale == "paper" for j in paper.jobs)


def test_level_mappings_set_several_keys(tmp_path: Path) -> None:
    grid = compile_grid(_write(tmp_path, "m.yaml", BASE.format(lr="1.0e-5", extra=(
        "factors:\n  lr:\n    same-lr: {optim.lr_ratio: 1, optim.head_mult: 1}\n"
        "    larger-lr: {optim.lr_ratio: 5, optim.head_mult: 5}\n"))))
    by_label = {j.factors["lr"]: j.experiment.optim for j in grid.jobs}
    assert (by_label["same-lr"].lr_ratio, by_label["same-lr"].head_mult) == (1, 1)
    assert (by_label["larger-lr"].lr_ratio, by_label["larger-lr"].head_mult) == (5, 5)


def test_stored_spec_conflict_is_an_error(tmp_path: Path) -> None:
    grid = compile_grid(_write(tmp_path, "r.yaml", BASE.format(lr="1.0e-5", extra="")))
    job = grid.jobs[0]
    path = write_spec(job, tmp_path / "results")
    assert read_spec(path.parent).run_id == job.run_id
    assert write_spec(job, tmp_path / "results") == path  # same spec: fine
    stored = json.loads(path.read_text())
    stored["identity"]["seed"] = 99
    path.write_text(json.dumps(stored))
    with pytest.raises(SpecConflict):
        write_spec(job, tmp_path / "results")


def test_relative_data_root_and_weights_dir_become_absolute_at_compile(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Jobs run in other working directories (a Slurm node, a pool worker): the roots they read are the
    ones the submitting shell meant."""
    monkeypatch.chdir(tmp_path)
    grid = compile_grid(ROOT / "grids" / "main.yaml", "paper",
                        sets=["data.root=arrow/meter", "model.weights_dir=~/w"])
    data, model = grid.jobs[0].experiment.data, grid.jobs[0].experiment.model
    assert data.root == str(tmp_path / "arrow" / "meter")
    assert model.weights_dir == str(Path.home() / "w")
    assert compile_grid(ROOT / "grids" / "main.yaml", "paper",
                        sets=[f"data.root={tmp_path}"]).jobs[0].experiment.data.root == str(tmp_path)
