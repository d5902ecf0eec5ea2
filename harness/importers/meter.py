"""Read a METER Lightning checkpoint and turn it into this harness's METER model.

``read_meter_checkpoint(path)`` loads with ``torch.load(weights_only=True)`` only: a file that
needs arbitrary Python objects unpickled is refused, never opened another way. ``MeterArch``
is the architecture the checkpoint implies (from its tensor shapes and METER's saved config);
``build_imported_model(arch)`` builds this harness's model of exactly that architecture, and
``convert_state(state, model)`` maps METER's tensors onto it, naming every missing, unknown and
mis-shaped tensor. Every problem is a :class:`MeterImportError` with a message for the user.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from harness.importers.meter_keys import UNUSED_METER_KEYS, Source, meter_source

# METER's "vit" setting → this harness's vision encoder (METER-CLIP-ViT-B is ViT-B/16).
METER_VISION = {"ViT-B/16": "clip-vit-224/16", "ViT-B/32": "clip-vit-224/32"}
_REQUIRED_PREFIXES = ("text_transformer.", "vit_model.", "cross_modal_text_layers.", "cross_modal_image_layers.",
                      "cross_modal_text_transform.", "cross_modal_image_transform.")


class MeterImportError(ValueError):
    """A checkpoint this importer cannot (or will not) turn into a harness model."""


@dataclass(frozen=True)
class MeterArch:
    """The model a METER checkpoint holds, in this harness's terms."""

    vision: str
    vision_width: int
    vision_blocks: int  # blocks METER kept (CLIP's depth minus one)
    patch: int
    image_size: int
    text: str  # "bert" | "roberta"
    text_hidden: int
    text_layers: int
    text_intermediate: int
    vocab_size: int
    max_positions: int
    type_vocab: int
    hidden: int
    heads: int
    fusion_layers: int
    objectives: tuple[str, ...]
    tasks: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def stage(self) -> str:
        """"finetune" when the checkpoint carries a downstream head, else "pretrain"."""
        return "finetune" if self.tasks else "pretrain"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "objectives": list(self.objectives), "stage": self.stage}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MeterArch:
        data = {k: v for k, v in data.items() if k != "stage"}
        return cls(**{**data, "objectives": tuple(data["objectives"])})


@dataclass
class MeterCheckpoint:
    state: dict[str, torch.Tensor]
    config: dict[str, Any]
    global_step: int | None


def read_meter_checkpoint(path: Path) -> MeterCheckpoint:
    """The tensors and METER config of a METER ``.ckpt``; refuses anything that is not one."""
    path = Path(path)
    if not path.is_file():
        raise MeterImportError(f"{path}: no such file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MeterImportError(
            f"{path}: refused — it holds Python objects other than tensors and plain data, and this harness "
            f"never unpickles arbitrary objects (torch.load weights_only=True said: {first}). METER's own "
            "checkpoints load this way; re-save yours as {'state_dict': ..., 'hyper_parameters': ...}") from exc
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MeterImportError(f"{path}: cannot read it as a PyTorch checkpoint — truncated or another "
                               f"format ({first})") from exc
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise MeterImportError(f"{path}: not a Lightning checkpoint (no 'state_dict' mapping at the top level)")
    state = ckpt["state_dict"]
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise MeterImportError(f"{path}: state_dict entries that are not tensors: {bad[:3]}")
    _check_is_meter(path, state)
    config = (ckpt.get("hyper_parameters") or {}).get("config") or {}
    step = ckpt.get("global_step")
    return MeterCheckpoint(state=state, config=dict(config), global_step=int(step) if step is not None else None)


