"""Torch-free size estimates of a ModelSpec: encoder dimensions and forward FLOPs per image-text pair.

Every encoder layer costs as a ViT/BERT layer at its output grid. Used by the plan's cost model
(harness/dispatch/cost.py) and as the fallback of ``harness.models.params.flops_per_sample``.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.models.config import ModelSpec

# The tiny architecture of every family (models/vision_families.py, models/text_families.py).
TINY = {"width": 64, "layers": 2, "patch": 8}


@dataclass(frozen=True)
class EncoderDims:
    vision_width: int
    vision_layers: int
    patch: int
    text_width: int
    text_layers: int


def encoder_dims(spec: ModelSpec) -> EncoderDims:
    from harness.registry import TEXT_ENCODERS, VISION_ENCODERS

    v, t = VISION_ENCODERS.get(spec.vision).meta, TEXT_ENCODERS.get(spec.text).meta
    if spec.scale == "paper":
        return EncoderDims(v.width, v.layers, v.patch_size, t.width, t.layers)
    text_layers = TINY["layers"] if t.layers else 0  # embeddings-only stays without layers
    return EncoderDims(TINY["width"], TINY["layers"], TINY["patch"], TINY["width"], text_layers)


def image_tokens(spec: ModelSpec, image_size: int) -> int:
    return (image_size // encoder_dims(spec).patch) ** 2 + 1


def _layer_flops(tokens: int, width: int, context: int | None = None) -> float:
    """One post-LN transformer layer: projections, attention scores and values, 4× FFN."""
    flops = 2 * tokens * (4 * width * width + 8 * width * width) + 4 * tokens * tokens * width
    if context is not None:  # cross-attention: q/o on own tokens, k/v on the context
        flops += 2 * (2 * tokens * width * width + 2 * context * width * width) + 4 * tokens * context * width
    return float(flops)


def analytic_flops(spec: ModelSpec, image_size: int, text_len: int) -> float:
    """Forward FLOPs of one image-text pair: encoders, fusion and the input projections."""
    d = encoder_dims(spec)
    img = image_tokens(spec, image_size)
    vision = d.vision_layers * _layer_flops(img, d.vision_width)
    text = d.text_layers * _layer_flops(text_len, d.text_width)
    h = spec.hidden
    if spec.fusion == "co-attention":
        fusion = spec.fusion_layers * (_layer_flops(text_len, h, img) + _layer_flops(img, h, text_len))
    else:
        fusion = spec.fusion_layers * _layer_flops(text_len + img, h)
    projections = 2 * (text_len * d.text_width + img * d.vision_width) * h
    return float(vision + text + fusion + projections)
