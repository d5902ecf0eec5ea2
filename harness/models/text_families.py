"""Text-encoder families as a table: each ``TextFamily`` says how to build its transformers model
(paper and tiny configuration, masked-LM class for the zoo, special token ids). A text encoder's
catalog line names its family (``family=``); a new family is one entry here plus its catalog line.

This module imports neither the zoo nor the encoders' builders: the zoo and the builders read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

_BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072}
TINY_MAX_POSITIONS = 128
# The tiny architecture every family shares (the zoo's recipe hashes it).
TINY_TEXT = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128}


@dataclass(frozen=True)
class TextFamily:
    config_class: str  # transformers class names
    model_class: str
    mlm_class: str
    paper_config: dict[str, Any]  # the published base configuration, for building offline
    special_ids: tuple[int, int]  # (mask, pad) ids of the published tokenizer
    # Extra model init kwargs. Poolers are left out: METER pools in its own layers, and unused
    # parameters would break DDP.
    init_kwargs: dict[str, Any] = field(default_factory=dict)
    tiny_extra: dict[str, Any] = field(default_factory=dict)  # on top of TINY_TEXT
    positions_after_pad: bool = False  # RoBERTa numbers positions from pad_token_id + 1
    # transformers classes (module:Class) whose forward must run outside autocast, in fp32 (see
    # harness.models.precision). DeBERTa's attention adds fp32 biases to the bf16 projections and then
    # fills masked scores with float32's minimum, which bf16 cannot hold: every bf16 step with a padded
    # batch fails ("value cannot be converted to type c10::BFloat16 without overflow",
    # huggingface/transformers#35332). Its attention runs in fp32, the rest of the encoder in bf16.
    fp32_modules: tuple[str, ...] = ()


_NO_POOLER = {"add_pooling_layer": False}
_DEBERTA = {**_BASE, "vocab_size": 50265, "relative_attention": True, "pos_att_type": ["c2p", "p2c"],
            "max_relative_positions": -1, "position_biased_input": False, "layer_norm_eps": 1e-7, "type_vocab_size": 0}

FAMILIES: dict[str, TextFamily] = {
    "bert": TextFamily("BertConfig", "BertModel", "BertForMaskedLM", {**_BASE, "vocab_size": 30522}, (103, 0),
                       _NO_POOLER),
    "roberta": TextFamily(
        "RobertaConfig", "RobertaModel", "RobertaForMaskedLM",
        {**_BASE, "vocab_size": 50265, "max_position_embeddings": 514, "type_vocab_size": 1, "pad_token_id": 1,
         "bos_token_id": 0, "eos_token_id": 2, "layer_norm_eps": 1e-5},
        (50264, 1), _NO_POOLER, {"type_vocab_size": 1}, positions_after_pad=True),
    "electra": TextFamily("ElectraConfig", "ElectraModel", "ElectraForMaskedLM",
                          {**_BASE, "vocab_size": 30522, "embedding_size": 768}, (103, 0),
                          tiny_extra={"embedding_size": 32}),
    "albert": TextFamily(
        "AlbertConfig", "AlbertModel", "AlbertForMaskedLM",
        {**_BASE, "vocab_size": 30000, "embedding_size": 128, "hidden_act": "gelu_new", "hidden_dropout_prob": 0.0,
         "attention_probs_dropout_prob": 0.0},
        (4, 0), _NO_POOLER, {"embedding_size": 32}),
    "deberta": TextFamily("DebertaConfig", "DebertaModel", "DebertaForMaskedLM", _DEBERTA, (50264, 0),
                          tiny_extra=dict(_DEBERTA, **TINY_TEXT),
                          fp32_modules=("transformers.models.deberta.modeling_deberta:DisentangledSelfAttention",)),
}


def text_family(family: str) -> TextFamily:
    try:
        return FAMILIES[family]
    except KeyError:
        raise ValueError(f"unknown text-encoder family '{family}'; known: {', '.join(sorted(FAMILIES))}") from None


def transformers_class(class_name: str) -> Any:
    import transformers

    return getattr(transformers, class_name)


def tiny_config(family: str, tokenizer: Any) -> Any:
    """The tiny config of ``family`` sized to the zoo's word-level ``tokenizer``."""
    spec = text_family(family)
    kwargs: dict[str, Any] = {**spec.tiny_extra, **TINY_TEXT, "vocab_size": len(tokenizer),
                              "pad_token_id": tokenizer.pad_token_id,
                              "max_position_embeddings": TINY_MAX_POSITIONS}
    if spec.positions_after_pad:
        kwargs.update(max_position_embeddings=TINY_MAX_POSITIONS + tokenizer.pad_token_id + 1,
                      bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id)
    return transformers_class(spec.config_class)(**kwargs)


def paper_config(family: str) -> Any:
    spec = text_family(family)
    return transformers_class(spec.config_class)(**spec.paper_config)


def rehearsal_config(family: str) -> Any:
    """The rehearsal's text encoder: the tiny widths on the published vocabulary and special ids (the config
    ``harness rehearsal prepare`` saves with its checkpoint, and what ``plan --rehearse`` counts)."""
    spec = text_family(family)
    return transformers_class(spec.config_class)(**{**spec.paper_config, **spec.tiny_extra, **TINY_TEXT})


def model_from_config(family: str, config: Any) -> nn.Module:
    spec = text_family(family)
    return transformers_class(spec.model_class)(config, **spec.init_kwargs)


def mlm_model_from_config(family: str, config: Any) -> nn.Module:
    return transformers_class(text_family(family).mlm_class)(config)


def tiny_recipe() -> dict[str, Any]:
    """What the tiny zoo's text entries are built from (part of the zoo's recipe hash)."""
    return {"tiny": TINY_TEXT, "extra": {name: f.tiny_extra for name, f in FAMILIES.items()},
            "max_positions": TINY_MAX_POSITIONS}
