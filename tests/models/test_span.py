"""T5-style span corruption: density, layout, and that the original text can be rebuilt."""

from __future__ import annotations

import pytest
import torch

from harness.models.span import DecoderVocab, choose_spans, span_corrupt

MASK, PAD = 3, 0
VOCAB = DecoderVocab(text=100, num_sentinels=16)


@pytest.mark.parametrize("n", [1, 2, 5, 13, 48, 200])
def test_spans_are_sorted_disjoint_and_near_density(n: int) -> None:
    g = torch.Generator().manual_seed(n)
    for _ in range(20):
        spans = choose_spans(n, 0.15, 3.0, 15, g)
        assert spans, "at least one span"
        for (s0, e0), (s1, _) in zip(spans, spans[1:], strict=False):
            assert s0 < e0 < s1, f"spans touch or overlap: {spans}"
        assert spans[0][0] >= 0 and spans[-1][1] <= n
        noise = sum(e - s for s, e in spans)
        assert noise == max(1, round(n * 0.15)) or n < 3


def _rebuild(encoder_ids: list[int], labels: list[int]) -> list[int]:
    """Undo the corruption: replace the i-th mask token by the tokens after sentinel i."""
    pieces: dict[int, list[int]] = {}
    current = None
    for tok in labels:
        if tok == -100:
            break
        if tok >= VOCAB.text:
            current = tok - VOCAB.text
            pieces[current] = []
        else:
            pieces[current].append(tok)  # type: ignore[index]
    out, span = [], 0
    for tok in encoder_ids:
        if tok == MASK:
            out += pieces[span]
            span += 1
        else:
            out.append(tok)
    return out


def test_corruption_is_invertible_and_keeps_special_tokens() -> None:
    g = torch.Generator().manual_seed(0)
    lengths = [40, 25, 6, 3]
    ids = torch.zeros(4, 40, dtype=torch.long)
    mask = torch.zeros(4, 40, dtype=torch.long)
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.randint(10, 100, (n,), generator=g)
        ids[row, 0], ids[row, n - 1] = 1, 2  # [CLS] ... [SEP]
        mask[row, :n] = 1
    out = span_corrupt(ids, mask, vocab=VOCAB, mask_token_id=MASK, pad_token_id=PAD, generator=g)
    for row, n in enumerate(lengths):
        enc = out.input_ids[row][out.attention_mask[row].bool()].tolist()
        assert enc[0] == 1 and enc[-1] == 2, "first and last real tokens are never corrupted"
        assert _rebuild(enc, out.labels[row].tolist()) == ids[row, :n].tolist()
        spans = enc.count(MASK)
        labels = out.labels[row][out.decoder_attention_mask[row].bool()].tolist()
        sentinels = [t - VOCAB.text for t in labels if t >= VOCAB.text]
        assert sentinels == list(range(spans + 1)), "sentinels in order, closing one last"


def test_decoder_input_is_labels_shifted_behind_start() -> None:
    ids = torch.tensor([[1] + list(range(10, 30)) + [2]])
    out = span_corrupt(ids, torch.ones_like(ids), vocab=VOCAB, mask_token_id=MASK,
                       generator=torch.Generator().manual_seed(3))
    assert out.decoder_input_ids[0, 0].item() == VOCAB.start
    torch.testing.assert_close(out.decoder_input_ids[0, 1:], out.labels[0, :-1])
    assert out.labels.max() < VOCAB.output_size and VOCAB.class_token < VOCAB.input_size


def test_fifteen_percent_of_tokens_on_average() -> None:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(10, 100, (64, 50), generator=g)
    out = span_corrupt(ids, torch.ones_like(ids), vocab=VOCAB, mask_token_id=MASK, generator=g)
    labels = out.labels
    corrupted = ((labels >= 0) & (labels < VOCAB.text)).sum().item()
    assert corrupted / (64 * 48) == pytest.approx(0.15, abs=0.01)
