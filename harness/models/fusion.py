"""Cross-modal fusion: co-attention and merged attention, plus what sits around them.

Both fusions take the projected text and image sequences with their padding masks and
return the two fused sequences: ``fusion(text, text_mask, image, image_mask) -> (text, image)``.
Layers are post-LN as in BERT (residual add, then LayerNorm). Attention goes through
``scaled_dot_product_attention``; ``attn_impl="eager"`` is the plain matmul-softmax version of
the same computation, kept for the benchmark and as a numerical reference.

Also here: ``ModalityInput`` (projection to the fusion width + modality-type embedding) and
``Pooler`` (one token → Linear + Tanh). Every module declares ``lr_group = "random"``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

AttnImpl = Literal["sdpa", "eager"]
INIT_STD = 0.02
REFERENCE_WIDTH = 768  # METER's fusion width, at which normal(0, 0.02) is the paper's initialisation


def init_std(width: int) -> float:
    """The initial weight std of new modules at fusion width ``width``: METER's 0.02 at 768, scaled
    by sqrt(768 / width) below it. With 0.02 at width 64 the projected image tokens are so small
    that cross-attention hardly moves the text stream (1.5 % of its norm) and ITM stayed at chance
    for 1,000 steps; scaled (0.069), ITM learns within 300. At the paper's width nothing changes."""
    return INIT_STD * math.sqrt(REFERENCE_WIDTH / width)


def init_new_weights(module: nn.Module, std: float = INIT_STD) -> None:
    """METER's initialisation for new modules: normal(0, std), zero biases, LayerNorm 1/0."""
    for sub in module.modules():
        if isinstance(sub, (nn.Linear, nn.Embedding)):
            nn.init.normal_(sub.weight, mean=0.0, std=std)
            if isinstance(sub, nn.Linear) and sub.bias is not None:
                nn.init.zeros_(sub.bias)
        elif isinstance(sub, nn.LayerNorm):
            nn.init.ones_(sub.weight)
            nn.init.zeros_(sub.bias)


def key_padding_bias(mask: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    """Long/bool [B, Lk] (1 = real token) → additive bias [B, 1, 1, Lk] for attention; None without a
    mask. Whether anything is padded is not looked at: that would wait for the device in every step.
    Image tokens are never padded, and ``MeterModel.fuse`` passes no mask for them, so SDPA takes its
    mask-free kernel there.
    """
    if mask is None:
        return None
    bias = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
    bias = bias.masked_fill(~mask.bool(), torch.finfo(dtype).min)
    return bias[:, None, None, :]


class Attention(nn.Module):
    """Multi-head attention of ``x`` over ``context``.

    Self-attention projects q, k, v with one fused GEMM (``qkv``); cross-attention projects
    q from ``x`` and k, v from the context with one fused GEMM (``key_value``).
    """

    def __init__(
        self, hidden: int, heads: int, dropout: float, attn_impl: AttnImpl = "sdpa", cross: bool = False
    ) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"fusion width {hidden} is not divisible by {heads} heads")
        self.heads, self.head_dim, self.attn_impl, self.cross = heads, hidden // heads, attn_impl, cross
        if cross:
            self.query = nn.Linear(hidden, hidden)
            self.key_value = nn.Linear(hidden, 2 * hidden)
        else:
            self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.dropout = dropout

    def _split(self, x: Tensor, parts: int) -> tuple[Tensor, ...]:
        """[B, N, parts·H] → parts × [B, heads, N, head_dim]."""
        b, n, _ = x.shape
        x = x.view(b, n, parts, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return tuple(x.unbind(0))

    def forward(self, x: Tensor, context: Tensor, bias: Tensor | None, causal: bool = False) -> Tensor:
        if self.cross:
            (q,) = self._split(self.query(x), 1)
            k, v = self._split(self.key_value(context), 2)
        else:
            q, k, v = self._split(self.qkv(x), 3)
        p = self.dropout if self.training else 0.0
        if causal:
            bias = _add_causal(bias, q.shape[2], k.shape[2], q.dtype, q.device)
        if self.attn_impl == "sdpa":
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p)
        else:
            scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)
            if bias is not None:
                scores = scores + bias
            y = F.dropout(scores.softmax(-1), p, self.training) @ v
        b, _, n, _ = y.shape
        return self.out(y.transpose(1, 2).reshape(b, n, -1))


