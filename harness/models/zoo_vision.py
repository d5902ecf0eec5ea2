"""Tiny vision encoders pre-trained by their families' recipes (see :mod:`harness.models.zoo_catalog`):
supervised scene labels (with DeiT's strong augmentation, or ViT's larger label set), hard
distillation through DeiT's distillation token, CLIP's contrastive image–caption training against a
paired tiny text tower, and BEiT's masked-patch prediction of visual tokens."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.models.zoo_train import AttributeHeads, OnStep, normalise, run_steps

if TYPE_CHECKING:
    from harness.models.vision_families import VisionEncoder


@dataclass
class SceneSet:
    """What the vision recipes train on: images, per-image labels, the larger per-column label set,
    one caption per image (CLIP) and the zoo tokenizer (for the captions)."""

    images: np.ndarray
    labels: dict[str, np.ndarray]
    layout: dict[str, np.ndarray]
    captions: list[str]
    tokenizer: Any


def _encoder(name: str) -> Any:
    from harness.models.vision import VisionEncoder, create_backbone, native_image_size, vision_meta

    # Pre-trained in its own native form, at its family's own resolution (Swin: 96 px, the others 64);
    # METER's CLIP changes apply when the encoder is used.
    size = native_image_size(name, "tiny")
    return VisionEncoder(create_backbone(name, "tiny", size), name=name, family=vision_meta(name).family,
                         clip_meter_style=False, image_size=size)


def _augment(x: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, float]:
    """DeiT-style strong augmentation that keeps the scene labels true: small shifts (columns stay
    apart), pixel noise, and mixup (λ ~ Beta(0.8, 0.8), labels mixed by λ). → (images, partner, λ)."""
    shift = torch.randint(-4, 5, (2,), generator=g).tolist()
    x = torch.roll(x, shifts=(shift[0], shift[1]), dims=(2, 3))
    x = x + 0.1 * torch.randn(x.shape, generator=g)
    lam = float(np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=g))).beta(0.8, 0.8))
    partner = torch.randperm(x.shape[0], generator=g)
    return lam * x + (1 - lam) * x[partner], partner, lam


def _mixed_loss(heads: AttributeHeads, pooled: torch.Tensor, targets: dict[str, torch.Tensor],
                partner: torch.Tensor, lam: float) -> tuple[torch.Tensor, float]:
    loss, acc = heads.loss(pooled, targets)
    if lam >= 1.0:
        return loss, acc
    other, _ = heads.loss(pooled, {k: v[partner] for k, v in targets.items()})
    return lam * loss + (1 - lam) * other, acc


def train_supervised(name: str, recipe: dict[str, Any], data: SceneSet, *, steps: int, batch: int, lr: float,
                     seed: int, on_step: OnStep | None = None,
                     teacher: tuple[VisionEncoder, AttributeHeads] | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Supervised scene labels from the pooled token (+ hard distillation from ``teacher`` through the
    distillation token when the recipe is ``distilled``). Returns (backbone, stats incl. the heads)."""
    from harness.models.vision_families import vision_meta

    torch.manual_seed(seed)
    encoder = _encoder(name)
    labels = {**data.labels, **data.layout} if recipe["labels"] == "attributes+layout" else data.labels
    heads = AttributeHeads(encoder.width, labels)
    dist_heads = AttributeHeads(encoder.width, data.labels) if teacher is not None else None
    meta = vision_meta(name)
    pixels = normalise(data.images, meta.mean, meta.std)
    targets = {k: torch.from_numpy(v).long() for k, v in labels.items()}
    g = torch.Generator().manual_seed(seed)
    strong = recipe["augment"] == "strong"

    def step() -> tuple[torch.Tensor, float]:
        idx = torch.randint(0, len(pixels), (batch,), generator=g)
        x, partner, lam = _augment(pixels[idx], g) if strong else (pixels[idx], torch.arange(batch), 1.0)
        tokens = encoder(x)
        batch_targets = {k: v[idx] for k, v in targets.items()}
        loss, acc = _mixed_loss(heads, encoder.pooled(tokens), batch_targets, partner, lam)
        if teacher is None or dist_heads is None:
            return loss, acc
        with torch.no_grad():  # DeiT's hard distillation: the teacher's decisions are the targets
            t_encoder, t_heads = teacher
            hard = t_heads.decide(t_encoder.pooled(t_encoder(x)))
        dist, _ = dist_heads.loss(tokens[:, 1], hard)
        return 0.5 * loss + 0.5 * dist, acc

    params = [*encoder.parameters(), *heads.parameters(), *(dist_heads.parameters() if dist_heads else [])]
    stats: dict[str, Any] = run_steps(encoder, step, steps=steps, lr=lr, on_step=on_step, params=params)
    stats["heads"] = heads
    return encoder.backbone, stats


