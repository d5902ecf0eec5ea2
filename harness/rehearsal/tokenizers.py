"""Tiny tokenizers of each text family, of the family's own tokenizer class and special-token ids.

The model code uses the published tokenizers' (mask, pad) ids for paper-scale encoders
(``TextFamily.special_ids`` in ``harness.models.text_families``); these tokenizers keep those ids, with a small
vocabulary of characters and a few words instead of the published one (every id stays below the model's
``vocab_size``).
They are written with ``save_pretrained`` and read back by ``AutoTokenizer.from_pretrained``.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

WORDS = ("a", "an", "the", "is", "are", "what", "how", "many", "of", "on", "in", "to", "and", "there", "picture",
         "image", "photo", "man", "woman", "dog", "cat", "two", "left", "right", "true", "false", "yes", "no", "red",
         "blue", "green", "people", "sitting", "standing")


def _wordpiece_vocab(total: int) -> list[str]:
    """BERT's layout: [PAD]=0, [unused0..98], [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103, then pieces."""
    vocab = ["[PAD]", *(f"[unused{i}]" for i in range(99)), "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = string.ascii_lowercase + string.digits + string.punctuation
    vocab += list(chars) + [f"##{c}" for c in chars] + list(WORDS)
    return vocab[:total]


def bert_like(out: Path, family: str) -> None:
    import transformers

    # By name: transformers 5 maps ElectraTokenizer lazily (no module of its own, unknown to mypy).
    cls = getattr(transformers, "ElectraTokenizer" if family == "electra" else "BertTokenizer")
    vocab = {t: i for i, t in enumerate(_wordpiece_vocab(30522))}
    cls(vocab=vocab, do_lower_case=True, model_max_length=512).save_pretrained(out)


def bpe_like(out: Path, family: str) -> None:
    """Byte-level BPE (RoBERTa / DeBERTa): every byte a token, no merges, specials at the published ids."""
    from tokenizers import pre_tokenizers
    from transformers import DebertaTokenizer, RobertaTokenizer

    if family == "roberta":
        specials: dict[str, Any] = {"bos_token": "<s>", "pad_token": "<pad>", "eos_token": "</s>",
                                    "unk_token": "<unk>", "mask_token": "<mask>"}
        head = ["<s>", "<pad>", "</s>", "<unk>"]
    else:  # microsoft/deberta-base
        specials = {"bos_token": "[CLS]", "eos_token": "[SEP]", "cls_token": "[CLS]", "sep_token": "[SEP]",
                    "pad_token": "[PAD]", "unk_token": "[UNK]", "mask_token": "[MASK]"}
        head = ["[PAD]", "[CLS]", "[SEP]", "[UNK]"]
    tokens = head + sorted(pre_tokenizers.ByteLevel.alphabet())
    tokens += [f"<unused{i}>" for i in range(50264 - len(tokens))] + [specials["mask_token"]]
    cls = RobertaTokenizer if family == "roberta" else DebertaTokenizer
    cls(vocab={t: i for i, t in enumerate(tokens)}, merges=[], model_max_length=512,
        **specials).save_pretrained(out)


def albert_like(out: Path) -> None:
    """ALBERT's SentencePiece unigram layout: <pad>=0, <unk>=1, [CLS]=2, [SEP]=3, [MASK]=4, then pieces."""
    from transformers import AlbertTokenizer

    pieces = [("<pad>", 0.0), ("<unk>", 0.0), ("[CLS]", 0.0), ("[SEP]", 0.0), ("[MASK]", 0.0), ("▁", -2.0)]
    pieces += [(c, -3.0) for c in string.ascii_lowercase + string.digits + string.punctuation]
    pieces += [("▁" + w, -1.0) for w in WORDS]
    AlbertTokenizer(vocab=pieces, do_lower_case=True, model_max_length=512).save_pretrained(out)


def save_tokenizer(family: str, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if family in ("bert", "electra"):
        bert_like(out, family)
    elif family in ("roberta", "deberta"):
        bpe_like(out, family)
    elif family == "albert":
        albert_like(out)
    else:  # a new family's layout (special ids, tokenizer class) is its own: no silent ALBERT stand-in
        raise ValueError(f"no rehearsal tokenizer for text family '{family}': add its layout to {__name__}")
