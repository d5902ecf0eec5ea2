"""Golden equivalence with METER's own code.

``golden/meter_tiny/`` was written by ``tools/meter_golden.py`` running zdou0830/METER's
``METERTransformerSS`` under its pinned transformers==4.6.0 (tiny sizes, every parameter random):
the checkpoint in METER's Lightning format, fixed inputs, and METER's outputs. Here the checkpoint
goes through ``harness import meter`` and the harness model must reproduce every output ≤ 1e-5.
``METER_GOLDEN_DIR`` points the same test at another recording (the paper-size one, by hand).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from harness.cli import main
from harness.importers.meter import MeterArch, build_imported_model
from harness.spec.schema import import_run_id

GOLDEN = Path(os.environ.get("METER_GOLDEN_DIR") or Path(__file__).parent / "golden" / "meter_tiny")
TOLERANCE = 1e-5


def _vqa_targets(labels: torch.Tensor, scores: torch.Tensor, answers: int) -> torch.Tensor:
    targets = torch.zeros(labels.shape[0], answers)
    for row, (label, score) in enumerate(zip(labels.tolist(), scores.tolist(), strict=True)):
        for lab, sc in zip(label, score, strict=True):
            targets[row, lab] = sc
    return targets


@torch.no_grad()
def harness_outputs(model: torch.nn.Module, x: dict[str, torch.Tensor], answers: int) -> dict[str, torch.Tensor]:
    """The harness model on METER's inputs, through its public interface (harness/README.md)."""
    ids, mask, image = x["text_ids"], x["text_masks"], x["image"]
    img, txt = model.encode_image(image), model.encode_text(ids, mask)
    text_feats, image_feats = model.fuse(img, txt)
    cls = model.pool(text_feats, image_feats, img, txt)
    pair = {"input_ids": ids, "attention_mask": mask, "pixel_values": image}
    out = model({
        "mlm": {**pair, "input_ids": x["text_ids_mlm"], "mlm_labels": x["text_labels_mlm"]},
        "vqa": {**pair, "vqa_targets": _vqa_targets(x["vqa_labels"], x["vqa_scores"], answers)},
        "nlvr2": {**pair, "pixel_values_2": x["image_1"], "labels": x["nlvr2_labels"]},
        "snli-ve": {**pair, "labels": x["snli_labels"]},
    })
    return {"text_feats": text_feats, "image_feats": image_feats, "cls_feats": cls,
            "itm_logits": model.heads["itm"](cls), "rank_scores": model.heads["retrieval"](cls),
            "mlm_logits": out["logits/mlm"], "mlm_loss": out["loss/mlm"],
            "vqa_logits": out["logits/vqa"], "vqa_loss": out["loss/vqa"],
            "nlvr2_logits": out["logits/nlvr2"], "nlvr2_loss": out["loss/nlvr2"],
            "snli_logits": out["logits/snli-ve"], "snli_loss": out["loss/snli-ve"]}


def imported_model(results: Path, name: str) -> tuple[torch.nn.Module, MeterArch]:
    from safetensors.torch import load_file

    folder = results / "runs" / import_run_id("meter", name)
    arch = MeterArch.from_json(json.loads((folder / "import.json").read_text())["arch"])
    model = build_imported_model(arch)
    model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=True)
    return model.eval(), arch


def test_imported_meter_checkpoint_reproduces_meters_outputs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["import", "meter", str(GOLDEN / "meter.ckpt"), "--name", "golden", "--results", str(tmp_path)]) == 0
    assert "unknown" not in capsys.readouterr().out  # every tensor METER's forward reads has a home here
    model, arch = imported_model(tmp_path, "golden")
    recorded = torch.load(GOLDEN / "io.pt", weights_only=True)
    ours = harness_outputs(model, recorded["inputs"], arch.tasks["vqa"]["num_answers"])
    expected = recorded["outputs"]
    assert set(ours) == set(expected)
    diffs = {k: float((ours[k] - expected[k]).abs().max()) for k in expected}
    print("max |harness - METER| per output:", json.dumps(diffs, indent=1))
    assert all(d <= TOLERANCE for d in diffs.values()), diffs
    # the comparison is not vacuous: the outputs are far from zero and differ across the batch
    assert float(expected["vqa_logits"].abs().max()) > 0.1
    assert float((expected["cls_feats"][0] - expected["cls_feats"][1]).abs().max()) > 1e-2


def test_fine_tuning_resolution_resizes_position_embedding_as_meter(tmp_path: Path) -> None:
    """Fine-tuning at twice the checkpoint's resolution: the harness's resampled CLIP position table
    equals METER's ``adapt_position_encoding`` (bicubic, antialias off) — not timm's antialiased one."""
    from dataclasses import replace

    from safetensors.torch import load_file
    from timm.layers import resample_abs_pos_embed

    assert main(["import", "meter", str(GOLDEN / "meter.ckpt"), "--name", "golden", "--results", str(tmp_path)]) == 0
    _, arch = imported_model(tmp_path, "golden")
    recorded = torch.load(GOLDEN / "io.pt", weights_only=True)["resize"]
    larger = build_imported_model(replace(arch, image_size=recorded["image_size"]))
    state = load_file(str(tmp_path / "runs" / import_run_id("meter", "golden") / "model.safetensors"))
    larger.load_pretrained_vlp(state)
    ours = larger.vision.backbone.pos_embed[0].detach()
    assert ours.shape == recorded["positional_embedding"].shape
    assert float((ours - recorded["positional_embedding"]).abs().max()) <= 1e-6
    grid = recorded["image_size"] // arch.patch
    timm_way = resample_abs_pos_embed(state["vision.backbone.pos_embed"], new_size=[grid, grid], num_prefix_tokens=1)
    assert float((timm_way[0] - recorded["positional_embedding"]).abs().max()) > 1e-3
