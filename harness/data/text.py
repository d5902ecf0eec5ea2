"""Tokenizers: a word-level tokenizer for the synthetic benchmark, and text encoding helpers.

Real encoders bring their own Hugging Face tokenizer (passed in by the caller); the
synthetic benchmark's tiny text encoders use :func:`word_tokenizer`, built from the
caption corpus with the ``tokenizers`` library and saved/loaded like any HF tokenizer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def word_tokenizer(corpus: Sequence[str], min_count: int = 1, max_len: int = 64) -> Any:
    """Word-level ``PreTrainedTokenizerFast``: lower-cased, split on spaces and punctuation,
    ``[CLS] words [SEP]``; ids 0..4 are [PAD] [UNK] [CLS] [SEP] [MASK], then words by frequency.

    Round-trips through ``save_pretrained`` / ``AutoTokenizer.from_pretrained``."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    pre = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    norm = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    counts: Counter[str] = Counter()
    for text in corpus:
        counts.update(word for word, _ in pre.pre_tokenize_str(norm.normalize_str(text)))
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for word in words:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = norm
    tok.pre_tokenizer = pre
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", model_max_length=max_len,
    )
