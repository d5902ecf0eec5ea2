"""T5-style span corruption for the encoder-decoder architecture.

About ``density`` (15%) of each caption's content tokens (not the first and last real
tokens, i.e. [CLS]/[SEP] or <s>/</s>) are chosen in contiguous spans of mean length
``mean_span``. The encoder sees each span replaced by ONE mask token (the text encoder's
vocabulary has no sentinels); the decoder reconstructs

    <s_0> span_0 tokens <s_1> span_1 tokens ... <s_n>

where ``<s_i>`` are sentinel ids ``vocab_size + i`` of the decoder vocabulary
(text vocab + ``num_sentinels``), and the closing sentinel marks the end. The decoder input
is the target shifted right behind a start id (``DecoderVocab.start``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class DecoderVocab:
    """Decoder ids: [0, text) text tokens, then sentinels, then the start and class tokens."""

    text: int
    num_sentinels: int = 32

    @property
    def output_size(self) -> int:  # what the decoder predicts: text tokens and sentinels
        return self.text + self.num_sentinels

    @property
    def start(self) -> int:
        return self.output_size

    @property
    def class_token(self) -> int:  # the ITM/VQA class token fed to the decoder
        return self.output_size + 1

    @property
    def input_size(self) -> int:
        return self.output_size + 2

    def sentinel(self, i: int) -> int:
        return self.text + i


@dataclass(frozen=True)
class SpanBatch:
    input_ids: Tensor  # Long[B, L'] encoder input (each span → one mask token), padded
    attention_mask: Tensor  # Long[B, L']
    decoder_input_ids: Tensor  # Long[B, T]
    decoder_attention_mask: Tensor  # Long[B, T]
    labels: Tensor  # Long[B, T], -100 at padding


def choose_spans(n_content: int, density: float, mean_span: float, max_spans: int,
                 generator: torch.Generator | None = None) -> list[tuple[int, int]]:
    """Non-overlapping, non-adjacent [start, end) spans over ``n_content`` positions."""
    if n_content <= 0:
        return []
    n_noise = max(1, round(n_content * density))
    n_spans = max(1, min(max_spans, round(n_noise / mean_span), n_noise, n_content - n_noise + 1))
    n_noise = min(n_noise, n_content - n_spans + 1)
    # Split noise and non-noise lengths at random cut points, as T5's random_spans_noise_mask does;
    # n_spans + 1 gaps, the outer two may be empty, inner ones are not (spans never touch).
    noise_lengths = _random_partition(n_noise, n_spans, generator)
    gaps = _random_partition(n_content - n_noise + 2, n_spans + 1, generator)
    gaps[0] -= 1
    spans, pos = [], 0
    for gap, noise in zip(gaps[:-1], noise_lengths, strict=True):
        pos += gap
        spans.append((pos, pos + noise))
        pos += noise
    return spans


def _random_partition(total: int, parts: int, generator: torch.Generator | None) -> list[int]:
    """``total`` split into ``parts`` positive integers at random."""
    if parts == 1:
        return [total]
    cuts = (torch.randperm(total - 1, generator=generator)[: parts - 1] + 1).sort().values.tolist()
    edges = [0, *cuts, total]
    return [b - a for a, b in zip(edges[:-1], edges[1:], strict=True)]


def span_corrupt(
    input_ids: Tensor,
    attention_mask: Tensor,
    *,
    vocab: DecoderVocab,
    mask_token_id: int,
    pad_token_id: int = 0,
    density: float = 0.15,
    mean_span: float = 3.0,
    generator: torch.Generator | None = None,
) -> SpanBatch:
    """Corrupt a batch of captions; see the module docstring for the layout."""
    encoder_rows, target_rows = [], []
    for ids, mask in zip(input_ids.tolist(), attention_mask.tolist(), strict=True):
        length = int(sum(mask))
        content = ids[1 : length - 1]
        spans = choose_spans(len(content), density, mean_span, vocab.num_sentinels - 1, generator)
        enc, target, pos = [ids[0]], [], 0
        for i, (start, end) in enumerate(spans):
            enc += content[pos:start] + [mask_token_id]
            target += [vocab.sentinel(i), *content[start:end]]
            pos = end
        enc += content[pos:] + ids[length - 1 : length]
        target.append(vocab.sentinel(len(spans)))
        encoder_rows.append(enc)
        target_rows.append(target)
    enc_ids, enc_mask = _pad(encoder_rows, pad_token_id)
    labels, dec_mask = _pad(target_rows, -100)
    dec_in = torch.full_like(labels, pad_token_id)
    dec_in[:, 0] = vocab.start
    dec_in[:, 1:] = labels[:, :-1].clamp_min(0)
    dec_in = torch.where(dec_mask.bool(), dec_in, torch.full_like(dec_in, pad_token_id))
    device = input_ids.device
    return SpanBatch(enc_ids.to(device), enc_mask.to(device), dec_in.to(device), dec_mask.to(device),
                     labels.to(device))


def _pad(rows: list[list[int]], fill: int) -> tuple[Tensor, Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), fill, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return ids, mask
