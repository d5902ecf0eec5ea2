"""METER's MLM masking law (``pretrain.mlm_masking: meter``): transformers 4.6's
DataCollatorForWholeWordMask as METER configures it — a budget of round(0.15 × max_len) positions
filled with shuffled "##"-joined words, padding and specials among the candidates and dropped after:
whole words for BERT's WordPiece, single tokens for BPE (RoBERTa), which METER's config notes."""

from __future__ import annotations

import torch

from harness.data.collate import mask_like_meter


class FakeTokenizer:
    """Just what the law reads: token strings, special ids, the mask id and the vocabulary size."""

    def __init__(self, tokens: list[str], special: list[str], mask: str) -> None:
        self.vocab = tokens
        self.all_special_ids = [tokens.index(t) for t in special]
        self.mask_token_id = tokens.index(mask)

    def convert_ids_to_tokens(self, ids: list[int]) -> list[str]:
        return [self.vocab[i] for i in ids]

    def __len__(self) -> int:
        return len(self.vocab)


BERT = FakeTokenizer(["[PAD]", "[CLS]", "[SEP]", "[MASK]", "the", "play", "##ing", "##ful", "kid", "dog", "runs"],
                     ["[PAD]", "[CLS]", "[SEP]", "[MASK]"], "[MASK]")
ROBERTA = FakeTokenizer(["<s>", "<pad>", "</s>", "<mask>", "Ġthe", "Ġplay", "ing", "ful", "Ġkid", "Ġdog", "Ġruns"],
                        ["<s>", "<pad>", "</s>", "<mask>"], "<mask>")


def _encoding(tok: FakeTokenizer, words: list[str], length: int, pad: str) -> dict[str, torch.Tensor]:
    ids = [tok.vocab.index(w) for w in words] + [tok.vocab.index(pad)] * (length - len(words))
    mask = [1] * len(words) + [0] * (length - len(words))
    return {"input_ids": torch.tensor([ids] * 64), "attention_mask": torch.tensor([mask] * 64)}


def _chosen(tok: FakeTokenizer, enc: dict[str, torch.Tensor], seeds: int = 40) -> torch.Tensor:
    rows = []
    for seed in range(seeds):
        _, labels = mask_like_meter(enc, tok, 0.15, torch.Generator().manual_seed(seed))
        rows.append(labels != -100)
    return torch.cat(rows)


def test_bert_word_pieces_are_masked_together() -> None:
    words = ["[CLS]", "the", "play", "##ing", "##ful", "kid", "runs", "[SEP]"]
    chosen = _chosen(BERT, _encoding(BERT, words, 20, "[PAD]"))  # budget round(0.15 × 20) = 3
    play = chosen[:, 2:5]
    assert bool(play.any()) and bool((play.all(1) | ~play.any(1)).all())  # never part of "play##ing##ful"
    assert not chosen[:, [0, 7]].any() and not chosen[:, 8:].any()  # specials and padding never predicted
    assert int(chosen.sum(1).max()) <= 3


def test_roberta_pieces_are_single_candidates() -> None:
    words = ["<s>", "Ġthe", "Ġplay", "ing", "ful", "Ġkid", "Ġruns", "</s>"]
    chosen = _chosen(ROBERTA, _encoding(ROBERTA, words, 20, "<pad>"))
    play = chosen[:, 2:5]
    assert bool((play.any(1) & ~play.all(1)).any())  # "Ġplay" / "ing" / "ful" picked independently


def test_budget_counts_padding_positions() -> None:
    """round(0.15 × max_len) positions are drawn over every candidate, padding included, and picks
    on padding are dropped: short texts in a long max_len get fewer predictions than 15 %."""
    words = ["[CLS]", "the", "kid", "dog", "runs", "the", "dog", "kid", "runs", "[SEP]"]
    short = _chosen(BERT, _encoding(BERT, words, 10, "[PAD]"), seeds=60).sum(1).float().mean()
    long = _chosen(BERT, _encoding(BERT, words, 40, "[PAD]"), seeds=60).sum(1).float().mean()
    # max_len 10: 2 of 8 candidates, all real → 2 predictions; max_len 40: 6 of 38 candidates, 8 real → ~1.3
    assert float(short) == 2.0
    assert 0.9 < float(long) < 1.7


def test_eighty_ten_ten() -> None:
    words = ["[CLS]"] + ["the", "kid", "dog", "runs"] * 10 + ["[SEP]"]
    enc = _encoding(BERT, words, 42, "[PAD]")
    masked_as_mask = replaced = kept = 0
    for seed in range(30):
        ids, labels = mask_like_meter(enc, BERT, 0.15, torch.Generator().manual_seed(seed))
        chosen = labels != -100
        masked_as_mask += int((ids[chosen] == BERT.mask_token_id).sum())
        kept += int((ids[chosen] == labels[chosen]).sum())
        replaced += int(chosen.sum())
    assert 0.75 < masked_as_mask / replaced < 0.85 and 0.06 < kept / replaced < 0.16
