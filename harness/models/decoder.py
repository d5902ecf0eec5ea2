"""The decoder of the "encoder-decoder" architecture (METER's ablation; its code has none).

A post-LN transformer decoder: token + position embeddings, then per layer causal
self-attention, cross-attention to the fusion output ([text; image] concatenated, padding
masked) and FFN. Span corruption trains it as a language model over the decoder
vocabulary; ITM and the tasks feed it the single class token and read its output.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from harness.models.fusion import AttnImpl, TransformerLayer, init_new_weights, key_padding_bias


class FusionDecoder(nn.Module):
    lr_group = "random"

    def __init__(
        self,
        hidden: int,
        heads: int,
        layers: int,
        vocab_size: int,
        dropout: float = 0.1,
        max_len: int = 128,
        attn_impl: AttnImpl = "sdpa",
    ) -> None:
        super().__init__()
        self.max_len = max_len
        self.token_embed = nn.Embedding(vocab_size, hidden)
        self.pos_embed = nn.Embedding(max_len, hidden)
        self.embed_norm = nn.LayerNorm(hidden, eps=1e-12)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            TransformerLayer(hidden, heads, dropout, cross=True, attn_impl=attn_impl) for _ in range(layers)
        )
        init_new_weights(self)

    def forward(
        self,
        input_ids: Tensor,
        memory: Tensor,
        memory_mask: Tensor | None,
        attention_mask: Tensor | None = None,
    ) -> Tensor:
        """input_ids Long[B, T], memory Float[B, M, H] → Float[B, T, H] (causal)."""
        length = input_ids.shape[1]
        if length > self.max_len:
            raise ValueError(f"decoder input of {length} tokens exceeds its {self.max_len} positions")
        positions = torch.arange(length, device=input_ids.device)
        x = self.dropout(self.embed_norm(self.token_embed(input_ids) + self.pos_embed(positions)))
        self_bias = key_padding_bias(attention_mask, x.dtype)
        memory_bias = key_padding_bias(memory_mask, x.dtype)
        for layer in self.layers:
            x = layer(x, self_bias, memory, memory_bias, causal=True)
        return x
