"""README.md is the truth: its set-up, main-job and test commands exist, and CI runs that test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
CI = (ROOT / ".ci" / "run").read_text()


def _commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_readme_has_setup_main_job_and_test_commands() -> None:
    commands = _commands()
    assert any("pip install" in c for c in commands)
    assert any(re.search(r"harness run grids/text_encoders\.yaml$", c) for c in commands)
    assert any("pytest" in c for c in commands)


def test_ci_runs_the_readme_test_and_setup_commands() -> None:
    commands = _commands()
    test_command = next(c for c in commands if "pytest" in c)
    setup_command = next(c for c in commands if "pip install" in c)
    assert test_command in CI
    assert setup_command in CI


def test_readme_names_every_shipped_grid() -> None:
    for grid in sorted((ROOT / "grids").glob("*.yaml")):
        assert f"grids/{grid.name}" in README, grid.name
