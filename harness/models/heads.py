"""Pre-training and task heads. Every head declares ``lr_group = "head"`` and starts from
METER's initialisation (normal(0, 0.02), zero bias, LayerNorm 1/0).

``pooled`` is the width of the pooled pair feature: 2H (text ⊕ image pooler) for
encoder-only models, H (the decoder's class-token output) for encoder-decoder ones.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harness.models.fusion import init_new_weights


class Head(nn.Module):
    lr_group = "head"


class MLMHead(Head):
    """BERT's prediction head: Linear + GELU + LayerNorm, then Linear to the vocabulary (not tied)."""

    def __init__(self, hidden: int, vocab_size: int) -> None:
        super().__init__()
        self.transform = nn.Linear(hidden, hidden)
        self.norm = nn.LayerNorm(hidden, eps=1e-12)
        self.decoder = nn.Linear(hidden, vocab_size)
        init_new_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.norm(F.gelu(self.transform(x))))


class ITMHead(Head):
    """Linear(pooled → 2); class 1 = the image and the text match."""

    def __init__(self, pooled: int) -> None:
        super().__init__()
        self.fc = nn.Linear(pooled, 2)
        init_new_weights(self)

    def forward(self, pooled: Tensor) -> Tensor:
        return self.fc(pooled)


class RankHead(Head):
    """Retrieval score Linear(pooled → 1); METER starts it from the ITM head's positive row."""

    def __init__(self, pooled: int) -> None:
        super().__init__()
        self.fc = nn.Linear(pooled, 1)
        init_new_weights(self)

    @torch.no_grad()
    def init_from_itm(self, itm_weight: Tensor, itm_bias: Tensor) -> None:
        self.fc.weight.copy_(itm_weight[1:2])
        self.fc.bias.copy_(itm_bias[1:2])

    def forward(self, pooled: Tensor) -> Tensor:
        return self.fc(pooled).squeeze(-1)


class ClassifierMLP(Head):
    """METER's task MLP: Linear(in → 2H), LayerNorm, GELU, Linear(→ classes).

    VQA: in = pooled, classes = answers; SNLI-VE: classes = 3; NLVR2: in = 2 × pooled
    (both image-text pairs), classes = 2.
    """

    def __init__(self, in_features: int, hidden: int, classes: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.fc2 = nn.Linear(hidden, classes)
        init_new_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.norm(self.fc1(x))))


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
    """MIM with a discrete code: fused image token → logits over the patch tokenizer's codes."""

    def __init__(self, hidden: int, num_codes: int) -> None:
        super().__init__(hidden, num_codes)


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


class SpanHead(Head):
    """Decoder output → logits over the decoder vocabulary (text vocab + sentinels)."""

    def __init__(self, hidden: int, vocab_size: int) -> None:
        super().__init__()
        self.inner = MLMHead(hidden, vocab_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.inner(x)
