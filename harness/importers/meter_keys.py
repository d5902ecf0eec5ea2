"""Parameter names: this harness's METER model ↔ METER's own (zdou0830/METER) state dict.

``meter_source(harness_key)`` says which METER tensor(s) a harness tensor is made of and how:
the harness fuses the query/key/value projections into one GEMM (``qkv``, ``key_value``) where
METER keeps three Linear layers, stores CLIP's class/position embeddings with timm's leading
singleton dimensions, and keeps the MLM decoder's bias inside its Linear. Everything else is a
rename. One table serves the importer (METER → harness), the LR/weight-decay parity test
(harness parameter → METER's name, whose rule METER's ``set_schedule`` decides) and tests that
write a METER-format checkpoint from a harness model (harness → METER).

Only METER's CLIP-ViT vision tower is mapped (METER-CLIP-ViT-B is its released main model);
Swin-based METER checkpoints are refused by the importer with that reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

# How the METER tensors become the harness tensor:
#   same: one tensor, renamed;      cat: several, concatenated along dim 0 (q, k, v → qkv);
#   cls:  [W] → [1, 1, W] (timm);   pos: [N, W] → [1, N, W] (timm);
#   types: [T, H] → [3, H], a missing NLVR2 row 2 copied from row 1 as METER does.
Join = Literal["same", "cat", "cls", "pos", "types"]


@dataclass(frozen=True)
class Source:
    meter: tuple[str, ...]
    join: Join = "same"


# METER keys its forward pass never reads: the text encoder's pooler, CLIP's text-side
# leftovers kept by METER's CLIP class, and transformers' position-id buffer.
UNUSED_METER_KEYS = re.compile(
    r"^(text_transformer\.pooler\..*|text_transformer\.embeddings\.position_ids"
    r"|vit_model\.(positional_embedding|ln_final\.(weight|bias)|visual\.proj|text_projection|logit_scale))$")

_CLIP_TOP = {
    "patch_embed.proj.weight": Source(("visual.conv1.weight",)),
    "cls_token": Source(("visual.class_embedding",), "cls"),
    "pos_embed": Source(("visual.positional_embedding",), "pos"),
    "norm_pre.weight": Source(("visual.ln_pre.weight",)), "norm_pre.bias": Source(("visual.ln_pre.bias",)),
    "norm.weight": Source(("visual.ln_post.weight",)), "norm.bias": Source(("visual.ln_post.bias",)),
}
_CLIP_BLOCK = {  # timm block sub-key → OpenAI CLIP resblock sub-key
    "norm1": "ln_1", "attn.qkv.weight": "attn.in_proj_weight", "attn.qkv.bias": "attn.in_proj_bias",
    "attn.proj": "attn.out_proj", "norm2": "ln_2", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj",
}
_FUSION = {  # harness layer sub-key → METER BertCrossLayer sub-keys (several: concatenated)
    "self_attn.qkv": ("attention.self.query", "attention.self.key", "attention.self.value"),
    "self_attn.out": ("attention.output.dense",),
    "self_post.norm": ("attention.output.LayerNorm",),
    "cross_attn.query": ("crossattention.self.query",),
    "cross_attn.key_value": ("crossattention.self.key", "crossattention.self.value"),
    "cross_attn.out": ("crossattention.output.dense",),
    "cross_post.norm": ("crossattention.output.LayerNorm",),
    "ffn.up": ("intermediate.dense",),
    "ffn.down": ("output.dense",),
    "ffn.post.norm": ("output.LayerNorm",),
}
_MODULES = {  # harness module prefix → METER module prefix (plain renames)
    "inputs.text_proj": "cross_modal_text_transform",
    "inputs.image_proj": "cross_modal_image_transform",
    "text_pooler.dense": "cross_modal_text_pooler.dense",
    "image_pooler.dense": "cross_modal_image_pooler.dense",
    "heads.mlm.transform": "mlm_score.transform.dense",
    "heads.mlm.norm": "mlm_score.transform.LayerNorm",
    "heads.itm.fc": "itm_score.fc",
    "heads.retrieval.fc": "rank_output",
}
# Task MLPs: METER's nn.Sequential(Linear, LayerNorm, GELU, Linear) → fc1, norm, fc2.
_TASK_HEADS = {"vqa": "vqa_classifier", "nlvr2": "nlvr2_classifier", "snli-ve": "snli_classifier"}
_MLP_INDEX = {"fc1": "0", "norm": "1", "fc2": "3"}
HARNESS_TASK_OF_METER_HEAD = {v: k for k, v in _TASK_HEADS.items()}


def meter_source(key: str) -> Source | None:
    """The METER tensor(s) behind harness state-dict key ``key`` (None: no METER counterpart)."""
    head, _, rest = key.partition(".")
    if head == "vision" and rest.startswith("backbone."):
        return _clip(rest[len("backbone."):])
    if head == "text" and rest.startswith("backbone."):
        return Source(("text_transformer." + rest[len("backbone."):],))
    if key == "inputs.type_embed.weight":
        return Source(("token_type_embeddings.weight",), "types")
    if head == "fusion":
        return _fusion(rest)
    if key == "heads.mlm.decoder.weight":
        return Source(("mlm_score.decoder.weight",))
    if key == "heads.mlm.decoder.bias":
        return Source(("mlm_score.bias",))
    for prefix, meter in _MODULES.items():
        if key.startswith(prefix + "."):
            return Source((meter + key[len(prefix):],))
    match = re.fullmatch(r"heads\.([\w-]+)\.(fc1|norm|fc2)\.(weight|bias)", key)
    if match and match.group(1) in _TASK_HEADS:
        task, part, leaf = match.groups()
        return Source((f"{_TASK_HEADS[task]}.{_MLP_INDEX[part]}.{leaf}",))
    return None


def _clip(sub: str) -> Source | None:
    if sub in _CLIP_TOP:
        top = _CLIP_TOP[sub]
        return Source(tuple("vit_model." + k for k in top.meter), top.join)
    match = re.fullmatch(r"blocks\.(\d+)\.(.+)", sub)
    if not match:
        return None
    index, rest = match.groups()
    for timm_key, clip_key in _CLIP_BLOCK.items():
        if rest == timm_key or rest.startswith(timm_key + "."):
            return Source((f"vit_model.visual.transformer.resblocks.{index}.{clip_key}{rest[len(timm_key):]}",))
    return None


def _fusion(sub: str) -> Source | None:
    match = re.fullmatch(r"(text|image)_layers\.(\d+)\.(.+)\.(weight|bias)", sub)
    if not match:
        return None
    stream, index, module, leaf = match.groups()
    parts = _FUSION.get(module)
    if parts is None:
        return None
    prefix = f"cross_modal_{stream}_layers.{index}."
    return Source(tuple(f"{prefix}{p}.{leaf}" for p in parts), "cat" if len(parts) > 1 else "same")
