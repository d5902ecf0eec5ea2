"""Fusion layers: SDPA = eager, co-attention's parallel update, padding masks, init, poolers."""

from __future__ import annotations

import pytest
import torch

from harness.models.fusion import (
    CoAttentionFusion,
    MergedAttentionFusion,
    ModalityInput,
    Pooler,
    key_padding_bias,
)
from harness.registry import FUSIONS

FUSION_CLASSES = {"co-attention": CoAttentionFusion, "merged-attention": MergedAttentionFusion}


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _inputs(batch: int = 3, n_text: int = 7, n_image: int = 10, hidden: int = 32):
    g = torch.Generator().manual_seed(0)
    text, image = torch.randn(batch, n_text, hidden, generator=g), torch.randn(batch, n_image, hidden, generator=g)
    text_mask = torch.ones(batch, n_text, dtype=torch.long)
    text_mask[1, 4:] = 0
    text_mask[2, 2:] = 0
    return text, text_mask, image, torch.ones(batch, n_image, dtype=torch.long)


@pytest.mark.parametrize("name", sorted(FUSION_CLASSES))
def test_registry_builds_each_fusion(name: str) -> None:
    fusion = FUSIONS.build(name, hidden=32, heads=4, layers=2, dropout=0.1)
    assert isinstance(fusion, FUSION_CLASSES[name])
    assert fusion.lr_group == "random"


