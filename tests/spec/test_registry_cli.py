"""Registries (decorator-filled, lazy, did-you-mean) and the torch-free CLI entry."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import pytest

from harness.cli import main
from harness.registry import REGISTRIES, Registry, UnknownComponent
from harness.registry_meta import MetadataError


@dataclass(frozen=True)
class WidgetMeta:
    width: int
    depth: int = 1


def test_registry_register_get_and_suggest() -> None:
    reg = Registry("widget", WidgetMeta)

    @reg.register("roberta", "a widget", width=3)
    def build(**kw):  # type: ignore[no-untyped-def]
        return ("built", kw)

    assert reg.get("roberta").meta == WidgetMeta(width=3)
    assert reg.get("roberta").meta.depth == 1
    assert reg.build("roberta", x=1) == ("built", {"x": 1})
    with pytest.raises(UnknownComponent, match="unknown widget 'robrta'; did you mean 'roberta'\\?"):
        reg.get("robrta")
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("roberta", "again", width=1)(lambda: None)


def test_unknown_or_missing_metadata_is_an_error_at_registration() -> None:
    reg = Registry("widget", WidgetMeta)
    with pytest.raises(MetadataError, match="widget 'a': unknown metadata key 'widht'; did you mean 'width'\\?"):
        reg.register("a", "typo", widht=3)
    with pytest.raises(MetadataError, match="widget 'b': missing metadata: width"):
        reg.register("b", "no width")
    with pytest.raises(MetadataError, match="unknown metadata key 'colour' \\(known: width, depth\\)"):
        reg.register("c", "unknown", width=1, colour="red")
    assert "a" not in reg and "b" not in reg and "c" not in reg


def test_package_registries_have_typed_metadata() -> None:
    from harness.registry import DATASETS, TASKS, TEXT_ENCODERS, VISION_ENCODERS

    assert VISION_ENCODERS.get("swin-base-384").meta.patch_size == 32
    assert TEXT_ENCODERS.get("emb-only").meta.embeddings_only and not TEXT_ENCODERS.get("bert").meta.embeddings_only
    assert TASKS.get("vqa").meta.metric == "vqa_score" and TASKS.get("nlvr2").meta.images == 2
    assert DATASETS.get("vqav2").meta.train_size == 658_111
    with pytest.raises(MetadataError, match="task 'x': unknown metadata key 'metrik'; did you mean 'metric'"):
        TASKS.register("x", "typo", metrik="accuracy")


@pytest.mark.parametrize("kind", sorted(REGISTRIES))
def test_every_registry_lists_components_with_descriptions(kind: str) -> None:
    entries = list(REGISTRIES[kind])
    assert entries
    assert all(e.description for e in entries)


def test_paper_components_are_registered() -> None:
    assert set(REGISTRIES["vision"].names()) >= {"vit", "deit", "distilled-deit", "cait", "volo", "beit",
                                                  "swin-base-384", "clip-vit-224/32", "clip-vit-224/16"}
    # At least the paper's (a new component needs no edit here).
    assert set(REGISTRIES["text"].names()) >= {"bert", "roberta", "electra", "albert", "deberta", "emb-only"}
    assert set(REGISTRIES["fusion"].names()) >= {"co-attention", "merged-attention"}
    assert set(REGISTRIES["architecture"].names()) >= {"encoder-only", "encoder-decoder"}


def test_import_help_ls_validate_do_not_import_torch() -> None:
    """`plan` does: it counts each job's parameters on its model built on the meta device (one cost model
    with `ls --params`, tests/dispatch/test_cost.py)."""
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


def test_default_dataset_follows_the_task_it_reads() -> None:
    """A task's default dataset is registry metadata (spec reads it without importing data); a plug-in task
    that reads another task's samples (``reads=``) reads that task's dataset too."""
    from harness.registry import TASKS, default_dataset

    assert default_dataset("vqa") == "vqav2" and default_dataset("retrieval") == "f30k"

    @TASKS.register("test-vqa-reader", "reads VQA's samples", reads="vqa")
    def _reader(**kw):  # type: ignore[no-untyped-def]
        return None

    @TASKS.register("test-no-data", "reads its own form, names no dataset")
    def _orphan(**kw):  # type: ignore[no-untyped-def]
        return None

    try:
        assert default_dataset("test-vqa-reader") == "vqav2"
        with pytest.raises(ValueError, match="set finetune.test-no-data.dataset"):
            default_dataset("test-no-data")
    finally:
        TASKS._entries.pop("test-vqa-reader")
        TASKS._entries.pop("test-no-data")
