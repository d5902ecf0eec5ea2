"""Vision encoders: every registered image tower, built with timm, returning token features.

``build_vision_encoder(name, spec=..., image_size=...)`` gives a :class:`VisionEncoder` whose
``forward(pixel_values)`` returns Float[B, N, D] tokens. ``cls_index`` says which token stands for
the whole image (None: mean-pool the tokens, as METER does for Swin).

Scales: ``paper`` is the published timm architecture (weights from ``weights_dir`` or the caches,
see :mod:`harness.models.weights`); ``tiny`` is the same timm family at CPU size (width 64, 2-3
blocks, 64px; Swin-B-384 96px), with weights from the tiny zoo (:mod:`harness.models.zoo`); ``rehearsal`` is the tiny
architecture loaded exactly as ``paper`` loads (same files, caches and timm filters; see
:mod:`harness.rehearsal.spec`), its native size scaled like every image size of a rehearsal. ``weights: random``
loads nothing at all and builds offline.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from harness.models.config import ModelSpec
from harness.models.vision_families import (
    TINY_IMAGE_SIZE,
    VisionEncoder,
    create_backbone,
    timm_name,
    tiny_arch,
    vision_meta,
)

__all__ = ["TINY_IMAGE_SIZE", "VisionEncoder", "build_vision_encoder", "create_backbone", "native_image_size",
           "preprocess_config", "rehearsal_image_size", "timm_name", "tiny_arch", "vision_meta"]


def rehearsal_image_size(size: int) -> int:
    """A paper image size at rehearsal scale: ×64/224 to a multiple of 32, at least 64 (224 → 64, 288 and
    384 → 96, 576 → 160), so that every tiny family's patch and window grid divides it."""
    return max(TINY_IMAGE_SIZE, 32 * round(size * TINY_IMAGE_SIZE / 224 / 32))


def native_image_size(name: str, scale: str) -> int:
    """The size ``name`` was pre-trained at: its family's (224, Swin-B 384) at paper scale; at tiny and
    rehearsal scale the same size scaled by :func:`rehearsal_image_size` (64, Swin 96), so the tiny zoo
    pre-trains each family at its own resolution relative to the others."""
    native = vision_meta(name).image_size
    return rehearsal_image_size(native) if scale in ("tiny", "rehearsal") else native


def preprocess_config(spec: ModelSpec) -> dict[str, Any]:
    """Normalisation and native image size of ``spec.vision`` (the tiny zoo is trained with the same
    mean/std as its paper-scale family)."""
    meta = vision_meta(spec.vision)
    return {"mean": tuple(meta.mean), "std": tuple(meta.std),
            "image_size": native_image_size(spec.vision, spec.scale)}


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
        backbone = _paper_pretrained(name, spec.weights_dir, size, native, spec.scale)
    return VisionEncoder(backbone, name=name, family=meta.family, clip_meter_style=spec.clip_meter_style,
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


def _paper_pretrained(name: str, weights_dir: str | None, image_size: int, native: int,
                      scale: str = "paper") -> nn.Module:
    from harness.models.weights import create_timm_pretrained

    # A rehearsal builds the tiny architecture at its native size; timm then loads and filters the file.
    arch = dict(tiny_arch(name)[1], img_size=native) if scale == "rehearsal" else {}
    loaded = create_timm_pretrained(name, timm_name(name), weights_dir, num_classes=0, **arch)
    if image_size == native:
        return loaded
    return _load_adapted(create_backbone(name, scale, image_size), loaded.state_dict())
