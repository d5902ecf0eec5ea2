"""Identity vs placement: where data and weights live, loader workers, the per-device batch, trackers and
resources never change a run id; the site configuration (harness.toml, $HARNESS_CONFIG, HARNESS_DATA_ROOT,
HARNESS_WEIGHTS_DIR) sets them with the documented precedence; spec.json records both halves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.spec.compile import compile_grid
from harness.spec.errors import GridError
from harness.spec.runs import write_spec
from harness.spec.site import site_values

GRID = """\
name: placed
base:
  model: {scale: tiny, weights: random, hidden: 16, heads: 2, fusion_layers: 1}
  pretrain: {objectives: [mlm, itm], steps: 5, batch: 8, image_size: 32, datasets: [coco], zero_shot: null}
  finetune:
    vqa: {steps: 5, batch: 8, image_size: 32, dataset: vqav2}
  data: {source: arrow, root: /data/a}
factors:
  model.text: [bert, roberta]
seeds: 1
"""

# One entry per placement key: (--set override, where to read it back in the experiment)
PLACEMENT = {
    "data.root": ("data.root=/elsewhere/arrow", lambda e: e.data.root),
    "data.num_workers": ("data.num_workers=7", lambda e: e.data.num_workers),
    "model.weights_dir": ("model.weights_dir=/weights", lambda e: e.model.weights_dir),
    "pretrain.per_device_batch": ("pretrain.per_device_batch=2", lambda e: e.pretrain.per_device_batch),
    "finetune.per_device_batch": ("finetune.vqa.per_device_batch=4", lambda e: e.finetune["vqa"].per_device_batch),
    "resources": ("resources.gpus_per_node=8", lambda e: e.resources.gpus_per_node),
}


@pytest.fixture
def grid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("HARNESS_CONFIG", "HARNESS_DATA_ROOT", "HARNESS_WEIGHTS_DIR"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "placed.yaml"
    path.write_text(GRID)
    return path


def _ids(path: Path, sets: list[str] = (), **kw) -> list[str]:  # type: ignore[assignment]
    return [j.run_id for j in compile_grid(path, sets=sets, **kw).jobs]


@pytest.mark.parametrize("key", sorted(PLACEMENT))
def test_placement_key_keeps_run_ids(grid: Path, key: str) -> None:
    override, read = PLACEMENT[key]
    before = compile_grid(grid).jobs
    after = compile_grid(grid, sets=[override]).jobs
    assert [read(j.experiment) for j in after] != [read(j.experiment) for j in before]  # it did change
    assert [j.run_id for j in after] == [j.run_id for j in before]


def test_trackers_keep_run_ids(grid: Path) -> None:
    """Validation wants the tracker's package installed; the identity is checked on the spec directly."""
    from harness.spec.cells import run_id

    for job in compile_grid(grid).jobs:
        exp = job.experiment
        tracked = exp.model_copy(update={"train": exp.train.model_copy(update={"trackers": ("wandb", "mlflow")})})
        assert run_id(job.model_copy(update={"experiment": tracked}).identity()) == job.run_id


def test_identity_keys_still_change_run_ids(grid: Path) -> None:
    base = _ids(grid)
    for override in ("optim.lr=3e-5", "pretrain.batch=16", "data.randaugment=true", "train.precision=bf16"):
        assert set(_ids(grid, [override])).isdisjoint(base[:2]), override


def test_site_file_env_and_set_precedence(grid: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "harness.toml").write_text('[data]\nroot = "site/arrow"\nnum_workers = 6\n'
                                           '[model]\nweights_dir = "/site/weights"\n'
                                           '[finetune."*"]\nper_device_batch = 2\n')
    exp = compile_grid(grid, site=site_values()).jobs[-1].experiment
    assert exp.data.root == str(tmp_path / "site" / "arrow")  # relative to the file
    assert (exp.data.num_workers, exp.model.weights_dir, exp.finetune["vqa"].per_device_batch) == (
        6, "/site/weights", 2)
    monkeypatch.setenv("HARNESS_DATA_ROOT", "/env/arrow")
    assert compile_grid(grid, site=site_values()).jobs[0].experiment.data.root == "/env/arrow"
    exp = compile_grid(grid, sets=["data.root=/cli/arrow"], site=site_values()).jobs[0].experiment
    assert exp.data.root == "/cli/arrow"
    assert _ids(grid, site=site_values()) == _ids(grid)


def test_harness_config_names_the_file(grid: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "cluster.toml"
    other.write_text('[model]\nweights_dir = "/cluster/weights"\n')
    monkeypatch.setenv("HARNESS_CONFIG", str(other))
    assert compile_grid(grid, site=site_values()).jobs[0].experiment.model.weights_dir == "/cluster/weights"
    monkeypatch.setenv("HARNESS_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(GridError, match="not a file"):
        site_values()


def test_site_file_refuses_identity_keys(grid: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "harness.toml").write_text('[optim]\nlr = 1e-3\n[data]\nroots = "/x"\n')
    assert main(["plan", str(grid)]) == 2
    err = capsys.readouterr().err
    assert "optim.lr" in err and "not a placement key" in err and "did you mean 'data.root'" in err


def test_spec_json_records_identity_and_placement(grid: Path, tmp_path: Path) -> None:
    job = compile_grid(grid).jobs[0]
    path = write_spec(job, tmp_path / "results")
    stored = json.loads(path.read_text())
    assert stored["placement"]["data"]["root"] == "/data/a" and "root" not in stored["identity"]["data"]
    moved = compile_grid(grid, sets=["data.root=/moved"]).jobs[0]
    assert moved.run_id == job.run_id
    write_spec(moved, tmp_path / "results")  # same run, new placement: the next attempt reads /moved
    assert json.loads(path.read_text())["job"]["experiment"]["data"]["root"] == "/moved"
