"""``harness rehearsal prepare``: every Arrow file METER's writers produce, written by the converters, and tiny
checkpoints that the real Hugging Face / timm loading code finds under the real hub ids."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from harness.cli import main

METER_FILES = {
    *(f"coco_caption_karpathy_{s}.arrow" for s in ("train", "restval", "val", "test")),
    *(f"f30k_caption_karpathy_{s}.arrow" for s in ("train", "val", "test")),
    *(f"vqav2_{s}.arrow" for s in ("train", "val", "trainable_val", "rest_val", "test", "test-dev")),
    *(f"nlvr2_{s}.arrow" for s in ("train", "dev", "test1")), *(f"snli_{s}.arrow" for s in ("train", "dev", "test")),
    "vg.arrow", "sbu_0.arrow", "sbu_1.arrow", *(f"conceptual_caption_{s}_{i}.arrow" for s in ("train", "val")
                                                for i in (0, 1)),
}
HUB_IDS = {"bert-base-uncased", "roberta-base", "google/electra-base-discriminator", "albert-base-v2",
           "microsoft/deberta-base", "timm/vit_base_patch32_clip_224.openai", "timm/vit_base_patch16_clip_224.openai",
           "timm/swin_base_patch4_window12_384.ms_in22k", "timm/vit_base_patch16_224.augreg2_in21k_ft_in1k",
           "timm/deit_base_patch16_224.fb_in1k", "timm/deit_base_distilled_patch16_224.fb_in1k",
           "timm/cait_s24_224.fb_dist_in1k", "timm/volo_d1_224.sail_in1k",
           "timm/beit_base_patch16_224.in22k_ft_in22k_in1k"}

LOAD_ALL = """
import json, torch
import harness.models.catalog
from harness.models.config import ModelSpec
from harness.models.text import build_text_encoder, load_tokenizer
from harness.models.vision import build_vision_encoder
from harness.registry import TEXT_ENCODERS, VISION_ENCODERS
out = {}
for name in VISION_ENCODERS.names():
    enc = build_vision_encoder(name, spec=ModelSpec(vision=name, scale="rehearsal"), image_size=160)
    out[name] = [enc.width, list(enc(torch.zeros(1, 3, 160, 160)).shape)]
for name in TEXT_ENCODERS.names():
    spec = ModelSpec(text=name, scale="rehearsal")
    tok, enc = load_tokenizer(spec), build_text_encoder(name, spec=spec)
    ids = tok(["a red square on the left"], return_tensors="pt")
    shape = list(enc(ids["input_ids"], ids["attention_mask"]).shape)
    out[name] = [enc.width, enc.mask_token_id == tok.mask_token_id, shape]
print("RESULT" + json.dumps(out))
"""


def test_prepared_root_holds_every_meter_file_and_passes_data_check(rehearsal_root: Path) -> None:
    assert {p.name for p in (rehearsal_root / "arrow").glob("*.arrow")} == METER_FILES
    assert main(["data", "check", str(rehearsal_root / "arrow")]) == 0
    repos = json.loads((rehearsal_root / "rehearsal.json").read_text())["repos"]
    assert set(repos) == HUB_IDS
    for repo in HUB_IDS:
        folder = rehearsal_root / "hub" / ("models--" + repo.replace("/", "--"))
        assert (folder / "snapshots" / (folder / "refs" / "main").read_text() / "model.safetensors").is_file()


def test_every_encoder_loads_through_the_real_paths_from_the_hub_cache(rehearsal_root: Path) -> None:
    """A fresh process, as a job is: HF_HUB_CACHE + offline, nothing passed but the hub ids."""
    env = {**os.environ, "HF_HUB_CACHE": str(rehearsal_root / "hub"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", LOAD_ALL], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.split("RESULT", 1)[1])
    assert loaded["swin-base-384"] == [64, [1, 400, 64]]  # mean-pooled Swin: no CLS token, 160/8 = 20 → 400
    assert loaded["clip-vit-224/32"][1] == [1, 101, 64]  # position embeddings interpolated from 64 px to 160 px
    assert all(v[0] == 64 for v in loaded.values())
    assert all(loaded[t][1] for t in ("bert", "roberta", "electra", "albert", "deberta", "emb-only"))
    # Without the cache the same code refuses: the weights really come from it.
    env["HF_HUB_CACHE"] = str(rehearsal_root / "nowhere")
    missing = subprocess.run([sys.executable, "-c", LOAD_ALL], env=env, capture_output=True, text=True, timeout=600)
    assert missing.returncode != 0 and "pre-trained weights for" in missing.stderr
