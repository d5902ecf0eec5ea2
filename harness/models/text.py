"""Text encoders: BERT, RoBERTa, ELECTRA, ALBERT, DeBERTa (transformers) and an embedding-only encoder.

``build_text_encoder(name, spec=...)`` gives a module whose ``forward(input_ids, attention_mask)``
returns Float[B, L, D] token features. Paper scale: the published ``*-base`` architecture (configs
written here, so ``weights: random`` needs no network); weights from ``weights_dir`` or the HF cache.
Tiny scale: the same family at width 64, 2 layers, MLM-pre-trained in the tiny zoo with the zoo's
word-level tokenizer. ``emb-only`` is BERT's embedding layer alone (word + position + LayerNorm).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from harness.models.config import ModelSpec
from harness.models.precision import run_in_fp32
from harness.models.text_families import model_from_config, paper_config, rehearsal_config, text_family, tiny_config
from harness.registry import TEXT_ENCODERS
from harness.registry_meta import TextMeta


def text_meta(name: str) -> TextMeta:
    return TEXT_ENCODERS.get(name).meta


def family_of(name: str) -> str:
    """The transformers family of a text encoder (its catalog line says; ``emb-only`` is BERT's)."""
    return text_meta(name).family  # unknown names raise with a suggestion


class TextEncoder(nn.Module):
    """A transformers encoder read out as its last hidden states."""

    lr_group = "pretrained"

    def __init__(self, backbone: Any, *, name: str, special_ids: tuple[int, int]) -> None:
        super().__init__()
        self.name = name
        self.backbone = backbone
        self.width: int = int(backbone.config.hidden_size)
        self.vocab_size: int = int(backbone.config.vocab_size)
        self.mask_token_id, self.pad_token_id = special_ids

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


class EmbeddingEncoder(nn.Module):
    """Word + position embeddings and LayerNorm, no transformer layers (the paper's "no text encoder"
    ablation). Initialised from BERT's embedding layer; BERT's token-type-0 vector is folded into the
    position table, so the output equals BERT's embedding output for single-segment text."""

    lr_group = "pretrained"

    def __init__(self, vocab_size: int, width: int, max_positions: int, eps: float, dropout: float,
                 special_ids: tuple[int, int]) -> None:
        super().__init__()
        self.mask_token_id, self.pad_token_id = special_ids
        self.name = "emb-only"  # the catalog's name of the embeddings-only encoder
        self.word_embeddings = nn.Embedding(vocab_size, width)
        self.position_embeddings = nn.Embedding(max_positions, width)
        self.norm = nn.LayerNorm(width, eps=eps)
        self.dropout = nn.Dropout(dropout)
        self.width = width
        self.vocab_size = vocab_size

    @classmethod
    def from_bert(cls, bert: Any, special_ids: tuple[int, int]) -> EmbeddingEncoder:
        emb, cfg = bert.embeddings, bert.config
        enc = cls(cfg.vocab_size, cfg.hidden_size, cfg.max_position_embeddings, cfg.layer_norm_eps,
                  cfg.hidden_dropout_prob, special_ids)
        with torch.no_grad():
            enc.word_embeddings.weight.copy_(emb.word_embeddings.weight)
            enc.position_embeddings.weight.copy_(emb.position_embeddings.weight + emb.token_type_embeddings.weight[0])
            enc.norm.load_state_dict(emb.LayerNorm.state_dict())
        return enc

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions)[None]
        return self.dropout(self.norm(x))


def build_text_encoder(name: str, *, spec: ModelSpec) -> nn.Module:
    """The text encoder ``name``: a :class:`TextEncoder`, or :class:`EmbeddingEncoder` for ``emb-only``."""
    family = family_of(name)
    backbone = _backbone(family, spec)
    run_in_fp32(backbone, text_family(family).fp32_modules)
    special = _special_ids(family, spec)
    if text_meta(name).embeddings_only:
        return EmbeddingEncoder.from_bert(backbone, special)
    return TextEncoder(backbone, name=name, special_ids=special)


def _special_ids(family: str, spec: ModelSpec) -> tuple[int, int]:
    """(mask, pad) token ids: the zoo tokenizer's for tiny, the published tokenizer's for paper scale."""
    if spec.scale == "tiny":
        tokenizer = load_tokenizer(spec)
        return int(tokenizer.mask_token_id), int(tokenizer.pad_token_id)
    return text_family(family).special_ids


def _backbone(family: str, spec: ModelSpec) -> nn.Module:
    if spec.scale == "tiny" and spec.weights == "random":
        config = tiny_config(family, load_tokenizer(spec))
        # model.dropout governs the whole tiny model, as it does for the zoo's weights below.
        config.hidden_dropout_prob = config.attention_probs_dropout_prob = spec.dropout
        return model_from_config(family, config)
    if spec.weights == "random":  # a rehearsal's checkpoints carry its own (tiny) config: count and build that
        config = rehearsal_config(family) if spec.scale == "rehearsal" else paper_config(family)
        return model_from_config(family, config)
    from harness.models.weights import load_hf_model, quiet_progress

    init_kwargs = text_family(family).init_kwargs
    if spec.scale == "tiny":
        from transformers import AutoModel

        from harness.models.zoo import text_model_dir

        folder = text_model_dir(family, spec.weights_dir)  # builds the zoo entry if missing
        # model.dropout governs the whole tiny model (the zoo trained with its own dropout).
        dropout = {"hidden_dropout_prob": spec.dropout, "attention_probs_dropout_prob": spec.dropout}
        with quiet_progress():
            return AutoModel.from_pretrained(folder, local_files_only=True, **init_kwargs, **dropout)
    return load_hf_model(family, text_meta(spec.text).hf, spec.weights_dir, **init_kwargs)


def load_tokenizer(spec: ModelSpec) -> Any:
    """The tokenizer of ``spec.text``: its own (local dir or HF cache, offline), or the zoo's for tiny."""
    family = family_of(spec.text)
    if spec.scale == "tiny":
        from transformers import AutoTokenizer

        from harness.models.zoo import tokenizer_dir

        return AutoTokenizer.from_pretrained(tokenizer_dir(spec.weights_dir), local_files_only=True)
    from harness.models.weights import load_hf_tokenizer

    return load_hf_tokenizer(family, text_meta(spec.text).hf, spec.weights_dir)