@pytest.mark.parametrize("name", sorted(FUSION_CLASSES))
def test_sdpa_matches_eager_attention(name: str) -> None:
    torch.manual_seed(0)
    sdpa = FUSION_CLASSES[name](32, 4, 2, dropout=0.0, attn_impl="sdpa").eval()
    eager = FUSION_CLASSES[name](32, 4, 2, dropout=0.0, attn_impl="eager").eval()
    eager.load_state_dict(sdpa.state_dict())
    for a, b in zip(sdpa(*_inputs()), eager(*_inputs()), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", sorted(FUSION_CLASSES))
def test_padding_content_does_not_leak(name: str) -> None:
    fusion = FUSION_CLASSES[name](32, 4, 2, dropout=0.0).eval()
    text, text_mask, image, image_mask = _inputs()
    noisy = text.clone()
    noisy[text_mask == 0] = 100.0  # change only padded positions
    out_text, out_image = fusion(text, text_mask, image, image_mask)
    noisy_text, noisy_image = fusion(noisy, text_mask, image, image_mask)
    real = text_mask.bool()
    torch.testing.assert_close(out_text[real], noisy_text[real])
    torch.testing.assert_close(out_image, noisy_image)


@pytest.mark.parametrize("name", sorted(FUSION_CLASSES))
def test_output_shapes_and_post_layer_norm(name: str) -> None:
    fusion = FUSION_CLASSES[name](32, 4, 3, dropout=0.1).train()
    text, text_mask, image, image_mask = _inputs()
    out_text, out_image = fusion(text, text_mask, image, image_mask)
    assert out_text.shape == text.shape and out_image.shape == image.shape
    # Post-LN (BERT): every output token leaves a LayerNorm with weight 1, bias 0 at init.
    for out in (out_text, out_image):
        torch.testing.assert_close(out.mean(-1), torch.zeros(out.shape[:2]), atol=1e-5, rtol=0)
        torch.testing.assert_close(out.var(-1, unbiased=False), torch.ones(out.shape[:2]), atol=1e-3, rtol=0)


def test_co_attention_streams_update_in_parallel() -> None:
    """Layer i of each stream reads the other stream's output of layer i-1, not its new one."""
    fusion = CoAttentionFusion(32, 4, 2, dropout=0.0).eval()
    text, text_mask, image, image_mask = _inputs()
    tb, ib = key_padding_bias(text_mask, text.dtype), key_padding_bias(image_mask, image.dtype)
    t, i = text, image
    for text_layer, image_layer in zip(fusion.text_layers, fusion.image_layers, strict=True):
        t, i = text_layer(t, tb, i, ib), image_layer(i, ib, t, tb)
    out_text, out_image = fusion(text, text_mask, image, image_mask)
    torch.testing.assert_close(out_text, t)
    torch.testing.assert_close(out_image, i)
    # The sequential (wrong) order gives a different image stream.
    t, i = text, image
    for text_layer, image_layer in zip(fusion.text_layers, fusion.image_layers, strict=True):
        t = text_layer(t, tb, i, ib)
        i = image_layer(i, ib, t, tb)
    assert not torch.allclose(out_image, i)


def test_co_attention_has_self_cross_and_ffn_per_stream() -> None:
    fusion = CoAttentionFusion(32, 4, 6)
    assert len(fusion.text_layers) == len(fusion.image_layers) == 6
    layer = fusion.text_layers[0]
    assert layer.cross_attn is not None and layer.ffn.up.out_features == 4 * 32
    merged = MergedAttentionFusion(32, 4, 6)
    assert len(merged.layers) == 6 and merged.layers[0].cross_attn is None


def test_new_modules_use_meter_initialisation() -> None:
    fusion = CoAttentionFusion(256, 4, 2)
    weight = fusion.text_layers[0].ffn.up.weight
    assert abs(weight.std().item() - 0.02) < 0.002 and abs(weight.mean().item()) < 0.002
    assert torch.all(fusion.text_layers[0].ffn.up.bias == 0)
    norm = fusion.image_layers[1].ffn.post.norm
    assert torch.all(norm.weight == 1) and torch.all(norm.bias == 0)


def test_modality_input_projects_and_types() -> None:
    inputs = ModalityInput(text_width=20, image_width=24, hidden=32)
    assert inputs.lr_group == "random"
    torch.testing.assert_close(inputs.type_embed.weight[2], inputs.type_embed.weight[1])
    image = torch.randn(2, 5, 24)
    torch.testing.assert_close(inputs.image(image, 2), inputs.image(image, 1))
    assert inputs.text(torch.randn(2, 3, 20)).shape == (2, 3, 32)
    assert not torch.allclose(inputs.type_embed.weight[0], inputs.type_embed.weight[1])


def test_pooler_cls_and_masked_mean() -> None:
    x = torch.randn(2, 4, 8)
    cls = Pooler(8, index=0)
    torch.testing.assert_close(cls(x), torch.tanh(cls.dense(x[:, 0])))
    mean = Pooler(8, index=None)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    expected = torch.stack([x[0, :2].mean(0), x[1].mean(0)])
    torch.testing.assert_close(mean(x, mask), torch.tanh(mean.dense(expected)))


def test_indivisible_heads_are_rejected() -> None:
    with pytest.raises(ValueError, match="not divisible by 5 heads"):
        CoAttentionFusion(32, 5, 1)


def test_decoder_is_causal_and_masks_memory_padding() -> None:
    from harness.models.decoder import FusionDecoder

    torch.manual_seed(0)
    decoder = FusionDecoder(32, 4, 2, vocab_size=50, dropout=0.0).eval()
    eager = FusionDecoder(32, 4, 2, vocab_size=50, dropout=0.0, attn_impl="eager").eval()
    eager.load_state_dict(decoder.state_dict())
    ids = torch.randint(0, 50, (2, 6))
    memory, memory_mask = torch.randn(2, 9, 32), torch.ones(2, 9, dtype=torch.long)
    memory_mask[0, 5:] = 0
    out = decoder(ids, memory, memory_mask)
    torch.testing.assert_close(out, eager(ids, memory, memory_mask), atol=1e-5, rtol=1e-4)
    changed_future = ids.clone()
    changed_future[:, 4:] = (ids[:, 4:] + 1) % 50
    torch.testing.assert_close(decoder(changed_future, memory, memory_mask)[:, :4], out[:, :4])
    noisy = memory.clone()
    noisy[0, 5:] = 50.0
    torch.testing.assert_close(decoder(ids, noisy, memory_mask), out)
    assert decoder.lr_group == "random"
    with pytest.raises(ValueError, match="exceeds its 128 positions"):
        decoder(torch.zeros(1, 129, dtype=torch.long), memory[:1], memory_mask[:1])
