"""Registries (decorator-filled, lazy, did-you-mean) and the torch-free CLI entry."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness.cli import main
from harness.registry import REGISTRIES, Registry, UnknownComponent


def test_registry_register_get_and_suggest() -> None:
    reg = Registry("widget")

    @reg.register("roberta", "a widget", width=3)
    def build(**kw):  # type: ignore[no-untyped-def]
        return ("built", kw)

    assert reg.get("roberta").meta == {"width": 3}
    assert reg.build("roberta", x=1) == ("built", {"x": 1})
    with pytest.raises(UnknownComponent, match="unknown widget 'robrta'; did you mean 'roberta'\\?"):
        reg.get("robrta")
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("roberta", "again")(lambda: None)


@pytest.mark.parametrize("kind", sorted(REGISTRIES))
def test_every_registry_lists_components_with_descriptions(kind: str) -> None:
    entries = list(REGISTRIES[kind])
    assert entries
    assert all(e.description for e in entries)


def test_paper_components_are_registered() -> None:
    assert set(REGISTRIES["vision"].names()) >= {"vit", "deit", "distilled-deit", "cait", "volo", "beit",
                                                  "swin-base-384", "clip-vit-224/32", "clip-vit-224/16"}
    assert set(REGISTRIES["text"].names()) == {"bert", "roberta", "electra", "albert", "deberta", "emb-only"}
    assert set(REGISTRIES["fusion"].names()) == {"co-attention", "merged-attention"}
    assert set(REGISTRIES["architecture"].names()) == {"encoder-only", "encoder-decoder"}


def test_import_help_ls_validate_do_not_import_torch() -> None:
    """`plan` does: it counts each job's parameters on its model built on the meta device (one cost model
    with `ls --params`, tests/spec/test_cost.py)."""
    code = (
        "import sys\n"
        "from harness.cli import main\n"
        "import harness\n"
        "for argv in (['ls'], ['validate', 'grids/text_encoders.yaml']):\n"
        "    assert main(argv) == 0, argv\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)


def test_ls_lists_everything(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ls"]) == 0
    out = capsys.readouterr().out
    for name in ("clip-vit-224/16", "swin-base-384", "emb-only", "co-attention", "encoder-decoder", "mlm",
                 "mim-discrete-code", "vqa", "snli-ve", "synthetic", "slurm"):
        assert name in out


def test_plan_prints_jobs_status_and_cost(capsys: pytest.CaptureFixture[str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert main(["plan", "grids/text_encoders.yaml", "--profile", "paper", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "6 jobs" in out and "new" in out and "GPU-hours" in out and "roberta" in out


def test_plan_json(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["plan", "grids/text_encoders.yaml", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 18 and {r["status"] for r in rows} <= {"new", "done", "failed", "running"}
