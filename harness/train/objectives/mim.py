"""Masked image modelling, three variants sharing one masking step: a share of the patches
(``pretrain.mim_prob``) is zeroed in the pixels, and the fused image tokens at those patches
predict the clean patch — by regression (ViLT), as a discrete code (METER's dVAE; here a
k-means codebook, ``harness.models.mim``), or by picking it among all patches of the batch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harness.models import mim
from harness.models.fusion import init_new_weights
from harness.models.heads import Head
from harness.train.plugin import Objective

if TYPE_CHECKING:
    from harness.models.meter import MeterModel

DEFAULT_MIM_CODES = 512


class PatchRegressionHead(Head):
    """MIM (ViLT's variant): fused image token → the masked patch's normalised pixels."""

    def __init__(self, hidden: int, patch_dim: int) -> None:
        super().__init__()
        self.transform = nn.Linear(hidden, hidden)
        self.norm = nn.LayerNorm(hidden, eps=1e-12)
        self.out = nn.Linear(hidden, patch_dim)
        init_new_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.norm(F.gelu(self.transform(x))))


class PatchCodeHead(PatchRegressionHead):
    """MIM with a discrete code: fused image token → logits over the patch tokenizer's codes.

    The tokenizer (a buffer-only module) lives in the head, so its codebook is saved with the
    weights and a resumed run reads the very codebook it was trained with."""

    def __init__(self, hidden: int, num_codes: int, patch_dim: int) -> None:
        super().__init__(hidden, num_codes)
        self.tokenizer: mim.PatchTokenizer = mim.KMeansPatchTokenizer(num_codes, patch_dim)


class InBatchNegativesHead(Head):
    """MIM contrastive: score a masked token's prediction against every patch in the batch.

    The prediction and each candidate patch's pixels are embedded into one space; the loss
    is cross-entropy over candidates with the original patch as the target.
    """

    def __init__(self, hidden: int, patch_dim: int) -> None:
        super().__init__()
        self.predict = PatchRegressionHead(hidden, hidden)
        self.patch_embed = nn.Linear(patch_dim, hidden)
        init_new_weights(self)

    def forward(self, tokens: Tensor, candidates: Tensor) -> Tensor:
        """tokens Float[M, H] (fused, at masked patches), candidates Float[C, patch_dim] → logits [M, C]."""
        query = F.normalize(self.predict(tokens), dim=-1)
        keys = F.normalize(self.patch_embed(candidates), dim=-1)
        return query @ keys.t() / 0.07  # temperature as in CLIP/MoCo; cosine logits alone train slowly


class MaskedImageModelling(Objective):
    """The shared masking step; subclasses build the head and score the masked patches."""

    def loss(self, model: MeterModel, sub: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
        pixels = sub["pixel_values"]
        grid = model.patch_grid()
        if pixels.shape[-1] != grid.grid * grid.patch:
            raise ValueError(f"MIM heads were built for {grid.grid * grid.patch}px images; got {pixels.shape[-1]}px")
        masked = mim.random_patch_mask(pixels.shape[0], grid.num_patches, model.mim_prob, pixels.device)
        image = model.encode_image(mim.mask_pixels(pixels, masked, grid.patch))
        _, fused_image = model.fuse(image, model.encode_text(sub["input_ids"], sub["attention_mask"]))
        queries = fused_image[:, grid.extra_tokens:][masked]  # Float[M, H], the masked patches' tokens
        patches = mim.patchify(pixels, grid.patch)  # the clean pixels are the targets
        return self.score(model.heads[self.name], queries, patches, masked)

    def score(self, head: Any, queries: Tensor, patches: Tensor, masked: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError


class PatchRegression(MaskedImageModelling):
    def build_head(self, model: MeterModel, info: Mapping[str, Any]) -> nn.Module:
        return PatchRegressionHead(model.spec.hidden, model.patch_grid().patch_dim)

    def score(self, head: Any, queries: Tensor, patches: Tensor, masked: Tensor) -> tuple[Tensor, Tensor]:
        predicted = head(queries)
        return F.mse_loss(predicted, patches[masked].to(predicted.dtype)), predicted


class DiscreteCode(MaskedImageModelling):
    def build_head(self, model: MeterModel, info: Mapping[str, Any]) -> nn.Module:
        return PatchCodeHead(model.spec.hidden, DEFAULT_MIM_CODES, model.patch_grid().patch_dim)

    def score(self, head: Any, queries: Tensor, patches: Tensor, masked: Tensor) -> tuple[Tensor, Tensor]:
        tokenizer = head.tokenizer
        if isinstance(tokenizer, mim.KMeansPatchTokenizer) and not tokenizer.is_fitted:
            tokenizer.fit(patches.detach().flatten(0, 1))  # fallback; fit on training patches beforehand
        logits = head(queries)
        return F.cross_entropy(logits, tokenizer.encode(patches[masked])), logits


class InBatchNegatives(MaskedImageModelling):
    def build_head(self, model: MeterModel, info: Mapping[str, Any]) -> nn.Module:
        return InBatchNegativesHead(model.spec.hidden, model.patch_grid().patch_dim)

    def score(self, head: Any, queries: Tensor, patches: Tensor, masked: Tensor) -> tuple[Tensor, Tensor]:
        # Every patch of every image in the batch is a candidate.
        logits = head(queries, patches.flatten(0, 1).to(queries.dtype))
        return F.cross_entropy(logits, masked.flatten().nonzero().squeeze(1)), logits


@torch.no_grad()
def fit_patch_tokenizer(model: MeterModel, pixel_values: Tensor, iters: int = 20, seed: int = 0,
                        name: str = "mim-discrete-code") -> None:
    """Fit the k-means MIM tokenizer on training images (Float[N, 3, H, W], normalised) before training."""
    tokenizer = getattr(model.heads[name], "tokenizer", None) if name in model.heads else None
    if not isinstance(tokenizer, mim.KMeansPatchTokenizer):
        raise ValueError(f"fit_patch_tokenizer needs a model built with the '{name}' objective")
    tokenizer.fit(mim.patchify(pixel_values, model.patch_grid().patch).flatten(0, 1), iters=iters, seed=seed)