class CaptionTower(nn.Module):
    """CLIP's text tower at zoo size: embeddings, one transformer layer, mean pool, projection."""

    def __init__(self, vocab: int, width: int, layers: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.pos = nn.Parameter(torch.zeros(1, 64, width))
        layer = nn.TransformerEncoderLayer(width, 4, 2 * width, dropout=0.0, batch_first=True)
        self.body = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.proj = nn.Linear(width, width)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.body(self.embed(ids) + self.pos[:, : ids.shape[1]], src_key_padding_mask=mask == 0)
        m = mask.unsqueeze(-1).float()
        return self.proj((x * m).sum(1) / m.sum(1))


def train_contrastive(name: str, recipe: dict[str, Any], data: SceneSet, *, steps: int, batch: int, lr: float,
                      seed: int, on_step: OnStep | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """CLIP: symmetric InfoNCE between the image's pooled token and its caption, in-batch negatives,
    a learnable temperature; the text tower is discarded after."""
    from harness.models.vision_families import vision_meta

    torch.manual_seed(seed)
    encoder = _encoder(name)
    tower = CaptionTower(len(data.tokenizer), encoder.width, int(recipe["text_layers"]))
    image_proj = nn.Linear(encoder.width, encoder.width)
    scale = nn.Parameter(torch.tensor(math.log(1 / float(recipe["temperature"]))))
    meta = vision_meta(name)
    pixels = normalise(data.images, meta.mean, meta.std)
    enc = data.tokenizer(data.captions, padding=True, truncation=True, max_length=32, return_tensors="pt")
    g = torch.Generator().manual_seed(seed)

    def step() -> tuple[torch.Tensor, float]:
        idx = torch.randint(0, len(pixels), (batch,), generator=g)
        image = F.normalize(image_proj(encoder.pooled(encoder(pixels[idx]))), dim=-1)
        text = F.normalize(tower(enc["input_ids"][idx], enc["attention_mask"][idx]), dim=-1)
        logits = scale.exp().clamp(max=100) * image @ text.t()
        target = torch.arange(batch)
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2
        return loss, float((logits.argmax(-1) == target).float().mean())

    params = [*encoder.parameters(), *tower.parameters(), *image_proj.parameters(), scale]
    stats = run_steps(encoder, step, steps=steps, lr=lr, on_step=on_step, params=params)
    return encoder.backbone, stats


def visual_tokens(images: np.ndarray, patch: int) -> torch.Tensor:
    """BEiT's targets: each patch's visual token, here the nearest entry of a fixed codebook (the
    background and the scene colours) to the patch's mean colour. → Long[N, patches]."""
    from harness.data.synthetic import RGB

    codebook = torch.cat([torch.tensor([[30.0, 30.0, 30.0]]), torch.from_numpy(RGB).float()])
    x = torch.from_numpy(images).float().permute(0, 3, 1, 2)
    means = F.avg_pool2d(x, patch).flatten(2).transpose(1, 2)  # [N, patches, 3]
    return torch.cdist(means, codebook.expand(len(means), -1, -1)).argmin(-1)


def train_masked_patches(name: str, recipe: dict[str, Any], data: SceneSet, *, steps: int, batch: int,
                         lr: float, seed: int, on_step: OnStep | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """BEiT: blank a share of the patches and predict their visual tokens from the output tokens."""
    from harness.models.vision_families import vision_meta

    torch.manual_seed(seed)
    encoder = _encoder(name)
    meta = vision_meta(name)
    pixels = normalise(data.images, meta.mean, meta.std)
    patch = int(encoder.backbone.patch_embed.patch_size[0])
    codes = visual_tokens(data.images, patch)
    head = nn.Linear(encoder.width, int(codes.max()) + 1)
    grid = pixels.shape[-1] // patch
    g = torch.Generator().manual_seed(seed)

    def step() -> tuple[torch.Tensor, float]:
        idx = torch.randint(0, len(pixels), (batch,), generator=g)
        masked = torch.rand(batch, grid * grid, generator=g) < float(recipe["mask_ratio"])
        keep = (~masked).float().view(batch, 1, grid, grid)
        x = pixels[idx] * F.interpolate(keep, scale_factor=patch, mode="nearest")
        tokens = encoder(x)[:, encoder.num_prefix_tokens:]
        logits = head(tokens[masked])
        target = codes[idx][masked]
        return F.cross_entropy(logits, target), float((logits.argmax(-1) == target).float().mean())

    stats = run_steps(encoder, step, steps=steps, lr=lr, on_step=on_step,
                      params=[*encoder.parameters(), *head.parameters()])
    return encoder.backbone, stats
