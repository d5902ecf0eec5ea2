"""Vision encoders: every registered image tower, built with timm, returning token features.

``build_vision_encoder(name, spec=..., image_size=...)`` gives a :class:`VisionEncoder` whose
``forward(pixel_values)`` returns Float[B, N, D] tokens. ``cls_index`` says which token stands for
the whole image (None: mean-pool the tokens, as METER does for Swin).

Scales: ``paper`` is the published timm architecture (weights from ``weights_dir`` or the caches,
see :mod:`harness.models.weights`); ``tiny`` is the same timm family at CPU size (width 64, 2-3
blocks, 64px), with weights from the tiny zoo (:mod:`harness.models.zoo`). ``weights: random``
loads nothing at all and builds offline.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from harness.models.config import ModelSpec
from harness.registry import VISION_ENCODERS

TINY_IMAGE_SIZE = 64
_TINY_VIT = {"patch_size": 8, "embed_dim": 64, "depth": 2, "num_heads": 4}
# Per family: the tiny architecture's timm keyword arguments (image size added at build time).
_TINY_FAMILY: dict[str, dict[str, Any]] = {
    "timm-vit": dict(_TINY_VIT),
    "timm-beit": dict(_TINY_VIT),
    "timm-cait": {**_TINY_VIT, "depth_token_only": 1},
    "timm-volo": {"layers": (1, 1), "embed_dims": (32, 64), "num_heads": (2, 4), "downsamples": (True, False),
                  "outlook_attention": (True, False), "post_layers": ("ca",), "patch_size": 8,
                  "stem_hidden_dim": 16},
    "timm-swin": {"patch_size": 4, "window_size": 4, "embed_dim": 32, "depths": (1, 1), "num_heads": (2, 4),
                  "drop_path_rate": 0.0},
    # 3 blocks so that METER's "drop the last block" leaves 2.
    "clip": {"embed_dim": 64, "depth": 3, "num_heads": 4},
}


def vision_meta(name: str) -> dict[str, Any]:
    return VISION_ENCODERS.get(name).meta


def tiny_arch(name: str) -> tuple[str, dict[str, Any]]:
    """(timm architecture, keyword arguments) of the tiny version of ``name`` (no image size)."""
    meta = vision_meta(name)
    family = meta["family"]
    kwargs = dict(_TINY_FAMILY[family])
    if family == "clip":  # keep /32 cheaper than /16, as in the paper: 4×4 vs 8×8 patches at 64px
        kwargs["patch_size"] = 16 if meta["patch_size"] >= 32 else 8
    return meta["timm"].split(".")[0], kwargs


def native_image_size(name: str, scale: str) -> int:
    return TINY_IMAGE_SIZE if scale == "tiny" else int(vision_meta(name)["image_size"])


def preprocess_config(spec: ModelSpec) -> dict[str, Any]:
    """Normalisation and native image size of ``spec.vision`` (the tiny zoo is trained with the same
    mean/std as its paper-scale family)."""
    meta = vision_meta(spec.vision)
    return {"mean": tuple(meta["mean"]), "std": tuple(meta["std"]),
            "image_size": native_image_size(spec.vision, spec.scale)}


def create_backbone(name: str, scale: str, image_size: int) -> nn.Module:
    """The timm model of ``name`` at ``image_size`` with random weights and no classifier."""
    import timm

    family = vision_meta(name)["family"]
    if scale == "tiny":
        arch, kwargs = tiny_arch(name)
        if family == "timm-volo":  # timm's volo_* functions do not let keyword arguments override depths
            from timm.models.volo import VOLO

            return VOLO(img_size=image_size, num_classes=0, **kwargs)
        return timm.create_model(arch, pretrained=False, num_classes=0, img_size=image_size, **kwargs)
    return timm.create_model(vision_meta(name)["timm"].split(".")[0], pretrained=False, num_classes=0,
                             img_size=image_size)


class VisionEncoder(nn.Module):
    """A timm backbone read out as tokens.

    Families differ in how tokens come out: Swin gives an [B,H,W,C] map (flattened here, no CLS);
    BEiT's final norm is its ``fc_norm`` (applied to every token here); CLIP in METER style drops the
    last block and applies the final norm to every token, otherwise only to the CLS token as CLIP does.
    """

    lr_group = "pretrained"

    def __init__(self, backbone: nn.Module, *, name: str, family: str, clip_meter_style: bool,
                 image_size: int) -> None:
        super().__init__()
        self.name = name
        self.image_size = image_size
        self.family = family
        self.clip_meter_style = clip_meter_style
        if family == "clip" and clip_meter_style:
            backbone.blocks = backbone.blocks[:-1]
        self.backbone = backbone
        self.width: int = int(backbone.num_features)
        self.cls_index: int | None = None if family == "timm-swin" else 0
        self.num_prefix_tokens: int = 0 if family == "timm-swin" else int(getattr(backbone, "num_prefix_tokens", 1))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        bb = self.backbone
        if self.family == "clip" and not self.clip_meter_style:
            x = bb.norm_pre(bb.patch_drop(bb._pos_embed(bb.patch_embed(pixel_values))))
            x = bb.blocks(x)
            return torch.cat([bb.norm(x[:, :1]), x[:, 1:]], dim=1)
        tokens = bb.forward_features(pixel_values)
        if self.family == "timm-swin":
            return tokens.flatten(1, 2)
        if self.family == "timm-beit":
            return bb.fc_norm(tokens)
        return tokens

    def pooled(self, tokens: torch.Tensor) -> torch.Tensor:
        """One vector per image: the CLS token, or the mean of all tokens."""
        return tokens.mean(dim=1) if self.cls_index is None else tokens[:, self.cls_index]


def build_vision_encoder(name: str, *, spec: ModelSpec, image_size: int | None = None) -> VisionEncoder:
    """The vision encoder ``name`` at ``image_size`` (default: its native size), weights per ``spec``."""
    meta = vision_meta(name)  # raises UnknownComponent with a suggestion
    native = native_image_size(name, spec.scale)
    size = int(image_size or native)
    if spec.weights == "random":
        backbone = create_backbone(name, spec.scale, size)
    elif spec.scale == "tiny":
        backbone = _tiny_pretrained(name, spec.weights_dir, size)
    else:
        backbone = _paper_pretrained(name, spec.weights_dir, size, native)
    return VisionEncoder(backbone, name=name, family=meta["family"], clip_meter_style=spec.clip_meter_style,
                         image_size=size)


def _load_adapted(model: nn.Module, state_dict: dict[str, Any]) -> nn.Module:
    from harness.models.interpolate import adapt_state_dict

    model.load_state_dict(adapt_state_dict(state_dict, model), strict=True)
    return model


def _tiny_pretrained(name: str, weights_dir: str | None, image_size: int) -> nn.Module:
    from harness.models.weights import load_state_dict_file
    from harness.models.zoo import vision_weights_file

    state = load_state_dict_file(vision_weights_file(name, weights_dir))
    return _load_adapted(create_backbone(name, "tiny", image_size), state)


def _paper_pretrained(name: str, weights_dir: str | None, image_size: int, native: int) -> nn.Module:
    from harness.models.weights import create_timm_pretrained

    loaded = create_timm_pretrained(name, vision_meta(name)["timm"], weights_dir, num_classes=0)
    if image_size == native:
        return loaded
    return _load_adapted(create_backbone(name, "paper", image_size), loaded.state_dict())