def _check_is_meter(path: Path, state: dict[str, torch.Tensor]) -> None:
    keys = list(state)
    if any(k.startswith("transformer.blocks.") for k in keys) and any(k.startswith("text_embeddings.") for k in keys):
        raise MeterImportError(
            f"{path}: this is a ViLT checkpoint (one shared 'transformer.blocks.*' over 'text_embeddings.*'), "
            "not METER's: METER has separate 'text_transformer.*'/'vit_model.*' encoders and 'cross_modal_*' layers")
    missing = [p for p in _REQUIRED_PREFIXES if not any(k.startswith(p) for k in keys)]
    if missing:
        wanted = ", ".join(p + "*" for p in missing)
        raise MeterImportError(f"{path}: not a METER checkpoint — no tensors under {wanted} "
                               f"(first keys: {', '.join(keys[:4]) or 'none'})")
    if "vit_model.visual.conv1.weight" not in state:
        raise MeterImportError(f"{path}: only METER's CLIP-ViT vision tower (vit_model.visual.*) can be imported; "
                               "this checkpoint's vision encoder is another (Swin-based METER is not supported yet)")


def infer_arch(ckpt: MeterCheckpoint) -> MeterArch:
    """The architecture from tensor shapes, METER's config where shapes cannot tell (fusion heads)."""
    s, cfg = ckpt.state, ckpt.config
    conv = s["vit_model.visual.conv1.weight"]
    width, patch = int(conv.shape[0]), int(conv.shape[-1])
    blocks = len({m.group(1) for k in s if (m := re.match(r"vit_model\.visual\.transformer\.resblocks\.(\d+)\.", k))})
    grid = round((s["vit_model.visual.positional_embedding"].shape[0] - 1) ** 0.5)
    vit = str(cfg.get("vit", f"ViT-B/{patch}"))
    if vit not in METER_VISION:
        raise MeterImportError(f"METER vision encoder '{vit}' has no counterpart here; known: {sorted(METER_VISION)}")
    text = "roberta" if "roberta" in str(cfg.get("tokenizer", "")) else "bert"
    if "tokenizer" not in cfg:
        text = "roberta" if s["text_transformer.embeddings.word_embeddings.weight"].shape[0] > 40000 else "bert"
    emb = "text_transformer.embeddings."
    if "num_heads" not in cfg:
        raise MeterImportError("the checkpoint has no hyper_parameters.config.num_heads, so the fusion's number of "
                               "attention heads is unknown (METER's Lightning checkpoints carry it)")
    tasks: dict[str, dict[str, int]] = {}
    if "vqa_classifier.3.weight" in s:
        tasks["vqa"] = {"num_answers": int(s["vqa_classifier.3.weight"].shape[0])}
    for meter, task in (("nlvr2_classifier", "nlvr2"), ("snli_classifier", "snli-ve"), ("rank_output", "retrieval")):
        if f"{meter}.weight" in s or f"{meter}.0.weight" in s:
            tasks[task] = {}
    return MeterArch(
        vision=METER_VISION[vit], vision_width=width, vision_blocks=blocks, patch=patch, image_size=grid * patch,
        text=text, text_hidden=int(s[emb + "word_embeddings.weight"].shape[1]),
        text_layers=len({m.group(1) for k in s if (m := re.match(r"text_transformer\.encoder\.layer\.(\d+)\.", k))}),
        text_intermediate=int(s["text_transformer.encoder.layer.0.intermediate.dense.weight"].shape[0]),
        vocab_size=int(s[emb + "word_embeddings.weight"].shape[0]),
        max_positions=int(s[emb + "position_embeddings.weight"].shape[0]),
        type_vocab=int(s[emb + "token_type_embeddings.weight"].shape[0]),
        hidden=int(s["cross_modal_text_transform.weight"].shape[0]), heads=int(cfg["num_heads"]),
        fusion_layers=len({m.group(1) for k in s if (m := re.match(r"cross_modal_text_layers\.(\d+)\.", k))}),
        objectives=tuple(n for n, key in (("mlm", "mlm_score.bias"), ("itm", "itm_score.fc.weight")) if key in s),
        tasks=tasks)


