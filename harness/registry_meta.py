"""Typed, torch-free metadata of each registry's entries: one frozen dataclass per registry.

A catalog line (or a user plug-in) passes the fields as keywords, ``register(name, description,
width=768, ...)``; the registry builds its metadata type from them, so a misspelt or unknown key is
an error at registration, a missing required field too, and every reader gets typed attributes
(``VISION_ENCODERS.get(name).meta.patch_size``) that mypy checks.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

RGB = tuple[float, float, float]


@dataclass(frozen=True)
class VisionMeta:
    """A vision encoder at paper scale. ``family`` names its adapter (``harness/models/vision_families.py``)."""

    family: str
    mean: RGB  # the normalisation its pre-training used
    std: RGB
    image_size: int  # native resolution
    patch_size: int  # of the output grid (Swin: 32, its last stage)
    width: int
    layers: int
    timm: str | None = None  # timm architecture[.pretrained tag]; None for an encoder built outside timm


@dataclass(frozen=True)
class TextMeta:
    """A text encoder at paper scale. ``family`` names its transformers adapter (``models/text_families.py``)."""

    family: str
    hf: str  # the hub id its weights and tokenizer come from
    width: int
    layers: int
    vocab: int
    embeddings_only: bool = False  # word embeddings without transformer layers (METER's "emb-only")


@dataclass(frozen=True)
class FusionMeta:
    """Fusions carry no metadata yet (their cost is read from the spec's hidden/heads/layers)."""


@dataclass(frozen=True)
class ArchitectureMeta:
    decoder: bool = False  # whether the model gets a decoder over the fusion output


@dataclass(frozen=True)
class ObjectiveMeta:
    needs_decoder: bool = False  # only valid with an architecture that has a decoder
    # Its head scores image-text pairs (ITM), so a pre-training with it records zero-shot retrieval.
    ranks_pairs: bool = False


@dataclass(frozen=True)
class TaskMeta:
    head_mult: float = 1.0  # the paper's head LR multiplier (finetune.<task>.head_mult overrides it)
    metric: str = "accuracy"  # what the report ranks by
    images: int = 1  # images per example (NLVR2: 2)
    reads: str | None = None  # the task whose data form it reads (default: its own name)
    dataset: str | None = None  # the dataset it reads when its section names none
    # What its head is built with when parameters are counted before any data is read (``harness plan``);
    # at run time the head's info comes from the data (``Task.info``). VQA: the answer vocabulary's size.
    head_info: Mapping[str, Any] = field(default_factory=dict)

    def form(self, name: str) -> str:
        """The data form the task ``name`` (this entry's name) reads."""
        return self.reads or name


@dataclass(frozen=True)
class DatasetMeta:
    tasks: tuple[str, ...]  # the stages/tasks it serves ("pretrain", "vqa", ...)
    train_size: int | None = None  # training samples per epoch of its fine-tuning task (published size)
    # split → ViLT/METER Arrow file stems ("{i}" marks numbered shards); synthetic data has its own splits
    files: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    splits: tuple[str, ...] = ()  # split names when ``files`` holds none (synthetic)

    def split_names(self) -> tuple[str, ...]:
        return tuple(self.files) or self.splits


@dataclass(frozen=True)
class ExecutorMeta:
    """Executors carry no metadata."""


MetaT = TypeVar("MetaT")


class MetadataError(ValueError):
    """Metadata keys a registry's type does not have, or required ones missing."""


def build_meta(meta_type: type[MetaT], kind: str, name: str, values: Mapping[str, Any]) -> MetaT:
    """``meta_type(**values)``, with unknown and missing keys named (and a suggestion for a typo)."""
    fields = {f.name: f for f in dataclasses.fields(meta_type)}  # type: ignore[arg-type]
    problems = []
    for key in values:
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else f" (known: {', '.join(fields) or 'none'})"
            problems.append(f"unknown metadata key '{key}'{hint}")
    missing = [k for k, f in fields.items() if k not in values
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        problems.append(f"missing metadata: {', '.join(missing)}")
    if problems:
        raise MetadataError(f"{kind} '{name}': {'; '.join(problems)}")
    return meta_type(**values)
