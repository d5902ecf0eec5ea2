"""--rehearse points HF_HUB_CACHE at the rehearsal hub inside a process that may have imported huggingface_hub
already (a test session, a search worker): the preflight must read the cache the environment names now, not
the one huggingface_hub captured at import (it reported every rehearsal weight missing)."""

from __future__ import annotations

from pathlib import Path

import huggingface_hub.constants  # noqa: F401 - imported before --rehearse changes HF_HUB_CACHE, on purpose
import pytest

from harness.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_rehearse_dry_run_finds_the_hub_after_huggingface_hub_was_imported(
        rehearsal_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HARNESS_REHEARSAL", str(rehearsal_root))
    for key in ("HF_HUB_CACHE", "HF_HUB_OFFLINE"):  # --rehearse sets them; restored afterwards
        monkeypatch.setenv(key, "")
    code = main(["run", str(ROOT / "grids" / "fusion_decoder.yaml"), "--profile", "paper", "--rehearse",
                 "--dry-run", "--results", str(tmp_path / "results"), "--set", "resources.gpus_per_node=0"])
    captured = capsys.readouterr()
    assert "weight(s) missing" not in captured.err
    assert code == 0 and "would run" in captured.out
