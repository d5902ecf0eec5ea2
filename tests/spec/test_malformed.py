"""Every malformed grid under tests/spec/malformed/ fails validation with exit 2, no traceback,
and a message that names the file, the key and what was expected (first two comment lines)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main

MALFORMED = sorted((Path(__file__).parent / "malformed").glob("*.yaml"))


def _expectations(path: Path) -> tuple[str, str]:
    lines = path.read_text().splitlines()
    expect = lines[0].removeprefix("# expect:").strip()
    key = lines[1].removeprefix("# key:").strip()
    return expect, key


def test_there_are_enough_malformed_grids() -> None:
    assert len(MALFORMED) >= 25


@pytest.mark.parametrize("path", MALFORMED, ids=[p.stem for p in MALFORMED])
def test_malformed_grid_is_rejected_clearly(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expect, key = _expectations(path)
    code = main(["validate", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    assert path.name in err
    assert expect in err, err
    if key:
        assert f" {key}:" in err or f" {key}" in err, err


def test_all_problems_of_a_file_are_reported_together(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    grid = tmp_path / "many.yaml"
    grid.write_text(
        "base:\n"
        "  model: {text: robrta}\n"
        "  optim: {lr: -1}\n"
        "  finetune: {vqa: {steps: 10}}\n"
        "factors:\n"
        "  model.vision: []\n"
        "seeds: 0\n"
    )
    assert main(["plan", str(grid)]) == 2
    err = capsys.readouterr().err
    assert "4 problems" in err
    for needle in ("many.yaml:2: base.model.text", "many.yaml:3: base.optim.lr", "many.yaml:6: factors.model.vision",
                   "many.yaml:7: seeds"):
        assert needle in err, err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--set", "optim.lrr=1e-4"], "did you mean 'lr'?"),
        (["--set", "optim.lr"], "expected KEY=VALUE"),
        (["--set", "model.text.x=1"], "is a value, not a section"),
        (["--set", "model.text=bert"], "use --only model.text=LEVEL"),
        (["--only", "model.txt=bert"], "did you mean 'model.text'?"),
        (["--only", "model.text=bret"], "did you mean 'bert'?"),
        (["--profile", "papr"], "unknown profile 'papr'; did you mean 'paper'?"),
        (["--set", "optim.lr=fast"], "valid number"),
    ],
)
def test_bad_command_line_overrides(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "grids/text_encoders.yaml", *argv]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err, err


def test_missing_file_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "grids/no_such_grid.yaml"]) == 2
    assert "no_such_grid.yaml" in capsys.readouterr().err