def build_imported_model(arch: MeterArch) -> torch.nn.Module:
    """This harness's METER model with exactly ``arch`` (random weights; load with ``convert_state``).

    Attention heads of the encoders follow the published models' rule, width // 64 (CLIP's, and
    BERT-/RoBERTa-base's 12 at 768), which is also how METER's CLIP builds its tower."""
    import timm

    from harness.models.config import ModelSpec
    from harness.models.meter import MeterModel
    from harness.models.text import TextEncoder
    from harness.models.text_families import model_from_config, text_family, transformers_class
    from harness.models.vision import VisionEncoder, timm_name

    backbone = timm.create_model(
        timm_name(arch.vision).split(".")[0], pretrained=False, num_classes=0, img_size=arch.image_size,
        patch_size=arch.patch, embed_dim=arch.vision_width, depth=arch.vision_blocks + 1,
        num_heads=max(1, arch.vision_width // 64))
    vision = VisionEncoder(backbone, name=arch.vision, family="clip", clip_meter_style=True,
                           image_size=arch.image_size)
    family = text_family(arch.text)
    config = transformers_class(family.config_class)(**{
        **family.paper_config, "hidden_size": arch.text_hidden, "num_hidden_layers": arch.text_layers,
        "num_attention_heads": max(1, arch.text_hidden // 64), "intermediate_size": arch.text_intermediate,
        "vocab_size": arch.vocab_size, "max_position_embeddings": arch.max_positions,
        "type_vocab_size": arch.type_vocab})
    text = TextEncoder(model_from_config(arch.text, config), name=arch.text, special_ids=family.special_ids)
    spec = ModelSpec(vision=arch.vision, text=arch.text, scale="paper", weights="random", hidden=arch.hidden,
                     heads=arch.heads, fusion_layers=arch.fusion_layers)
    model = MeterModel(vision, text, spec=spec, objectives=arch.objectives, tasks=arch.tasks,
                       image_size=arch.image_size)
    return model.eval()


@dataclass
class ConversionReport:
    loaded: int
    missing: list[str]  # harness tensors the checkpoint does not provide
    unknown: list[str]  # METER tensors that map to nothing here and that METER's forward reads
    unused: list[str]  # METER tensors its own forward never reads (text pooler, CLIP text leftovers)
    mismatched: list[str]  # "METER key(s) shape → harness key expects shape"


def convert_state(state: dict[str, torch.Tensor], model: torch.nn.Module
                  ) -> tuple[dict[str, torch.Tensor], ConversionReport]:
    """METER's tensors → ``model``'s state dict (harness names), with what did not fit."""
    own = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    missing, mismatched = [], []
    for key, target in own.items():
        source = meter_source(key)
        if source is None or any(k not in state for k in source.meter):
            if not _derived_buffer(key):
                missing.append(key if source is None else f"{key} (from {', '.join(source.meter)})")
            continue
        used.update(source.meter)
        value = _join(source, [state[k] for k in source.meter], tuple(target.shape))
        if value is None or tuple(value.shape) != tuple(target.shape):
            shapes = ", ".join(f"{k} {tuple(state[k].shape)}" for k in source.meter)
            mismatched.append(f"{shapes} → {key} expects {tuple(target.shape)}")
            continue
        out[key] = value.to(target.dtype).clone()
    rest = sorted(k for k in state if k not in used)
    report = ConversionReport(loaded=len(out), missing=missing, mismatched=mismatched,
                              unknown=[k for k in rest if not UNUSED_METER_KEYS.match(k)],
                              unused=[k for k in rest if UNUSED_METER_KEYS.match(k)])
    return out, report


def _derived_buffer(key: str) -> bool:
    """Buffers the model computes itself (transformers' position ids / token-type ids)."""
    return key.endswith(("embeddings.position_ids", "embeddings.token_type_ids"))


def _join(source: Source, tensors: list[torch.Tensor], shape: tuple[int, ...]) -> torch.Tensor | None:
    """METER tensor(s) → the harness tensor; None when they cannot be joined (a shape problem)."""
    try:
        if source.join == "cat":
            return torch.cat(tensors, dim=0)
        (value,) = tensors
        if source.join == "cls":
            return value.reshape(1, 1, -1)
        if source.join == "pos":
            return value.unsqueeze(0)
        if source.join == "types" and value.shape[0] == 2 and shape[0] == 3:
            return torch.cat([value, value[1:2]], dim=0)  # METER copies the image type for NLVR2's second image
        return value
    except RuntimeError:
        return None
