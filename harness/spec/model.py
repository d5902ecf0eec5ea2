"""ModelSpec: the model factors of one grid cell (torch-free; validated against the registries)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from harness.registry import ARCHITECTURES, FUSIONS, TEXT_ENCODERS, VISION_ENCODERS
from harness.spec.base import Strict


class ModelSpec(Strict):
    vision: str = "clip-vit-224/32"
    text: str = "bert"
    fusion: str = "co-attention"
    architecture: str = "encoder-only"
    # "paper": the published architecture; "tiny": the same family at CPU size (the local profile);
    # "rehearsal": the tiny architecture loaded through the paper path (harness run --rehearse).
    scale: Literal["paper", "tiny", "rehearsal"] = "paper"
    # "pretrained": load weights (local dir, HF/timm cache, tiny zoo); "random": no weights at all.
    weights: Literal["pretrained", "random"] = "pretrained"
    # Directory holding pre-trained weights; None = the libraries' own caches (or the tiny zoo).
    weights_dir: str | None = None
    hidden: int = Field(768, ge=8, description="fusion width")
    heads: int = Field(12, ge=1)
    fusion_layers: int = Field(6, ge=1, description="layers per modality (co-attention) or in total")
    decoder_layers: int = Field(6, ge=1, description="decoder depth for encoder-decoder")
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    max_text_len: int = Field(50, ge=4)
    # METER's CLIP detail: keep 11 of the 12 blocks and apply the final norm to every token.
    clip_meter_style: bool = True

    @field_validator("vision", "text", "fusion", "architecture")
    @classmethod
    def _registered(cls, v: str, info: ValidationInfo) -> str:
        return _known(_REGISTRY_OF[str(info.field_name)], v)


_REGISTRY_OF = {"vision": VISION_ENCODERS, "text": TEXT_ENCODERS, "fusion": FUSIONS, "architecture": ARCHITECTURES}


def _known(registry, name: str) -> str:  # type: ignore[no-untyped-def]
    if name not in registry:
        raise ValueError(registry.unknown_message(name))
    return name
