"""Masked image modelling helpers: patch grid, masking, and the discrete patch tokenizer.

Masking happens on pixels (a masked patch is set to 0, the normalised mean), so it works
with every vision encoder, including Swin whose tokens are not one-to-one with input
patches. The MIM patch grid is the encoder's *output* token grid: with N output tokens,
the last g×g (g = ⌊√N⌋) are the patch tokens in raster order and any leading extra tokens
(CLS, distillation) are skipped; a patch is then image_size / g pixels wide.

Discrete code MIM needs a discrete image tokenizer. METER used DALL-E's dVAE; nothing may
be downloaded here, so ``KMeansPatchTokenizer`` — a k-means codebook fitted offline on
training patches — is the documented stand-in. A real tokenizer plugs in through the
``PatchTokenizer`` protocol (``num_codes`` and ``encode``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class PatchGrid:
    grid: int  # patches per side
    patch: int  # pixels per patch side
    extra_tokens: int  # leading encoder tokens that are not patches

    @property
    def num_patches(self) -> int:
        return self.grid * self.grid

    @property
    def patch_dim(self) -> int:
        return 3 * self.patch * self.patch


def patch_grid(num_tokens: int, image_size: int) -> PatchGrid:
    grid = math.isqrt(num_tokens)
    if grid < 1 or num_tokens - grid * grid > 2 or image_size % grid:
        raise ValueError(f"cannot map {num_tokens} encoder tokens onto a square patch grid of a {image_size}px image")
    return PatchGrid(grid, image_size // grid, num_tokens - grid * grid)


def patchify(pixel_values: Tensor, patch: int) -> Tensor:
    """Float[B, 3, H, W] → Float[B, (H/p)(W/p), 3·p·p] in raster order."""
    b, c, h, w = pixel_values.shape
    x = pixel_values.reshape(b, c, h // patch, patch, w // patch, patch)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(b, (h // patch) * (w // patch), c * patch * patch)


def random_patch_mask(batch: int, num_patches: int, prob: float, device: torch.device) -> Tensor:
    """Bool[B, P]: round(prob·P) patches per image (at least one), chosen uniformly."""
    count = max(1, round(prob * num_patches))
    order = torch.rand(batch, num_patches, device=device).argsort(dim=1)
    mask = torch.zeros(batch, num_patches, dtype=torch.bool, device=device)
    mask.scatter_(1, order[:, :count], True)
    return mask


def mask_pixels(pixel_values: Tensor, mask: Tensor, patch: int) -> Tensor:
    """Zero (the normalised mean) the pixels of masked patches; Bool mask [B, grid²]."""
    b, _, h, w = pixel_values.shape
    grid_mask = mask.view(b, 1, h // patch, w // patch).to(pixel_values.dtype)
    pixel_mask = grid_mask.repeat_interleave(patch, dim=2).repeat_interleave(patch, dim=3)
    return pixel_values * (1.0 - pixel_mask)


@runtime_checkable
class PatchTokenizer(Protocol):
    """Maps raw patches to discrete codes. Plug a real one (e.g. a dVAE) in through this."""

    num_codes: int

    def encode(self, patches: Tensor) -> Tensor:
        """Float[..., patch_dim] → Long[...] codes in [0, num_codes)."""
        ...


class KMeansPatchTokenizer(nn.Module):
    """k-means codebook over patch pixels (stand-in for DALL-E's tokenizer).

    The codebook is a buffer, so it is saved with the model's weights and a fine-tuning
    job or a resumed run reads the very codebook pre-training used. Fit it on training
    patches before training (``fit``); the model fits it on the first batch otherwise.
    """

    lr_group = "head"  # holds no parameters; declared so the group walk stays total
    codebook: Tensor
    fitted: Tensor

    def __init__(self, num_codes: int, patch_dim: int) -> None:
        super().__init__()
        self.num_codes = num_codes
        self.register_buffer("codebook", torch.zeros(num_codes, patch_dim))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    @property
    def is_fitted(self) -> bool:
        return bool(self.fitted)

    @torch.no_grad()
    def fit(self, patches: Tensor, iters: int = 20, seed: int = 0) -> KMeansPatchTokenizer:
        """Lloyd's k-means (k-means++ seeding) on Float[M, patch_dim] patches."""
        data = patches.reshape(-1, patches.shape[-1]).float()
        generator = torch.Generator(device="cpu").manual_seed(seed)
        centres = _kmeans_pp(data, self.num_codes, generator)
        for _ in range(iters):
            assign = torch.cdist(data, centres).argmin(dim=1)
            sums = torch.zeros_like(centres).index_add_(0, assign, data)
            counts = torch.bincount(assign, minlength=self.num_codes).unsqueeze(1)
            # An empty cluster keeps its old centre instead of collapsing to zero.
            centres = torch.where(counts > 0, sums / counts.clamp_min(1), centres)
        self.codebook.copy_(centres.to(self.codebook.dtype))
        self.fitted.fill_(True)
        return self

    @torch.no_grad()
    def encode(self, patches: Tensor) -> Tensor:
        if not self.is_fitted:
            raise RuntimeError("the k-means patch tokenizer is not fitted; call fit(patches) on training patches")
        flat = patches.reshape(-1, patches.shape[-1]).to(self.codebook.dtype)
        return torch.cdist(flat, self.codebook).argmin(dim=1).view(patches.shape[:-1])


def _kmeans_pp(data: Tensor, k: int, generator: torch.Generator) -> Tensor:
    """k-means++ seeding; repeats points when there are fewer distinct points than codes."""
    first = torch.randint(len(data), (1,), generator=generator)
    centres = [data[first]]
    dist = torch.cdist(data, centres[0]).squeeze(1) ** 2
    for _ in range(1, k):
        probs = dist / dist.sum() if dist.sum() > 0 else torch.full_like(dist, 1.0 / len(dist))
        pick = torch.multinomial(probs.cpu(), 1, generator=generator)
        centres.append(data[pick])
        dist = torch.minimum(dist, torch.cdist(data, centres[-1]).squeeze(1) ** 2)
    return torch.cat(centres, dim=0)
