"""``harness import meter`` refuses what is not a METER checkpoint: clear message, exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.cli import main

GOLDEN_CKPT = Path(__file__).parent / "golden" / "meter_tiny" / "meter.ckpt"


class Payload:
    """A class of the writer's: unpickling it would run the writer's code."""


def _import(path: Path, results: Path, capsys: pytest.CaptureFixture, name: str = "x") -> tuple[int, str]:
    code = main(["import", "meter", str(path), "--name", name, "--results", str(results)])
    return code, capsys.readouterr().err


def _golden() -> dict:
    return torch.load(GOLDEN_CKPT, weights_only=True)


def _assert_nothing_written(results: Path) -> None:
    assert not results.exists() or not any(results.rglob("*")), sorted(results.rglob("*"))


def test_truncated_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    broken = tmp_path / "meter.ckpt"
    broken.write_bytes(GOLDEN_CKPT.read_bytes()[: GOLDEN_CKPT.stat().st_size // 2])
    code, err = _import(broken, tmp_path / "results", capsys)
    assert code == 2
    assert "cannot read it as a PyTorch checkpoint" in err and "truncated" in err
    _assert_nothing_written(tmp_path / "results")


def test_vilt_checkpoint_is_named_as_such(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    vilt = {"transformer.blocks.0.attn.qkv.weight": torch.zeros(12, 4),
            "text_embeddings.word_embeddings.weight": torch.zeros(10, 4),
            "transformer.patch_embed.proj.weight": torch.zeros(4, 3, 2, 2)}
    path = tmp_path / "vilt.ckpt"
    torch.save({"state_dict": vilt, "hyper_parameters": {"config": {}}}, path)
    code, err = _import(path, tmp_path / "results", capsys)
    assert code == 2
    assert "ViLT checkpoint" in err and "not METER's" in err
    _assert_nothing_written(tmp_path / "results")


def test_wrong_shapes_are_each_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ckpt = _golden()
    key = "cross_modal_text_layers.1.crossattention.self.value.weight"
    ckpt["state_dict"][key] = torch.zeros(16, 32)  # half the rows of a 32-wide layer
    ckpt["state_dict"]["vqa_classifier.1.weight"] = torch.ones(7)
    path = tmp_path / "meter.ckpt"
    torch.save(ckpt, path)
    code, err = _import(path, tmp_path / "results", capsys)
    assert code == 2
    assert "2 tensor(s) do not have the shape" in err
    assert f"{key} (16, 32)" in err and "fusion.text_layers.1.cross_attn.key_value.weight expects (64, 32)" in err
    assert "vqa_classifier.1.weight (7,) → heads.vqa.norm.weight expects (64,)" in err
    _assert_nothing_written(tmp_path / "results")


def test_missing_tensors_are_listed(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ckpt = _golden()
    del ckpt["state_dict"]["cross_modal_image_pooler.dense.weight"]
    path = tmp_path / "meter.ckpt"
    torch.save(ckpt, path)
    code, err = _import(path, tmp_path / "results", capsys)
    assert code == 2 and "image_pooler.dense.weight (from cross_modal_image_pooler.dense.weight)" in err
    _assert_nothing_written(tmp_path / "results")


def test_arbitrary_objects_are_never_unpickled(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ckpt = _golden()
    ckpt["callbacks"] = Payload()
    path = tmp_path / "meter.ckpt"
    torch.save(ckpt, path)
    code, err = _import(path, tmp_path / "results", capsys)
    assert code == 2
    assert "never unpickles arbitrary objects" in err and "weights_only=True" in err
    _assert_nothing_written(tmp_path / "results")


def test_a_name_is_bound_to_one_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    results = tmp_path / "results"
    assert _import(GOLDEN_CKPT, results, capsys, name="m")[0] == 0
    assert _import(GOLDEN_CKPT, results, capsys, name="m")[0] == 0  # same file again: nothing to do
    other = _golden()
    other["state_dict"]["itm_score.fc.bias"] = other["state_dict"]["itm_score.fc.bias"] + 1
    path = tmp_path / "other.ckpt"
    torch.save(other, path)
    before = sorted(p.relative_to(results) for p in results.rglob("*"))
    code, err = _import(path, results, capsys, name="m")
    assert code == 2 and "already holds another checkpoint" in err
    assert sorted(p.relative_to(results) for p in results.rglob("*")) == before
