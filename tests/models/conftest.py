"""Fixtures of the model tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture
def private_zoo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny zoo of this test's own (2 training steps per entry), in a temporary cache."""
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HARNESS_ZOO_STEPS", "2")
    torch.set_num_threads(1)
    return tmp_path / "cache"
