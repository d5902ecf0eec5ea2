"""A result computed from other generated inputs (another tiny zoo, another synthetic world) is stale:
`harness status` says so, and `harness run` trains it afresh, keeping the old files aside."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.data import synthetic_tasks
from harness.models.provenance import generated_inputs, stale_note, synthetic_digest
from harness.paths import run_dir
from harness.spec.compile import compile_grid
from harness.store import Store

GRID = """\
name: stale_inputs
base:
  model: {scale: tiny, vision: clip-vit-224/32, text: bert, hidden: 16, heads: 2, fusion_layers: 1, max_text_len: 8}
  data: {source: synthetic, synthetic: {train_images: 16, eval_images: 8}}
  finetune:
    vqa: {steps: 4, batch: 4, image_size: 32, dataset: synthetic, eval_splits: [test]}
  train: {checkpoint_every: 2, log_every: 2}
  resources: {threads: 1}
factors:
  model.fusion: [co-attention]
seeds: 1
"""


def _result(results: Path, run_id: str) -> dict:
    return json.loads((run_dir(results, run_id) / "result.json").read_text())


@pytest.mark.slow
def test_a_result_from_another_zoo_is_stale_and_trained_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HARNESS_ZOO_STEPS", "2")  # part of the zoo's recipe hash: 3 names another zoo
    grid, results = tmp_path / "stale_inputs.yaml", tmp_path / "results"
    grid.write_text(GRID)
    (job,) = compile_grid(grid).jobs
    assert main(["run", str(grid), "--results", str(results)]) == 0
    first = _result(results, job.run_id)
    assert set(first["inputs"]) == {"zoo", "synthetic"}
    assert main(["run", str(grid), "--results", str(results)]) == 0
    assert "nothing to run" in capsys.readouterr().out

    monkeypatch.setenv("HARNESS_ZOO_STEPS", "3")  # what an upgrade that changes the zoo's recipe does
    assert main(["status", str(grid), "--results", str(results)]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith(job.short_id))
    assert "stale" in line and f"the tiny zoo was {first['inputs']['zoo']}" in out
    assert main(["report", str(grid), "--results", str(results), "--no-figures"]) == 0
    assert "1 run(s) in this table are stale: computed with other generated inputs" in capsys.readouterr().err

    assert main(["run", str(grid), "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert "1 to run, 0 already done" in out and "1 stale run(s) start afresh" in out
    second = _result(results, job.run_id)
    assert second["inputs"]["zoo"] != first["inputs"]["zoo"]
    assert second["inputs"]["synthetic"] == first["inputs"]["synthetic"]
    assert second["resumed_from"] is None and second["stats"]["steps_run"] == 4  # afresh, not from step 4
    (aside,) = (run_dir(results, job.run_id) / "superseded").iterdir()
    assert json.loads((aside / "result.json").read_text()) == first  # kept, not deleted
    assert (aside / "model.safetensors").is_file() and (aside / "checkpoints").is_dir()
    assert Store(results).runs().set_index("run_id").loc[job.run_id, "status"] == "done"
    assert main(["run", str(grid), "--results", str(results)]) == 0
    assert "nothing to run" in capsys.readouterr().out
    assert main(["report", str(grid), "--results", str(results), "--no-figures"]) == 0
    assert "stale" not in capsys.readouterr().err


def test_a_changed_question_wording_changes_the_synthetic_stamp(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    grid = tmp_path / "stale_inputs.yaml"
    grid.write_text(GRID.replace("scale: tiny,", "scale: tiny, weights: random,"))
    (job,) = compile_grid(grid).jobs
    recorded = generated_inputs(job)
    assert set(recorded) == {"synthetic"}  # random weights: no zoo to stamp
    assert stale_note(job, recorded) is None
    assert stale_note(job, None) is None and stale_note(job, {}) is None  # results written before stamps

    def reworded(scene, rng):  # type: ignore[no-untyped-def]
        return "how many shapes can you see?", str(scene.count), "count"

    synthetic_digest.cache_clear()
    monkeypatch.setitem(synthetic_tasks.QUESTION_TYPES, "count", (reworded, 0.4))
    try:
        note = stale_note(job, recorded)
    finally:
        synthetic_digest.cache_clear()
    assert note is not None and f"the synthetic data was {recorded['synthetic']}" in note


def test_results_of_the_paper_path_carry_no_generated_inputs(tmp_path: Path) -> None:
    grid = tmp_path / "stale_inputs.yaml"
    grid.write_text(GRID.replace("scale: tiny,", "scale: paper,").replace("{source: synthetic, ",
                                                                         "{source: arrow, root: data, "))
    (job,) = compile_grid(grid).jobs
    assert generated_inputs(job) == {}


def test_a_search_trial_retrains_a_stale_run_instead_of_reusing_it(tmp_path: Path) -> None:
    from harness.search.worker import _retire_if_stale
    from harness.spec.runs import write_spec
    from harness.store.runrecord import record_run

    grid, results = tmp_path / "stale_inputs.yaml", tmp_path / "results"
    grid.write_text(GRID.replace("scale: tiny,", "scale: tiny, weights: random,"))
    (job,) = compile_grid(grid).jobs
    folder = run_dir(results, job.run_id)
    write_spec(job, results)
    record_run(results, {"spec": job, "status": "done"})
    (folder / "result.json").write_text(json.dumps({"status": "done", "inputs": generated_inputs(job)}))
    assert not _retire_if_stale(job, results)  # same inputs: the search reuses the result
    assert (folder / "result.json").is_file()

    (folder / "result.json").write_text(json.dumps({"status": "done", "inputs": {"synthetic": "0ld"}}))
    assert _retire_if_stale(job, results)
    assert not (folder / "result.json").exists() and (folder / "spec.json").is_file()
    assert Store(results).runs().set_index("run_id").loc[job.run_id, "status"] == "stale"
