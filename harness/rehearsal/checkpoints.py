"""Tiny random checkpoints saved under the real hub ids, in the Hugging Face hub cache layout.

    HUB/models--<org>--<name>/refs/main                  the snapshot's revision
    HUB/models--<org>--<name>/snapshots/<revision>/...   config.json, model.safetensors, tokenizer files

With ``HF_HUB_CACHE=HUB`` and ``HF_HUB_OFFLINE=1``, ``AutoModel.from_pretrained("roberta-base")``,
``AutoTokenizer.from_pretrained(...)`` and the timm weight lookup (``timm/<architecture>.<tag>`` repos, see
:mod:`harness.models.weights`) read these files exactly as they read the real downloads. Text checkpoints carry
their own (tiny) config, so the paper loading code builds a tiny encoder from them; timm builds the
architecture from its name, so a rehearsal passes the tiny widths (``harness.models.vision.tiny_arch``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from harness.registry import TEXT_ENCODERS, VISION_ENCODERS


def snapshot_dir(hub: Path, repo_id: str) -> Path:
    """Create ``models--org--name`` with ``refs/main`` naming a fixed revision; return its snapshot folder."""
    repo = hub / ("models--" + repo_id.replace("/", "--"))
    revision = hashlib.sha1(f"meter-harness rehearsal {repo_id}".encode()).hexdigest()
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    folder = repo / "snapshots" / revision
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def text_repos() -> dict[str, str]:
    """hub id → family, for every registered text encoder (emb-only reads bert-base-uncased)."""
    from harness.models.text import family_of

    return {TEXT_ENCODERS.get(name).meta.hf: family_of(name) for name in TEXT_ENCODERS.names()}


def vision_repos() -> dict[str, str]:
    """timm hub repo → encoder name, for every registered vision encoder."""
    from harness.models.weights import timm_hub_id

    out = {}
    for entry in VISION_ENCODERS:
        name = entry.name
        if entry.meta.timm is None:  # a plug-in's encoder built outside timm loads no timm weights
            continue
        hub_id, _ = timm_hub_id(entry.meta.timm)
        assert hub_id is not None, f"timm has no hub id for {name}"
        out[hub_id] = name
    return out


def save_text(hub: Path, repo_id: str, family: str, seed: int = 0) -> Path:
    import torch

    from harness.models.text_families import mlm_model_from_config, rehearsal_config
    from harness.rehearsal.tokenizers import save_tokenizer

    folder = snapshot_dir(hub, repo_id)
    config = rehearsal_config(family)  # the tiny zoo's widths on the published vocabulary and special ids
    torch.manual_seed(seed)
    model: Any = mlm_model_from_config(family, config)  # the masked-LM model, as published checkpoints are
    from harness.models.weights import quiet_progress

    with quiet_progress():
        model.save_pretrained(folder)
    save_tokenizer(family, folder)
    return folder


def save_vision(hub: Path, repo_id: str, name: str, seed: int = 0) -> Path:
    """The tiny architecture at its rehearsal native size, with the classifier head the published
    checkpoint has (timm drops it when the model is built with ``num_classes=0``)."""
    import timm
    import torch

    from harness.models.vision import native_image_size, timm_name, tiny_arch, vision_meta
    from harness.models.weights import save_state_dict

    folder = snapshot_dir(hub, repo_id)
    arch, kwargs = tiny_arch(name)
    cfg = timm.models.get_pretrained_cfg(timm_name(name))
    num_classes = int(getattr(cfg, "num_classes", 1000) or 1000)
    torch.manual_seed(seed)
    size = native_image_size(name, "rehearsal")
    model: torch.nn.Module
    if vision_meta(name).family == "timm-volo":
        from timm.models.volo import VOLO

        model = VOLO(img_size=size, num_classes=num_classes, **kwargs)
    else:
        model = timm.create_model(arch, pretrained=False, img_size=size, num_classes=num_classes, **kwargs)
    save_state_dict(model.state_dict(), folder / "model.safetensors")
    meta: dict[str, Any] = {"architecture": arch, "num_classes": num_classes, "rehearsal": True,
                            "model_args": {**kwargs, "img_size": size}}
    (folder / "config.json").write_text(json.dumps(meta, indent=1, default=list))
    return folder


def build_hub(hub: Path) -> dict[str, Path]:
    """Every registered encoder's tiny checkpoint under its real hub id; returns repo id → snapshot."""
    out = {repo: save_text(hub, repo, family) for repo, family in text_repos().items()}
    out.update({repo: save_vision(hub, repo, name) for repo, name in vision_repos().items()})
    return out
