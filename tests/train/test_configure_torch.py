"""A job's torch settings: determinism switched exactly when the job's setting differs from torch's."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from train_jobs import finetune_job

from harness.train.job import _configure_torch


def test_deterministic_set_only_when_it_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Switching determinism imports torch._inductor (seconds of CPU per job), so a job that keeps
    torch's current mode must not call it; a job that needs the other mode still gets it."""
    real, calls = torch.use_deterministic_algorithms, []

    def spy(mode: bool, **kwargs: Any) -> None:
        calls.append(mode)
        real(mode, **kwargs)

    monkeypatch.setattr(torch, "use_deterministic_algorithms", spy)
    threads, before = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    on, off = (finetune_job("vqa", train={"deterministic": d}) for d in (True, False))
    try:
        real(False)
        _configure_torch(off)
        assert calls == [] and not torch.are_deterministic_algorithms_enabled()
        _configure_torch(on)
        _configure_torch(on)
        assert calls == [True] and torch.are_deterministic_algorithms_enabled()
        _configure_torch(off)
        assert calls == [True, False] and not torch.are_deterministic_algorithms_enabled()
    finally:
        real(before)
        torch.set_num_threads(threads)