def _add_causal(bias: Tensor | None, lq: int, lk: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    causal = torch.ones(lq, lk, dtype=torch.bool, device=device).tril()
    extra = torch.zeros(lq, lk, dtype=dtype, device=device).masked_fill(~causal, torch.finfo(dtype).min)
    # Clamp: two finfo.min terms would overflow to -inf and a fully masked row would turn NaN.
    return extra[None, None] if bias is None else (bias + extra[None, None]).clamp_min(torch.finfo(dtype).min)


class Residual(nn.Module):
    """Post-LN residual block around a sub-layer output: LN(x + dropout(y))."""

    def __init__(self, hidden: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden, eps=1e-12)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.norm(x + self.dropout(y))


class FeedForward(nn.Module):
    def __init__(self, hidden: int, dropout: float) -> None:
        super().__init__()
        self.up = nn.Linear(hidden, 4 * hidden)
        self.down = nn.Linear(4 * hidden, hidden)
        self.post = Residual(hidden, dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.post(x, self.down(F.gelu(self.up(x))))


class TransformerLayer(nn.Module):
    """Self-attention, optional cross-attention to a context, FFN — each post-LN (BERT layer)."""

    def __init__(self, hidden: int, heads: int, dropout: float, cross: bool, attn_impl: AttnImpl = "sdpa") -> None:
        super().__init__()
        self.self_attn = Attention(hidden, heads, dropout, attn_impl)
        self.self_post = Residual(hidden, dropout)
        self.cross_attn = Attention(hidden, heads, dropout, attn_impl, cross=True) if cross else None
        self.cross_post = Residual(hidden, dropout) if cross else None
        self.ffn = FeedForward(hidden, dropout)

    def forward(
        self,
        x: Tensor,
        self_bias: Tensor | None,
        context: Tensor | None = None,
        context_bias: Tensor | None = None,
        causal: bool = False,
    ) -> Tensor:
        x = self.self_post(x, self.self_attn(x, x, self_bias, causal=causal))
        if self.cross_attn is not None and self.cross_post is not None:
            assert context is not None, "a cross-attention layer needs a context"
            x = self.cross_post(x, self.cross_attn(x, context, context_bias))
        return self.ffn(x)


class CoAttentionFusion(nn.Module):
    """METER's co-attention: per layer and modality, self-attn → cross-attn to the other → FFN.

    The two streams update in parallel: each layer's cross-attention reads the *other*
    modality's output of the previous layer, never the half-updated one.
    """

    lr_group = "random"

    def __init__(
        self, hidden: int, heads: int, layers: int, dropout: float = 0.1, attn_impl: AttnImpl = "sdpa"
    ) -> None:
        super().__init__()
        self.text_layers = nn.ModuleList(
            TransformerLayer(hidden, heads, dropout, cross=True, attn_impl=attn_impl) for _ in range(layers)
        )
        self.image_layers = nn.ModuleList(
            TransformerLayer(hidden, heads, dropout, cross=True, attn_impl=attn_impl) for _ in range(layers)
        )
        init_new_weights(self)

    def forward(
        self, text: Tensor, text_mask: Tensor | None, image: Tensor, image_mask: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        text_bias, image_bias = key_padding_bias(text_mask, text.dtype), key_padding_bias(image_mask, image.dtype)
        for text_layer, image_layer in zip(self.text_layers, self.image_layers, strict=True):
            new_text = text_layer(text, text_bias, image, image_bias)
            new_image = image_layer(image, image_bias, text, text_bias)
            text, image = new_text, new_image
        return text, image


class MergedAttentionFusion(nn.Module):
    """Self-attention layers over the concatenated [text; image] sequence, split back at the end.

    ``layers`` is the total depth (the ModelSpec's ``fusion_layers``); the width and FFN
    ratio are the co-attention's, so the two compare at one width budget.
    """

    lr_group = "random"

    def __init__(
        self, hidden: int, heads: int, layers: int, dropout: float = 0.1, attn_impl: AttnImpl = "sdpa"
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TransformerLayer(hidden, heads, dropout, cross=False, attn_impl=attn_impl) for _ in range(layers)
        )
        init_new_weights(self)

    def forward(
        self, text: Tensor, text_mask: Tensor | None, image: Tensor, image_mask: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        n_text = text.shape[1]
        x = torch.cat([text, image], dim=1)
        mask = None
        if text_mask is not None or image_mask is not None:
            mask = torch.cat([_ones_if_none(text_mask, text), _ones_if_none(image_mask, image)], dim=1)
        bias = key_padding_bias(mask, x.dtype)
        for layer in self.layers:
            x = layer(x, bias)
        return x[:, :n_text], x[:, n_text:]


def _ones_if_none(mask: Tensor | None, x: Tensor) -> Tensor:
    return torch.ones(x.shape[:2], dtype=torch.long, device=x.device) if mask is None else mask.long()


class ModalityInput(nn.Module):
    """Encoder features → fusion width (Linear), plus a modality-type embedding.

    Types: 0 text, 1 image, 2 second image (NLVR2; ``init_second_image`` copies row 1 into it).
    """

    lr_group = "random"
    NUM_TYPES = 3

    def __init__(self, text_width: int, image_width: int, hidden: int) -> None:
        super().__init__()
        self.text_proj = nn.Linear(text_width, hidden)
        self.image_proj = nn.Linear(image_width, hidden)
        self.type_embed = nn.Embedding(self.NUM_TYPES, hidden)
        # METER's set_schedule: "token_type_embeddings" holds no "cross_modal", so it trains at the base LR.
        self.type_embed.meter_lr_group = "pretrained"  # type: ignore[assignment]
        init_new_weights(self)
        self.init_second_image()

    @torch.no_grad()
    def init_second_image(self) -> None:
        self.type_embed.weight[2].copy_(self.type_embed.weight[1])

    def text(self, feats: Tensor) -> Tensor:
        return self.text_proj(feats) + self.type_embed.weight[0]

    def image(self, feats: Tensor, type_id: int = 1) -> Tensor:
        return self.image_proj(feats) + self.type_embed.weight[type_id]


class Pooler(nn.Module):
    """One token (index) or the masked mean (index None) → Linear + Tanh."""

    lr_group = "random"

    def __init__(self, hidden: int, index: int | None) -> None:
        super().__init__()
        self.index = index
        self.dense = nn.Linear(hidden, hidden)
        init_new_weights(self)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if self.index is not None:
            token = x[:, self.index]
        elif mask is None:
            token = x.mean(dim=1)
        else:
            weights = mask.to(x.dtype).unsqueeze(-1)
            token = (x * weights).sum(1) / weights.sum(1).clamp_min(1.0)
        return torch.tanh(self.dense(token))
