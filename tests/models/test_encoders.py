"""Vision and text encoders: every registered name, tiny (zoo weights) and paper scale (random, offline)."""

from __future__ import annotations

import pytest
import torch

from harness.models.config import ModelSpec
from harness.models.text import EmbeddingEncoder, build_text_encoder, load_tokenizer
from harness.models.vision import build_vision_encoder, preprocess_config
from harness.registry import TEXT_ENCODERS, VISION_ENCODERS, UnknownComponent

VISION = VISION_ENCODERS.names()
TEXT = TEXT_ENCODERS.names()
# Tokens out of a 64px image: CLS (+ distillation token) + patch grid; Swin: the 8×8 last-stage map.
TINY_TOKENS_64 = {"vit": 65, "deit": 65, "distilled-deit": 66, "cait": 65, "volo": 17, "beit": 65,
                  "swin-base-384": 64, "clip-vit-224/32": 17, "clip-vit-224/16": 65}
TINY_TOKENS_96 = {"vit": 145, "deit": 145, "distilled-deit": 146, "cait": 145, "volo": 37, "beit": 145,
                  "swin-base-384": 144, "clip-vit-224/32": 37, "clip-vit-224/16": 145}


@pytest.fixture(scope="module", autouse=True)
def tiny_zoo(tmp_path_factory: pytest.TempPathFactory):
    """A private zoo trained for 2 steps: the loading path is the real one, only shorter training."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_CACHE", str(tmp_path_factory.mktemp("cache")))
        mp.setenv("HARNESS_ZOO_STEPS", "2")
        torch.set_num_threads(1)
        from harness.models.zoo import ensure_zoo

        yield ensure_zoo(progress=False)


def tiny(**kw: object) -> ModelSpec:
    return ModelSpec(scale="tiny", **kw)


def assert_trains(module: torch.nn.Module, out: torch.Tensor) -> None:
    assert torch.isfinite(out).all()
    out.pow(2).mean().backward()
    missing = [n for n, p in module.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient reached {missing[:5]}"
    assert any(p.grad.abs().sum() > 0 for p in module.parameters())


@pytest.mark.parametrize("name", VISION)
def test_tiny_vision_encoder_tokens_and_gradients(name: str) -> None:
    enc = build_vision_encoder(name, spec=tiny(vision=name))  # at its tiny native size: Swin-B-384 96 px, else 64
    size = 96 if name == "swin-base-384" else 64
    out = enc(torch.randn(2, 3, size, size))
    assert out.shape == (2, (TINY_TOKENS_96 if size == 96 else TINY_TOKENS_64)[name], enc.width)
    assert enc.width == 64 and enc.lr_group == "pretrained" and enc.image_size == size
    assert enc.cls_index == (None if name == "swin-base-384" else 0)
    assert_trains(enc, out)


@pytest.mark.parametrize("name", VISION)
def test_tiny_vision_encoder_at_another_resolution(name: str) -> None:
    enc = build_vision_encoder(name, spec=tiny(vision=name), image_size=96)
    out = enc(torch.randn(1, 3, 96, 96))
    assert out.shape == (1, TINY_TOKENS_96[name], 64)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("weights", ["pretrained", "random"])
def test_zoo_weights_differ_from_random_init(weights: str) -> None:
    torch.manual_seed(0)
    a = build_vision_encoder("vit", spec=tiny(vision="vit", weights=weights)).state_dict()
    torch.manual_seed(1)
    b = build_vision_encoder("vit", spec=tiny(vision="vit", weights=weights)).state_dict()
    same = all(torch.equal(a[k], b[k]) for k in a)
    assert same == (weights == "pretrained")  # loaded weights do not depend on the seed; random ones do


def test_clip_meter_style_drops_last_block_and_norms_every_token() -> None:
    meter = build_vision_encoder("clip-vit-224/32", spec=tiny(vision="clip-vit-224/32")).eval()
    plain = build_vision_encoder("clip-vit-224/32", spec=tiny(vision="clip-vit-224/32",
                                                               clip_meter_style=False)).eval()
    assert len(meter.backbone.blocks) == 2 and len(plain.backbone.blocks) == 3
    pixels = torch.randn(2, 3, 64, 64)
    bb = plain.backbone
    with torch.no_grad():
        trunk = bb.norm_pre(bb._pos_embed(bb.patch_embed(pixels)))
        two_blocks = bb.blocks[:2](trunk)
        three_blocks = bb.blocks(trunk)
        torch.testing.assert_close(meter(pixels), bb.norm(two_blocks))
        out = plain(pixels)  # CLIP's own read-out: final norm on the CLS token only
        torch.testing.assert_close(out[:, 0], bb.norm(three_blocks[:, 0]))
        torch.testing.assert_close(out[:, 1:], three_blocks[:, 1:])


def test_preprocess_config_follows_the_catalog() -> None:
    clip = preprocess_config(ModelSpec(vision="clip-vit-224/32"))
    assert clip["image_size"] == 224 and clip["mean"][0] == pytest.approx(0.48145466)
    assert preprocess_config(tiny(vision="swin-base-384"))["image_size"] == 96  # 384 × 64/224: its own size
    assert preprocess_config(ModelSpec(vision="swin-base-384"))["image_size"] == 384
    assert preprocess_config(tiny(vision="beit"))["std"] == (0.5, 0.5, 0.5)


@pytest.mark.parametrize("name", TEXT)
def test_tiny_text_encoder_features_and_gradients(name: str) -> None:
    spec = tiny(text=name)
    tokenizer = load_tokenizer(spec)
    batch = tokenizer(["a small red circle left of a blue square", "two shapes"], padding=True,
                      return_tensors="pt")
    enc = build_text_encoder(name, spec=spec)
    out = enc(batch["input_ids"], batch["attention_mask"])
    assert out.shape == (2, batch["input_ids"].shape[1], enc.width)
    assert enc.width == 64 and enc.vocab_size == len(tokenizer) and enc.lr_group == "pretrained"
    assert (enc.mask_token_id, enc.pad_token_id) == (tokenizer.mask_token_id, tokenizer.pad_token_id)
    assert_trains(enc, out)


@pytest.mark.parametrize("name", TEXT)
def test_text_encoder_trains_under_bf16_autocast_with_padding(name: str) -> None:
    """The paper profile trains in bf16: a padded batch must go through every family (DeBERTa's attention
    overflowed bf16 in transformers' masked fill; it runs in fp32, close to the fp32 features)."""
    spec = tiny(text=name)
    batch = load_tokenizer(spec)(["a small red circle left of a blue square", "two shapes"], padding=True,
                                 return_tensors="pt")
    assert not batch["attention_mask"].all()  # padding is what triggered the overflow
    enc = build_text_encoder(name, spec=spec).eval()
    with torch.no_grad():
        full = enc(batch["input_ids"], batch["attention_mask"])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = enc(batch["input_ids"], batch["attention_mask"])
    real = batch["attention_mask"].bool()
    assert torch.allclose(out.float()[real], full[real], atol=0.1, rtol=0.05)
    assert_trains(enc, out.float())


def test_emb_only_equals_berts_embedding_layer() -> None:
    from transformers import AutoModel

    from harness.models.zoo import text_model_dir

    emb = build_text_encoder("emb-only", spec=tiny(text="emb-only")).eval()
    bert = AutoModel.from_pretrained(text_model_dir("bert"), add_pooling_layer=False).eval()
    assert isinstance(emb, EmbeddingEncoder)
    assert not any("layer." in n for n, _ in emb.named_parameters())  # no transformer layers
    ids = torch.tensor([[2, 10, 11, 12, 3]])
    with torch.no_grad():
        torch.testing.assert_close(emb(ids, torch.ones_like(ids)), bert.embeddings(input_ids=ids))


def test_unknown_encoder_names_suggest_the_close_one() -> None:
    with pytest.raises(UnknownComponent, match="did you mean 'clip-vit-224/32'"):
        build_vision_encoder("clip-vit-224/23", spec=tiny())
    with pytest.raises(UnknownComponent, match="did you mean 'roberta'"):
        build_text_encoder("roberto", spec=tiny())


@pytest.mark.slow
@pytest.mark.parametrize("name", VISION)
def test_paper_vision_encoder_builds_offline_with_random_weights(name: str, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    meta = VISION_ENCODERS.get(name).meta
    enc = build_vision_encoder(name, spec=ModelSpec(vision=name, weights="random"))
    size = meta.image_size
    with torch.no_grad():
        out = enc(torch.randn(1, 3, size, size))
    assert out.shape[-1] == enc.width == meta.width
    assert out.shape[1] >= (size // meta.patch_size) ** 2 and torch.isfinite(out).all()
    if meta.family == "clip":
        assert len(enc.backbone.blocks) == meta.layers - 1


@pytest.mark.slow
@pytest.mark.parametrize("name", TEXT)
def test_paper_text_encoder_builds_offline_with_random_weights(name: str, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    meta = TEXT_ENCODERS.get(name).meta
    enc = build_text_encoder(name, spec=ModelSpec(text=name, weights="random"))
    assert enc.width == meta.width and enc.vocab_size == meta.vocab
    layers = getattr(getattr(enc, "backbone", None), "config", None)
    assert (layers.num_hidden_layers if layers else 0) == meta.layers
    ids = torch.randint(5, 1000, (1, 12))
    with torch.no_grad():
        out = enc(ids, torch.ones_like(ids))
    assert out.shape == (1, 12, meta.width) and torch.isfinite(out).all()
