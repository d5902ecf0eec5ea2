"""SearchSpec validation, trial → job compilation, and reading metrics (no workers, no torch)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from search_fakes import GRID, write_grid

from harness.search.config import SearchSpec, parse_search
from harness.search.objective import metric_from_eval
from harness.search.trial_jobs import probe_values, trial_jobs, yaml_scalar
from harness.spec.compile import compile_grid, run_id
from harness.spec.errors import GridError
from harness.spec.schema import job_identity


def _raw() -> dict:
    return yaml.safe_load(GRID)["search"]


def test_valid_block_parses_with_shorthands() -> None:
    raw = {**_raw(), "sampler": "random", "pruner": "hyperband"}
    spec = parse_search(raw)
    assert spec.sampler.name == "random" and spec.pruner.name == "hyperband"
    assert spec.objective.metric_name() == "vqa_score"
    assert spec.params["lr"].log and spec.params["lr"].path == "optim.lr"


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"trails": 3}, "search.trails: unknown key; did you mean 'trials'?"),
        ({"params": {"lr": {"path": "optim.lrr", "low": 1e-5, "high": 1e-3}}}, "did you mean 'lr'?"),
        ({"params": {"lr": {"path": "optim.lr", "low": 1e-3, "high": 1e-5}}}, "must be below high"),
        ({"params": {"lr": {"path": "optim.lr", "low": 0.0, "high": 1.0, "log": True}}}, "log: true needs low > 0"),
        ({"params": {"r": {"path": "optim.lr_ratio", "type": "categorical"}}}, "needs a non-empty 'choices'"),
        ({"params": {}}, "at least one parameter"),
        ({"objective": {"task": "vqaa"}}, "did you mean 'vqa'?"),
        ({"sampler": "grid"}, "the grid sampler needs 'step'"),
        ({"sampler": "bayes"}, "search.sampler.name"),
    ],
)
def test_bad_blocks_name_the_key(patch: dict, expected: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_search({**_raw(), **patch})
    assert expected in str(info.value)


def test_cmaes_without_its_package_is_refused_at_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "cmaes" else real(name, *a))
    with pytest.raises(ValueError, match=r"sampler 'cmaes' needs the 'cmaes' package \(pip install cmaes\)"):
        parse_search({**_raw(), "sampler": "cmaes"})


def test_missing_block_is_explained() -> None:
    with pytest.raises(ValueError, match="no 'search:' block"):
        parse_search(None)


def test_grid_sampler_values() -> None:
    spec = SearchSpec.model_validate({**_raw(), "sampler": "grid", "params": {
        "ratio": {"path": "optim.lr_ratio", "type": "categorical", "choices": [1, 5, 10]},
        "layers": {"path": "model.fusion_layers", "type": "int", "low": 1, "high": 3},
        "lr": {"path": "optim.lr", "type": "float", "low": 0.001, "high": 0.003, "step": 0.001}}})
    assert spec.params["layers"].grid_values() == [1, 2, 3]
    assert spec.params["lr"].grid_values() == pytest.approx([0.001, 0.002, 0.003])


@pytest.mark.parametrize("value", [1e-05, 3.0e-4, 2.5, 1e20, 7, 0.1 + 0.2])
def test_yaml_scalar_round_trips(value: float) -> None:
    text = yaml_scalar(value)
    assert yaml.safe_load(text) == value and type(yaml.safe_load(text)) is type(value)


def test_metric_from_eval_shapes() -> None:
    assert metric_from_eval({"val/vqa_score": 0.5}, "val", "vqa_score", "vqa") == 0.5
    assert metric_from_eval({"vqa/val/vqa_score": 0.4}, "val", "vqa_score", "vqa") == 0.4
    assert metric_from_eval({"val": {"vqa_score": 0.3}}, "val", "vqa_score", "vqa") == 0.3
    rows = [{"split": "test", "metric": "vqa_score", "value": 0.1}, {"split": "val", "metric": "vqa_score",
                                                                    "value": 0.2}]
    assert metric_from_eval(rows, "val", "vqa_score", "vqa") == 0.2
    assert metric_from_eval({"test/vqa_score": 0.5}, "val", "vqa_score", "vqa") is None
    assert metric_from_eval({"val/vqa_score": float("nan")}, "val", "vqa_score", "vqa") is None


def test_trial_jobs_have_the_identity_harness_run_gives(tmp_path: Path) -> None:
    grid_path = write_grid(tmp_path)
    spec = parse_search(_raw())
    values = {"lr": 2.0e-5, "lr_ratio": 12.5}
    (job,) = trial_jobs(grid_path, None, spec, values)
    assert job.experiment.optim.lr == 2.0e-5 and job.experiment.optim.lr_ratio == 12.5
    assert job.run_id == run_id(job_identity(job.experiment, "finetune", "vqa", job.seed, None))
    same = compile_grid(grid_path, sets=["optim.lr=2.0e-5", "optim.lr_ratio=12.5"]).jobs[0]
    assert same.run_id == job.run_id


def test_trial_jobs_include_pretraining_first(tmp_path: Path) -> None:
    text = GRID.replace("  finetune:", "  pretrain: {objectives: [mlm, itm], steps: 20, batch: 8, image_size: 32,"
                                       " datasets: [synthetic], zero_shot: null}\n  finetune:")
    grid_path = write_grid(tmp_path, text)
    jobs = trial_jobs(grid_path, None, parse_search(_raw()), probe_values(parse_search(_raw())))
    assert [j.stage for j in jobs] == ["pretrain", "finetune"]
    assert jobs[1].depends_on == jobs[0].run_id


def test_factor_that_sets_a_searched_key_is_refused(tmp_path: Path) -> None:
    grid_path = write_grid(tmp_path, GRID + "factors:\n  optim.lr_ratio: [1, 5]\n")
    with pytest.raises(GridError, match="is set by factor"):
        trial_jobs(grid_path, None, parse_search(_raw()), {"lr": 1e-4, "lr_ratio": 3.0})


def test_search_replaces_the_factors_it_names_and_fixes_its_sets(tmp_path: Path) -> None:
    grid_path = write_grid(tmp_path, GRID + "factors:\n  ratio:\n    low: {optim.lr_ratio: 1, optim.head_mult: 1}\n"
                                           "    high: {optim.lr_ratio: 5, optim.head_mult: 5}\n")
    spec = parse_search({**_raw(), "replaces": ["ratio"], "sets": {"optim.head_mult": 7}})
    jobs = trial_jobs(grid_path, None, spec, {"lr": 1e-4, "lr_ratio": 3.0})
    assert len(jobs) == 1 and "ratio" not in jobs[0].factors
    optim = jobs[0].experiment.optim
    assert (optim.lr, optim.lr_ratio, optim.head_mult) == (1e-4, 3.0, 7.0)
    unknown = parse_search({**_raw(), "replaces": ["rato"]})
    with pytest.raises(GridError, match="no factor 'rato' to replace; did you mean 'ratio'"):
        trial_jobs(grid_path, None, unknown, {"lr": 1e-4, "lr_ratio": 3.0})
    with pytest.raises(ValueError, match="unknown key 'head_mul'"):
        parse_search({**_raw(), "sets": {"optim.head_mul": 7}})


def test_several_cells_are_refused(tmp_path: Path) -> None:
    grid_path = write_grid(tmp_path, GRID + "factors:\n  model.fusion_layers: [1, 2]\n")
    with pytest.raises(ValueError, match="compiles into 2 cells"):
        trial_jobs(grid_path, None, parse_search(_raw()), {"lr": 1e-4, "lr_ratio": 3.0})
    only = trial_jobs(grid_path, None, parse_search(_raw()), {"lr": 1e-4, "lr_ratio": 3.0},
                      only=["model.fusion_layers=2"])
    assert only[0].experiment.model.fusion_layers == 2


def test_compiler_validates_the_search_block(tmp_path: Path) -> None:
    grid_path = write_grid(tmp_path, GRID.replace("trials: 8", "trials: 0"))
    with pytest.raises(GridError, match="trials"):
        compile_grid(grid_path)
