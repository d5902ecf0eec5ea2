"""One prepared rehearsal folder per checkout (under the test cache), shared by the rehearsal tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def rehearsal_root() -> Path:
    from harness.rehearsal.prepare import default_root, is_ready, prepare

    root = default_root()
    if not is_ready(root):
        prepare(root, log=False)
    return root
