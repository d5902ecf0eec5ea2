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
from harness.registry import TEXT_ENCODERS

# family → (config class, model class, masked-LM class, extra model init kwargs). Poolers are left
# out: METER pools in its own layers, and unused parameters would break DDP.
FAMILIES: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    "bert": ("BertConfig", "BertModel", "BertForMaskedLM", {"add_pooling_layer": False}),
    "roberta": ("RobertaConfig", "RobertaModel", "RobertaForMaskedLM", {"add_pooling_layer": False}),
    "electra": ("ElectraConfig", "ElectraModel", "ElectraForMaskedLM", {}),
    "albert": ("AlbertConfig", "AlbertModel", "AlbertForMaskedLM", {"add_pooling_layer": False}),
    "deberta": ("DebertaConfig", "DebertaModel", "DebertaForMaskedLM", {}),
}
_BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072}
# The published base configurations (bert-base-uncased, roberta-base, ...), for building offline.
PAPER_CONFIGS: dict[str, dict[str, Any]] = {
    "bert": {**_BASE, "vocab_size": 30522},
    "roberta": {**_BASE, "vocab_size": 50265, "max_position_embeddings": 514, "type_vocab_size": 1,
                "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2, "layer_norm_eps": 1e-5},
    "electra": {**_BASE, "vocab_size": 30522, "embedding_size": 768},
    "albert": {**_BASE, "vocab_size": 30000, "embedding_size": 128, "hidden_act": "gelu_new",
               "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0},
    "deberta": {**_BASE, "vocab_size": 50265, "relative_attention": True, "pos_att_type": ["c2p", "p2c"],
                "max_relative_positions": -1, "position_biased_input": False, "layer_norm_eps": 1e-7,
                "type_vocab_size": 0},
}
# (mask, pad) token ids of the published tokenizers, for encoders built without loading one.
PAPER_SPECIAL_IDS: dict[str, tuple[int, int]] = {
    "bert": (103, 0), "roberta": (50264, 1), "electra": (103, 0), "albert": (4, 0), "deberta": (50264, 0),
}
TINY_MAX_POSITIONS = 128
_TINY = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128}
_TINY_EXTRA: dict[str, dict[str, Any]] = {
    "bert": {}, "roberta": {"type_vocab_size": 1}, "electra": {"embedding_size": 32},
    "albert": {"embedding_size": 32}, "deberta": dict(PAPER_CONFIGS["deberta"], **_TINY),
}


def text_meta(name: str) -> dict[str, Any]:
    return TEXT_ENCODERS.get(name).meta


def family_of(name: str) -> str:
    """The transformers family of a text encoder (``emb-only`` comes from BERT)."""
    text_meta(name)  # unknown names raise with a suggestion
    return "bert" if name == "emb-only" else name


def transformers_class(class_name: str) -> Any:
    import transformers

    return getattr(transformers, class_name)


def tiny_config(family: str, tokenizer: Any) -> Any:
    """The tiny config of ``family`` sized to the zoo's word-level ``tokenizer``."""
    kwargs: dict[str, Any] = {**_TINY_EXTRA[family], **_TINY, "vocab_size": len(tokenizer),
                              "pad_token_id": tokenizer.pad_token_id,
                              "max_position_embeddings": TINY_MAX_POSITIONS}
    if family == "roberta":  # RoBERTa numbers positions from pad_token_id + 1
        kwargs.update(max_position_embeddings=TINY_MAX_POSITIONS + tokenizer.pad_token_id + 1,
                      bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id)
    return transformers_class(FAMILIES[family][0])(**kwargs)


def paper_config(family: str) -> Any:
    return transformers_class(FAMILIES[family][0])(**PAPER_CONFIGS[family])


def model_from_config(family: str, config: Any) -> nn.Module:
    _, model_cls, _, init_kwargs = FAMILIES[family]
    return transformers_class(model_cls)(config, **init_kwargs)


class TextEncoder(nn.Module):
    """A transformers encoder read out as its last hidden states."""

    lr_group = "pretrained"

    def __init__(self, backbone: nn.Module, *, name: str, special_ids: tuple[int, int]) -> None:
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
        self.name = "emb-only"
        self.word_embeddings = nn.Embedding(vocab_size, width)
        self.position_embeddings = nn.Embedding(max_positions, width)
        self.norm = nn.LayerNorm(width, eps=eps)
        self.dropout = nn.Dropout(dropout)
        self.width = width
        self.vocab_size = vocab_size

    @classmethod
    def from_bert(cls, bert: nn.Module, special_ids: tuple[int, int]) -> EmbeddingEncoder:
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
    special = _special_ids(family, spec)
    if name == "emb-only":
        return EmbeddingEncoder.from_bert(backbone, special)
    return TextEncoder(backbone, name=name, special_ids=special)


def _special_ids(family: str, spec: ModelSpec) -> tuple[int, int]:
    """(mask, pad) token ids: the zoo tokenizer's for tiny, the published tokenizer's for paper scale."""
    if spec.scale == "tiny":
        tokenizer = load_tokenizer(spec)
        return int(tokenizer.mask_token_id), int(tokenizer.pad_token_id)
    return PAPER_SPECIAL_IDS[family]


def _backbone(family: str, spec: ModelSpec) -> nn.Module:
    if spec.scale == "tiny" and spec.weights == "random":
        config = tiny_config(family, load_tokenizer(spec))
        # model.dropout governs the whole tiny model, as it does for the zoo's weights below.
        config.hidden_dropout_prob = config.attention_probs_dropout_prob = spec.dropout
        return model_from_config(family, config)
    if spec.weights == "random":
        return model_from_config(family, paper_config(family))
    from harness.models.weights import load_hf_model, quiet_progress

    init_kwargs = FAMILIES[family][3]
    if spec.scale == "tiny":
        from transformers import AutoModel

        from harness.models.zoo import text_model_dir

        folder = text_model_dir(family, spec.weights_dir)  # builds the zoo entry if missing
        # model.dropout governs the whole tiny model (the zoo trained with its own dropout).
        dropout = {"hidden_dropout_prob": spec.dropout, "attention_probs_dropout_prob": spec.dropout}
        with quiet_progress():
            return AutoModel.from_pretrained(folder, local_files_only=True, **init_kwargs, **dropout)
    return load_hf_model(family, text_meta(family)["hf"], spec.weights_dir, **init_kwargs)


def load_tokenizer(spec: ModelSpec) -> Any:
    """The tokenizer of ``spec.text``: its own (local dir or HF cache, offline), or the zoo's for tiny."""
    family = family_of(spec.text)
    if spec.scale == "tiny":
        from transformers import AutoTokenizer

        from harness.models.zoo import tokenizer_dir

        return AutoTokenizer.from_pretrained(tokenizer_dir(spec.weights_dir), local_files_only=True)
    from harness.models.weights import load_hf_tokenizer

    return load_hf_tokenizer(family, text_meta(family)["hf"], spec.weights_dir)
