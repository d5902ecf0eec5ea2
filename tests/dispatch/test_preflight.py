"""Preflight: every missing weight and data file of a plan in one message and exit 2 — `--dry-run` included,
nothing written; `harness weights list|check`; `--executor slurm --dry-run` makes the cluster checks the real
submission makes; a failed job's reason is printed whole (not cut at "Looked in:")."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_slurm_profiles import canned_info

from harness.cli import main

ROOT = Path(__file__).resolve().parents[2]
MAIN = str(ROOT / "grids" / "main.yaml")
MISSING = ("text encoder 'roberta' (roberta-base)", "tokenizer 'roberta' (roberta-base)",
           "vision encoder 'clip-vit-224/16'", "vision encoder 'swin-base-384'")


@pytest.fixture
def no_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face / torch hub cache, offline; weights_dir and data root in tmp_path."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HARNESS_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("HARNESS_DATA_ROOT", str(tmp_path / "arrow"))
    monkeypatch.delenv("HARNESS_CONFIG", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "run"])
def test_run_lists_every_missing_weight_at_once_and_exits_2(no_weights: Path, capsys, dry_run: bool) -> None:  # type: ignore[no-untyped-def]
    results = no_weights / "results"
    argv = ["run", MAIN, "--profile", "paper", "--results", str(results)] + (["--dry-run"] if dry_run else [])
    assert main(argv) == 2
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "4 pre-trained weight(s) missing" in text
    for label in MISSING:
        assert label in text
    assert f"hf download roberta-base --local-dir {no_weights / 'weights' / 'roberta'}" in text
    assert "hf download timm/vit_base_patch16_clip_224.openai" in text and "huggingface-cli" not in text
    assert "HARNESS_WEIGHTS_DIR" in text and "[model] weights_dir" in text
    for stem in ("nlvr2_dev.arrow", "nlvr2_test1.arrow", "snli_dev.arrow", "snli_test.arrow", "vg.arrow"):
        assert stem in text  # every split each job reads, in the same message
    assert "asking for 1 node(s) × 8 GPU(s): this machine has no visible GPU" in text
    assert not (results / "runs").exists()  # nothing written, nothing run


def _fake_weights(root: Path) -> None:
    (root / "roberta").mkdir(parents=True)
    (root / "roberta" / "config.json").write_text("{}")
    (root / "roberta" / "tokenizer_config.json").write_text("{}")
    for name in ("clip-vit-224-16", "swin-base-384"):
        (root / name).mkdir()
        (root / name / "model.safetensors").write_bytes(b"")


def test_weights_list_and_check(no_weights: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["weights", "list", MAIN, "--profile", "paper"]) == 0
    out = capsys.readouterr().out
    assert f"vision encoder 'swin-base-384' (swin_base_patch4_window12_384.ms_in22k) → " \
           f"{no_weights / 'weights' / 'swin-base-384'}" in out
    assert "hf download timm/swin_base_patch4_window12_384.ms_in22k" in out and "timm.create_model" in out
    assert main(["weights", "check", MAIN, "--profile", "paper"]) == 2
    assert capsys.readouterr().out.count("[MISSING]") == 4
    _fake_weights(no_weights / "weights")
    assert main(["weights", "check", MAIN, "--profile", "paper"]) == 0
    assert "all 4 present" in capsys.readouterr().out
    assert main(["weights", "list", MAIN]) == 0  # the local profile: the tiny zoo, nothing to fetch
    assert "loads no pre-trained weights" in capsys.readouterr().out


def test_preflight_checklist(no_weights: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    _fake_weights(no_weights / "weights")
    assert main(["preflight", MAIN, "--profile", "paper", "--set", "resources.gpus_per_node=0"]) == 2
    out = capsys.readouterr().out
    assert "[ok]      vision encoder 'swin-base-384'" in out
    assert "[MISSING] nlvr2/test: " in out and "fix the data: point data.root" in out
    assert "[ok]      10 job(s) asking for 1 node(s) × 0 GPU(s)" in out
    # The 15 splits the jobs read: coco, vg, sbu, gcc, f30k train/test, vqav2 train/val/test-dev,
    # nlvr2 train/dev/test, snli-ve train/dev/test.
    assert "preflight: 15 problem(s)" in out
    assert main(["preflight", MAIN]) == 0  # the local profile: synthetic data, tiny zoo, CPU
    assert "preflight: ready" in capsys.readouterr().out


def test_slurm_dry_run_makes_the_cluster_checks(no_weights: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    """Before, `--executor slurm --dry-run` exited 0 for a request the real submission refuses."""
    from harness.dispatch.clusterinfo import ClusterInfo

    monkeypatch.setattr(ClusterInfo, "query", classmethod(lambda cls, timeout_s=20.0: canned_info()))
    profile = no_weights / "cpu.yaml"
    profile.write_text("partition: cpu\n")
    grid = str(ROOT / "grids" / "text_encoders.yaml")
    argv = ["run", grid, "--executor", "slurm", "--cluster", str(profile), "--dry-run",
            "--results", str(no_weights / "results")]
    assert main([*argv, "--set", "resources.gpus_per_node=2"]) == 2
    out = capsys.readouterr().out
    assert "[resources]" in out and "has no GPUs" in out
    assert main(argv) == 0
    assert "would run" in capsys.readouterr().out


def test_run_summary_keeps_the_whole_reason(tmp_path: Path) -> None:
    from harness.dispatch.state import error_reason

    reason = ("pre-trained weights for text encoder 'roberta' (roberta-base) were not found. Looked in:\n"
              "  - /w/roberta\nProvide them with:\n  hf download roberta-base --local-dir /w/roberta")
    (tmp_path / "error.txt").write_text(f"[2026-01-01 00:00:00 UTC] failed: {reason}\n\nTraceback (most recent...")
    assert error_reason(tmp_path, "failed") == reason
