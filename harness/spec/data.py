"""DataSpec: where a cell's data comes from (torch-free)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness.spec.base import Strict


class SyntheticSpec(Strict):
    """The procedural shape-scene benchmark (see harness.data.synthetic)."""

    seed: int = Field(0, ge=0, lt=2**32)
    image_size: int = Field(64, ge=16)
    train_images: int = Field(4000, ge=8)
    eval_images: int = Field(500, ge=8)
    captions_per_image: int = Field(3, ge=1)
    max_objects: int = Field(3, ge=1, le=5)
    questions_per_image: int = Field(4, ge=1)
    # NLVR2 statements (each with its own partner image) and SNLI-VE hypotheses per image: with
    # 100 evaluation images one per image left a 100-example test set (±5 points of noise).
    statements_per_image: int = Field(4, ge=1)


class DataSpec(Strict):
    source: Literal["synthetic", "arrow"] = "synthetic"
    # Arrow data root (ViLT/METER files); required when source is "arrow".
    root: str | None = None
    synthetic: SyntheticSpec = SyntheticSpec()
    num_workers: int = Field(0, ge=0)
    randaugment: bool = False
    # Arrow split overrides, "dataset/split" → file stems, e.g. {"vqav2/train": ["vqav2_train"]};
    # defaults follow METER (harness.data.arrow.DEFAULT_SPLITS).
    splits: dict[str, tuple[str, ...]] = {}
