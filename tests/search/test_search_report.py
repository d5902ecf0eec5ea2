"""The search report from a hand-made study: best trial, importances guard, plots, store rows."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import yaml
from search_fakes import GRID

from harness.search.config import parse_search
from harness.search.report import STORE_SPLIT, store_rows, trial_rows, write_report
from harness.search.study import ERROR, make_pruner, make_sampler


def _spec():  # type: ignore[no-untyped-def]
    return parse_search(yaml.safe_load(GRID)["search"])


def _study(values: list[float | None], pruned_at: dict[int, float] | None = None) -> optuna.Study:
    """Trials with the given final values (None: failed); ``pruned_at``: number → last reported value."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", study_name="hand")
    for i, value in enumerate(values):
        study.enqueue_trial({"lr": 10 ** (-4 + i * 0.3), "lr_ratio": 1.5 + i})
        trial = study.ask()
        trial.suggest_float("lr", 1e-5, 1e-1, log=True)
        trial.suggest_float("lr_ratio", 1, 50, log=True)
        trial.set_user_attr("run_id", f"run{i:02d}")
        if pruned_at and i in pruned_at:
            trial.report(pruned_at[i], 10)
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        elif value is None:
            trial.set_user_attr(ERROR, "RuntimeError: boom")
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            trial.report(value / 2, 10)
            study.tell(trial, value)
    return study


@pytest.mark.slow
def test_report_names_the_best_trial_and_writes_every_file(tmp_path: Path) -> None:
    study = _study([0.2, 0.7, None, 0.5, 0.1], pruned_at={4: 0.01})
    out = write_report(study, _spec(), tmp_path, "toy")
    best = json.loads((out / "best.json").read_text())
    assert best["best"]["number"] == 1 and best["best"]["run_id"] == "run01"
    assert best["best"]["paths"] == {"lr": "optim.lr", "lr_ratio": "optim.lr_ratio"}
    assert best["trials"] == {"COMPLETE": 3, "FAIL": 1, "PRUNED": 1}
    summary = (out / "summary.md").read_text()
    assert "## Best: trial 1, value 0.7" in summary and "pruned at step 10" in summary and "boom" in summary
    lines = (out / "trials.csv").read_text().splitlines()
    assert lines[0].startswith("number,state,value,lr,lr_ratio") and len(lines) == 6
    for name in ("history.png", "slice.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"


def test_importances_need_two_complete_trials(tmp_path: Path) -> None:
    out = write_report(_study([0.3, None]), _spec(), tmp_path, "toy")
    best = json.loads((out / "best.json").read_text())
    assert best["importances"] == {} and "at least 2 complete trials (have 1)" in best["importances_note"]
    assert "Not available: needs at least 2" in (out / "summary.md").read_text()


def test_report_of_an_empty_study(tmp_path: Path) -> None:
    out = write_report(_study([None]), _spec(), tmp_path, "toy")
    assert json.loads((out / "best.json").read_text())["best"] is None
    assert "No complete trial yet." in (out / "summary.md").read_text()


@pytest.mark.slow
def test_store_rows_one_per_finished_trial_written_once(tmp_path: Path) -> None:
    from harness.store import Store

    study = _study([0.2, 0.7, None], pruned_at={2: 0.05})
    rows = store_rows(trial_rows(study), _spec())
    assert rows == {
        "run00": [{"stage": "finetune", "task": "vqa", "split": STORE_SPLIT, "metric": "vqa_score", "value": 0.2,
                   "step": 0}],
        "run01": [{"stage": "finetune", "task": "vqa", "split": STORE_SPLIT, "metric": "vqa_score", "value": 0.7,
                   "step": 1}],
        "run02": [{"stage": "finetune", "task": "vqa", "split": STORE_SPLIT, "metric": "vqa_score:pruned",
                   "value": 0.05, "step": 2}],
    }
    write_report(study, _spec(), tmp_path, "toy")
    write_report(study, _spec(), tmp_path, "toy")  # a second report adds no duplicate rows
    stored = Store(tmp_path).metrics()
    assert sorted(stored["run_id"]) == ["run00", "run01", "run02"]


@pytest.mark.parametrize("name", ["tpe", "random", "cmaes"])
def test_samplers_and_pruners_build(name: str) -> None:
    spec = _spec().model_copy(update={"sampler": _spec().sampler.model_copy(update={"name": name})})
    assert type(make_sampler(spec, seed=3)).__name__.lower().startswith(name[:3])
    hyper = _spec().model_copy(update={"pruner": _spec().pruner.model_copy(update={"name": "hyperband"})})
    assert isinstance(make_pruner(hyper), optuna.pruners.HyperbandPruner)
