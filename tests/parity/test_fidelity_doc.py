"""docs/fidelity.md: every row names at least one test, and every test it names exists (a renamed or
deleted test breaks this, not the document's claim silently)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "fidelity.md"


def _rows() -> list[list[str]]:
    rows = []
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 5 and cells[0] not in ("component", "---"):
            rows.append(cells)
    return rows


def _defined_tests() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (ROOT / "tests").rglob("test_*.py"):
        names = set(re.findall(r"^def (test_\w+)", path.read_text(), flags=re.M))
        found[str(path.relative_to(ROOT))] = names
    return found


def test_every_row_is_backed_by_existing_tests() -> None:
    rows, defined = _rows(), _defined_tests()
    everywhere = set().union(*defined.values())
    assert len(rows) >= 20
    for component, _meter, _harness, tests, differences in rows:
        names = re.findall(r"(test_\w+)\b(?!\.py)", tests)
        if not names:  # only rows that say they are open and owned elsewhere may lack a test
            assert tests.startswith("—") and "open" in differences, component
            continue
        for path, name in re.findall(r"`(tests/[\w/]+\.py)::(test_\w+)`", tests):
            assert name in defined.get(path, set()), f"{component}: {path}::{name} does not exist"
        for name in names:
            assert name in everywhere, f"{component}: no test named {name}"
