"""Vision-encoder families as a table: each ``VisionFamily`` says what its tiny architecture is
and how tokens come out of its timm backbone (the readout). A vision encoder's catalog line names
its family (``family=``); a new encoder of an existing family is one catalog line, a new family
one entry here plus its catalog line.

This module imports neither the zoo nor the encoders' builders: the zoo and the builders read it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from harness.registry import VISION_ENCODERS
from harness.registry_meta import VisionMeta

TINY_IMAGE_SIZE = 64
_TINY_VIT = {"patch_size": 8, "embed_dim": 64, "depth": 2, "num_heads": 4}

# (backbone, pixels, METER-style CLIP) → Float[B, N, D] tokens. Backbones are timm models: their
# attributes are looked up by name (typed Any).
Readout = Callable[[nn.Module, torch.Tensor, bool], torch.Tensor]


def _features(bb: Any, pixels: torch.Tensor, meter_style: bool) -> torch.Tensor:
    return bb.forward_features(pixels)


def _swin_tokens(bb: Any, pixels: torch.Tensor, meter_style: bool) -> torch.Tensor:
    return bb.forward_features(pixels).flatten(1, 2)  # [B, H, W, C] map → tokens


def _beit_tokens(bb: Any, pixels: torch.Tensor, meter_style: bool) -> torch.Tensor:
    return bb.fc_norm(bb.forward_features(pixels))  # BEiT's final norm, on every token


def _clip_tokens(bb: Any, pixels: torch.Tensor, meter_style: bool) -> torch.Tensor:
    if meter_style:  # METER: the final norm on every token (the last block was dropped at build)
        return bb.forward_features(pixels)
    x = bb.blocks(bb.norm_pre(bb.patch_drop(bb._pos_embed(bb.patch_embed(pixels)))))
    return torch.cat([bb.norm(x[:, :1]), x[:, 1:]], dim=1)  # CLIP's own: the norm on the CLS token only


def _clip_drop_last_block(bb: Any, meter_style: bool) -> None:
    if meter_style:
        bb.blocks = bb.blocks[:-1]


def _clip_tiny_patch(meta: VisionMeta) -> dict[str, Any]:
    # Keep /32 cheaper than /16, as in the paper: 4×4 vs 8×8 patches at 64px.
    return {"patch_size": 16 if meta.patch_size >= 32 else 8}


def _volo_tiny(image_size: int, kwargs: dict[str, Any]) -> nn.Module:
    from timm.models.volo import VOLO  # timm's volo_* functions do not let keyword arguments override depths

    return VOLO(img_size=image_size, num_classes=0, **kwargs)


@dataclass(frozen=True)
class VisionFamily:
    tiny: dict[str, Any]  # the tiny architecture's timm keyword arguments (image size added at build time)
    readout: Readout = _features
    has_cls: bool = True  # False: no CLS token; the image is the mean of its tokens (METER's Swin)
    adapt: Callable[[nn.Module, bool], None] | None = None  # change the backbone at build (METER-style CLIP)
    tiny_extra: Callable[[VisionMeta], dict[str, Any]] | None = None  # tiny kwargs from the catalog line
    create_tiny: Callable[[int, dict[str, Any]], nn.Module] | None = None  # when timm.create_model cannot


FAMILIES: dict[str, VisionFamily] = {
    "timm-vit": VisionFamily(dict(_TINY_VIT)),
    "timm-beit": VisionFamily(dict(_TINY_VIT), readout=_beit_tokens),
    "timm-cait": VisionFamily({**_TINY_VIT, "depth_token_only": 1}),
    "timm-volo": VisionFamily({"layers": (1, 1), "embed_dims": (32, 64), "num_heads": (2, 4),
                               "downsamples": (True, False), "outlook_attention": (True, False),
                               "post_layers": ("ca",), "patch_size": 8, "stem_hidden_dim": 16},
                              create_tiny=_volo_tiny),
    "timm-swin": VisionFamily({"patch_size": 4, "window_size": 4, "embed_dim": 32, "depths": (1, 1),
                               "num_heads": (2, 4), "drop_path_rate": 0.0}, readout=_swin_tokens, has_cls=False),
    # 3 blocks so that METER's "drop the last block" leaves 2.
    "clip": VisionFamily({"embed_dim": 64, "depth": 3, "num_heads": 4}, readout=_clip_tokens,
                         adapt=_clip_drop_last_block, tiny_extra=_clip_tiny_patch),
}


def vision_meta(name: str) -> VisionMeta:
    return VISION_ENCODERS.get(name).meta


def timm_name(name: str) -> str:
    """The timm architecture (with its pretrained tag) of ``name``; an encoder built outside timm has none."""
    timm = vision_meta(name).timm
    if timm is None:
        raise ValueError(f"vision encoder '{name}' is not a timm model (its registration names no 'timm')")
    return timm


def vision_family(family: str) -> VisionFamily:
    try:
        return FAMILIES[family]
    except KeyError:
        raise ValueError(f"unknown vision-encoder family '{family}'; known: {', '.join(sorted(FAMILIES))}") from None


def tiny_arch(name: str) -> tuple[str, dict[str, Any]]:
    """(timm architecture, keyword arguments) of the tiny version of ``name`` (no image size)."""
    meta = vision_meta(name)
    family = vision_family(meta.family)
    kwargs = dict(family.tiny)
    if family.tiny_extra is not None:
        kwargs.update(family.tiny_extra(meta))
    return timm_name(name).split(".")[0], kwargs


def create_backbone(name: str, scale: str, image_size: int) -> nn.Module:
    """The timm model of ``name`` at ``image_size`` with random weights and no classifier."""
    import timm

    if scale in ("tiny", "rehearsal"):  # a rehearsal is the tiny architecture, loaded as the paper scale loads
        arch, kwargs = tiny_arch(name)
        create_tiny = vision_family(vision_meta(name).family).create_tiny
        if create_tiny is not None:
            return create_tiny(image_size, kwargs)
        return timm.create_model(arch, pretrained=False, num_classes=0, img_size=image_size, **kwargs)
    return timm.create_model(timm_name(name).split(".")[0], pretrained=False, num_classes=0,
                             img_size=image_size)


def use_fused_attention(backbone: nn.Module) -> int:
    """Route every timm attention through ``scaled_dot_product_attention`` (flash / memory-efficient
    kernels on GPU). timm leaves its "experimental" ones off by default (Swin's window attention runs
    matmul + softmax); the fused path computes the same attention, relative-position bias and shift
    mask included. Modules without a fused path (CaiT's talking-heads attention) keep theirs.
    How many attention modules use it."""
    fused: list[Any] = [m for m in backbone.modules() if hasattr(m, "fused_attn")]
    for module in fused:
        module.fused_attn = True
    return len(fused)


class VisionEncoder(nn.Module):
    """A timm backbone read out as tokens by its family's adapter (``FAMILIES``): Swin gives an
    [B,H,W,C] map (flattened, no CLS); BEiT's final norm is its ``fc_norm`` (applied to every token);
    CLIP in METER style drops the last block and applies the final norm to every token, otherwise
    only to the CLS token as CLIP does.
    """

    lr_group = "pretrained"

    def __init__(self, backbone: Any, *, name: str, family: str, clip_meter_style: bool,
                 image_size: int) -> None:
        super().__init__()
        self.name = name
        self.image_size = image_size
        self.family = family
        self.clip_meter_style = clip_meter_style
        # METER's CLIP names its norms ln_pre/ln_1/ln_2/ln_post, which its no-decay list misses: their
        # gains are decayed under optim.param_rules "meter" (harness.train.optim.meter_no_decay).
        self.meter_decays_norms = family == "clip"
        adapter = vision_family(family)
        if adapter.adapt is not None:
            adapter.adapt(backbone, clip_meter_style)
        self._readout = adapter.readout
        use_fused_attention(backbone)
        self.backbone = backbone
        self.width: int = int(backbone.num_features)
        self.cls_index: int | None = 0 if adapter.has_cls else None
        self.num_prefix_tokens: int = int(getattr(backbone, "num_prefix_tokens", 1)) if adapter.has_cls else 0

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self._readout(self.backbone, pixel_values, self.clip_meter_style)

    def pooled(self, tokens: torch.Tensor) -> torch.Tensor:
        """One vector per image: the CLS token, or the mean of all tokens."""
        return tokens.mean(dim=1) if self.cls_index is None else tokens[:, self.cls_index]
