"""Issue 13, defects 1–5, 9, 13, 14: inputs a careless or hostile user types are refused cleanly
(exit 2, file and key named, no traceback), and every file of a `validate` call is checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main

GOOD = Path("grids/text_encoders.yaml")
# A small valid grid the defects below are written into.
BASE = """name: tiny
base:
  model: {scale: tiny, hidden: 32, heads: 2, fusion_layers: 1}
  finetune: {vqa: {steps: 2, batch: 4, image_size: 32}}
  data: {source: synthetic}
"""


def _validate(tmp_path: Path, text: str | bytes, capsys: pytest.CaptureFixture[str],
              name: str = "bad.yaml") -> str:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    code = main(["validate", str(path)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    assert name in err
    return err


def test_exponential_alias_bomb_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    err = _validate(tmp_path, "\n".join(lines) + "\n", capsys)
    assert "expands to more than" in err


def test_recursive_alias_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _validate(tmp_path, "base: &r [*r]\n", capsys)
    assert "nested deeper than" in err and "base" in err


def test_not_utf8_is_refused_and_the_other_files_are_still_checked(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("name: x\ndescription: caf\xe9\n".encode("latin-1"))
    code = main(["validate", str(GOOD), str(bad), "grids/objectives.yaml"])
    out, err = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in err
    assert "latin1.yaml:2: not UTF-8" in err
    assert "ok   grids/objectives.yaml" in out  # the file after the bad one was checked too
    assert "3 files checked: 2 ok, 1 failed" in err


@pytest.mark.parametrize(("edit", "needle"), [
    ("seeds: 1000000000", "seeds: expected a count from 1 to 1000"),
    ("seeds: [0, 4294967296]", "seed 4294967296 is outside [0, 2**32)"),
    ("seeds: [-1]", "seed -1 is outside [0, 2**32)"),
    ("seeds: true", "seeds: expected a count"),
])
def test_seed_bounds(tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: str, needle: str) -> None:
    assert needle in _validate(tmp_path, BASE + edit + "\n", capsys)


@pytest.mark.parametrize(("section", "needle"), [
    ("  optim: {lr: .inf}", "base.optim.lr: Input should be a finite number"),
    ("  optim: {lr: .nan}", "base.optim.lr: Input should be a finite number"),
    ("  resources: {mem_gb: 1e400}", "base.resources.mem_gb: Input should be a finite number"),
    ("  pretrain: {steps: true, objectives: [mlm]}",
     "base.pretrain.steps: expected a whole number, got true (a boolean)"),
    ("  pretrain: {image_size: '64', objectives: [mlm]}",
     "base.pretrain.image_size: expected a whole number, got the string '64'"),
    ("  optim: {lr: '1e-5'}", "base.optim.lr: expected a number, got the string '1e-5'"),
    ("  train: {log_every: 99999999999}", "base.train.log_every: 99999999999 is out of range"),
    ("  optim: {betas: [0.9, yes]}", "base.optim.betas: expected a number, got true"),
])
def test_numbers_are_finite_bounded_and_never_coerced(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      section: str, needle: str) -> None:
    assert needle in _validate(tmp_path, BASE + section + "\n", capsys)


def test_yaml_12_exponent_floats_are_numbers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(BASE + "  optim: {lr: 2e-5}\n")
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("value", [".inf", "1e400", "-.inf", ".nan"])
def test_set_refuses_non_finite(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(GOOD), "--set", f"optim.lr={value}"]) == 2
    err = capsys.readouterr().err
    assert "optim.lr: Input should be a finite number" in err and "Traceback" not in err


@pytest.mark.parametrize("name", ["../../x", "a/b", ".", "..", "x;rm -rf ~", "$(id)", "a b", "", "-x"])
def test_unsafe_grid_names_are_refused_with_the_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     name: str) -> None:
    err = _validate(tmp_path, BASE.replace("name: tiny", f"name: {json.dumps(name)}"), capsys)
    assert "name:" in err and "letters, digits" in err


def test_unsafe_file_name_as_grid_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _validate(tmp_path, BASE.replace("name: tiny\n", ""), capsys, name="my grid.yaml")
    assert "comes from the file name" in err


def test_unsafe_name_writes_nothing_outside_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    grid = tmp_path / "g.yaml"
    grid.write_text(BASE.replace("name: tiny", "name: ../../escaped"))
    results = tmp_path / "deep" / "results"
    assert main(["report", str(grid), "--results", str(results)]) == 2
    assert not (tmp_path / "escaped").exists() and not results.exists()


@pytest.mark.parametrize(("text", "needle"), [
    ("base: !!python/object/apply:os.system [echo hi]\n", "python/object/apply:os.system' is not allowed"),
    ("base: !!python/object:os.system {a: 1}\n", "is not allowed; write a plain mapping"),
    ("base: !!set {a: null}\n", "'tag:yaml.org,2002:set' is not allowed"),
    ("seeds: !!binary aGVsbG8=\n", "seeds: YAML tag/type 'binary' is not allowed"),
    ("d: &d {a: 1}\nbase:\n  <<: *d\n", "merge keys ('<<') are not supported"),
    ("extends: .\n", "a folder, not a grid file"),
])
def test_tags_merge_keys_and_extends_dot(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                                         needle: str) -> None:
    assert needle in _validate(tmp_path, text, capsys)


def test_document_size_is_bounded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "larger than 1024 KiB" in _validate(tmp_path, "# " + "x" * (1 << 20) + "\n", capsys)


def test_corrupt_spec_of_a_job_to_run_is_rewritten(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.spec.compile import compile_grid
    from harness.spec.runs import read_spec, write_spec

    job = compile_grid(GOOD).jobs[0]
    folder = tmp_path / "runs" / job.run_id
    folder.mkdir(parents=True)
    (folder / "spec.json").write_text('{"identity": {"trunc')
    write_spec(job, tmp_path)
    assert read_spec(folder).run_id == job.run_id
    assert "unreadable" in capsys.readouterr().err


def test_spec_conflict_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.spec.compile import compile_grid

    monkeypatch.setenv("HARNESS_JOB_FN", "builtins:print")  # should the check break: train nothing
    job = compile_grid(GOOD, only=["model.text=bert"]).jobs[0]
    folder = tmp_path / "runs" / job.run_id
    folder.mkdir(parents=True)
    (folder / "spec.json").write_text(json.dumps({"identity": {"other": 1}, "job": {}}))
    code = main(["run", str(GOOD), "--results", str(tmp_path), "--only", "model.text=bert"])
    err = capsys.readouterr().err
    assert code == 2 and "holds a different spec" in err and "Traceback" not in err


@pytest.mark.parametrize("sample", ["0", "-5", "x"])
def test_data_check_sample_must_be_positive(tmp_path: Path, capsys: pytest.CaptureFixture[str], sample: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "check", str(tmp_path), "--sample", sample])
    assert exit_info.value.code == 2
    assert "expected a whole number ≥ 1" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["plan", str(GOOD)], ["status", str(GOOD)], ["ls"]])
def test_output_into_a_closed_pipe_is_quiet(tmp_path: Path, argv: list[str]) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader (say `head`) is gone before the first line
    env = {**os.environ, "HARNESS_RESULTS": str(tmp_path)}
    code = "import sys; from harness.cli import main; sys.exit(main())"
    proc = subprocess.run([sys.executable, "-c", code, *argv], stdout=write_end, stderr=subprocess.PIPE,
                          env=env, timeout=120, text=True)
    os.close(write_end)
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
    assert proc.returncode == 141
