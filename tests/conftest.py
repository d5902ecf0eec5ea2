"""Test-wide settings: one torch thread per process, a shared cache for the tiny zoo."""

from __future__ import annotations

import os
from pathlib import Path

# Before anything imports torch: small models run fastest, and tests in parallel processes
# don't oversubscribe the two cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The tiny zoo and synthetic data are built once per checkout and reused by every test.
os.environ.setdefault("HARNESS_CACHE", str(Path(__file__).resolve().parents[1] / ".cache" / "harness"))


# ---- SLURM tests: none may skip silently in CI, and the summary says how many ran ------------------

import pytest  # noqa: E402 - after the environment defaults above, which must precede any torch import

_SLURM_OUTCOMES: dict[str, str] = {}  # test id → passed | failed | skipped | skip-failed (skipped under CI)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Under CI=true a skipped SLURM test is a failure: CI must not go green without the real cluster."""
    outcome = yield
    report = outcome.get_result()
    if item.get_closest_marker("slurm") is None:
        return
    kind = report.outcome
    if report.skipped and _in_ci():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome, kind = "failed", "skip-failed"
        report.longrepr = f"CI=true: a SLURM test may not skip ({reason})"
    # A failure or skip in any phase (setup, call, teardown) is the test's outcome.
    first_word = _SLURM_OUTCOMES.get(item.nodeid) in (None, "passed")
    if first_word and (report.when == "call" or report.outcome != "passed"):
        _SLURM_OUTCOMES[item.nodeid] = kind


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line before pytest's own closing line: how many SLURM tests ran against the real cluster."""
    if not _SLURM_OUTCOMES and not _in_ci():
        return
    counts = {kind: list(_SLURM_OUTCOMES.values()).count(kind)
              for kind in ("passed", "failed", "skipped", "skip-failed")}
    line = (f"SLURM tests: {counts['passed'] + counts['failed']} ran on the real cluster "
            f"({counts['passed']} passed, {counts['failed']} failed), {counts['skipped'] + counts['skip-failed']} "
            "skipped")
    if counts["skip-failed"]:
        line += f" ({counts['skip-failed']} counted as failures: CI=true)"
    terminalreporter.write_line(line)


# ---- the rehearsal: one prepared folder per checkout (under the test cache), shared by its tests ------------

@pytest.fixture(scope="session")
def rehearsal_root() -> Path:
    from harness.rehearsal.prepare import default_root, is_ready, prepare

    root = default_root()
    if not is_ready(root):
        prepare(root, log=False)
    return root
