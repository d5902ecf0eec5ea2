"""Weight loading through the libraries' own paths, missing-weight errors, and resolution changes."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch

from harness.models.config import ModelSpec
from harness.models.interpolate import adapt_state_dict, resize_abs_pos_embed
from harness.models.text import build_text_encoder, load_tokenizer
from harness.models.vision import build_vision_encoder, create_backbone
from harness.models.weights import (
    MissingWeights,
    create_timm_pretrained,
    load_state_dict_file,
    save_state_dict,
    timm_weight_file,
)


@pytest.fixture(autouse=True)
def offline_empty_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No network, and HF/torch caches that hold nothing, so only weights_dir can answer."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-home" / "hub"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf-home" / "hub"))
    torch.set_num_threads(1)


def small_bert(vocab: int = 50):
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64)
    torch.manual_seed(0)
    return BertModel(config, add_pooling_layer=False).eval()


def test_text_encoder_loads_save_pretrained_dir_with_identical_outputs(tmp_path: Path) -> None:
    saved = small_bert()
    saved.save_pretrained(tmp_path / "weights" / "bert-base-uncased")  # the HF id's name is found too
    spec = ModelSpec(text="bert", weights_dir=str(tmp_path / "weights"))
    enc = build_text_encoder("bert", spec=spec).eval()
    ids = torch.randint(0, 50, (2, 9))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        torch.testing.assert_close(enc(ids, mask), saved(input_ids=ids, attention_mask=mask).last_hidden_state)


def test_emb_only_loads_berts_embeddings_from_weights_dir(tmp_path: Path) -> None:
    saved = small_bert()
    saved.save_pretrained(tmp_path / "w" / "bert")
    enc = build_text_encoder("emb-only", spec=ModelSpec(text="emb-only", weights_dir=str(tmp_path / "w"))).eval()
    ids = torch.randint(0, 50, (1, 7))
    with torch.no_grad():
        torch.testing.assert_close(enc(ids, torch.ones_like(ids)), saved.embeddings(input_ids=ids))


def test_tokenizer_loads_from_weights_dir(tmp_path: Path) -> None:
    from harness.data.text import word_tokenizer

    word_tokenizer(["a red circle", "a blue square"]).save_pretrained(tmp_path / "w" / "roberta")
    tok = load_tokenizer(ModelSpec(text="roberta", weights_dir=str(tmp_path / "w")))
    assert tok("a red square")["input_ids"][0] == tok.cls_token_id


def test_missing_text_weights_say_where_and_how(tmp_path: Path) -> None:
    spec = ModelSpec(text="roberta", weights_dir=str(tmp_path / "nothing-here"))
    with pytest.raises(MissingWeights) as info:
        build_text_encoder("roberta", spec=spec)
    message = str(info.value)
    assert str(tmp_path / "nothing-here" / "roberta") in message
    assert "Hugging Face cache" in message
    assert f"hf download roberta-base --local-dir {tmp_path / 'nothing-here' / 'roberta'}" in message
    with pytest.raises(MissingWeights, match="tokenizer of 'roberta'"):
        load_tokenizer(spec)


def test_missing_vision_weights_say_where_and_how(tmp_path: Path) -> None:
    spec = ModelSpec(vision="clip-vit-224/32", weights_dir=str(tmp_path))
    with pytest.raises(MissingWeights) as info:
        build_vision_encoder("clip-vit-224/32", spec=spec)
    message = str(info.value)
    assert str(tmp_path / "clip-vit-224/32" / "model.safetensors") in message
    assert "hf download timm/vit_base_patch32_clip_224.openai" in message


def test_timm_loads_a_local_file_through_its_pretrained_path(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=1000).eval()
    (tmp_path / "tiny-vit").mkdir()
    save_state_dict(source.state_dict(), tmp_path / "tiny-vit" / "model.safetensors")
    assert timm_weight_file("tiny-vit", "vit_tiny_patch16_224.augreg_in21k_ft_in1k", str(tmp_path)).is_file()
    # timm drops the 1000-way classifier itself because we ask for num_classes=0
    loaded = create_timm_pretrained("tiny-vit", "vit_tiny_patch16_224.augreg_in21k_ft_in1k", str(tmp_path),
                                    num_classes=0).eval()
    pixels = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(loaded.forward_features(pixels), source.forward_features(pixels))


def test_safetensors_state_dict_round_trip(tmp_path: Path) -> None:
    model = create_backbone("swin-base-384", "tiny", 64)
    save_state_dict(model.state_dict(), tmp_path / "m.safetensors")
    loaded = load_state_dict_file(tmp_path / "m.safetensors")
    assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())


@pytest.mark.slow
def test_paper_clip_from_weights_dir_identical_and_resized(tmp_path: Path) -> None:
    """The whole paper-scale path: a CLIP-B/32 checkpoint in weights_dir → METER's 11-block encoder,
    and the same weights at 288px (METER's CLIP pre-training resolution)."""
    torch.manual_seed(0)
    source = timm.create_model("vit_base_patch32_clip_quickgelu_224", pretrained=False, num_classes=0).eval()
    (tmp_path / "clip-vit-224-32").mkdir()
    save_state_dict(source.state_dict(), tmp_path / "clip-vit-224-32" / "model.safetensors")
    spec = ModelSpec(vision="clip-vit-224/32", weights_dir=str(tmp_path))
    enc = build_vision_encoder("clip-vit-224/32", spec=spec).eval()
    pixels = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        x = source.norm_pre(source._pos_embed(source.patch_embed(pixels)))
        torch.testing.assert_close(enc(pixels), source.norm(source.blocks[:11](x)))
        big = build_vision_encoder("clip-vit-224/32", spec=spec, image_size=288).eval()
        assert big(torch.randn(1, 3, 288, 288)).shape == (1, 1 + 81, 768)
    torch.testing.assert_close(big.backbone.pos_embed[:, 0], source.pos_embed[:, 0])  # CLS position kept


# ---- resolution change ---------------------------------------------------------------------

def test_abs_pos_embed_resize_keeps_prefix_and_is_identity_at_same_size() -> None:
    pos = torch.randn(1, 2 + 64, 16)
    bigger = resize_abs_pos_embed(pos, (12, 12), num_prefix_tokens=2)
    assert bigger.shape == (1, 2 + 144, 16)
    assert torch.equal(bigger[:, :2], pos[:, :2])
    assert resize_abs_pos_embed(pos, (8, 8), num_prefix_tokens=2) is pos
    with pytest.raises(ValueError, match="not a square grid"):
        resize_abs_pos_embed(torch.randn(1, 1 + 10, 4), (4, 4), 1)


@pytest.mark.parametrize("name", ["vit", "distilled-deit", "cait", "volo", "beit", "swin-base-384",
                                  "clip-vit-224/16"])
def test_adapt_state_dict_to_a_new_image_size(name: str) -> None:
    small = create_backbone(name, "tiny", 64)
    state = small.state_dict()
    same = adapt_state_dict(state, create_backbone(name, "tiny", 64))
    assert all(torch.equal(same[k], state[k]) for k in state)
    big = create_backbone(name, "tiny", 96)
    big.load_state_dict(adapt_state_dict(state, big), strict=True)
    with torch.no_grad():
        assert torch.isfinite(big.forward_features(torch.randn(1, 3, 96, 96))).all()


def test_swin_relative_bias_table_resized_when_window_changes() -> None:
    kwargs = dict(img_size=64, patch_size=4, embed_dim=32, depths=(1, 1), num_heads=(2, 4), num_classes=0)
    src = timm.create_model("swin_base_patch4_window12_384", window_size=4, **kwargs)
    dst = timm.create_model("swin_base_patch4_window12_384", window_size=8, **kwargs)
    key = "layers.0.blocks.0.attn.relative_position_bias_table"
    assert src.state_dict()[key].shape == (49, 2) and dst.state_dict()[key].shape == (225, 2)
    adapted = adapt_state_dict(src.state_dict(), dst)
    assert adapted[key].shape == (225, 2)
    dst.load_state_dict(adapted, strict=True)


def test_unresizable_shape_mismatch_is_named() -> None:
    src = create_backbone("vit", "tiny", 64).state_dict()
    src["head.weight"] = torch.zeros(3, 3)
    dst = create_backbone("vit", "tiny", 64)
    dst.head = torch.nn.Linear(64, 5)
    with pytest.raises(ValueError, match="'head.weight' has shape"):
        adapt_state_dict(src, dst)
