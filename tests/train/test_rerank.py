"""Retrieval re-ranking (harness.train.rerank): with k = all it is the exact evaluation; with a small k it
fuses (N + M)·k pairs at most, and its FLOP counts give encode-once's bound."""

from __future__ import annotations

import torch

from harness.models import build_model
from harness.models.config import ModelSpec
from harness.train.metrics import retrieval_recalls
from harness.train.rerank import candidates, rerank_score_matrix, retrieval_flops
from harness.train.retrieval import encode_all, score_matrix

torch.set_num_threads(1)
SPEC = ModelSpec(vision="clip-vit-224/32", text="bert", scale="tiny", weights="random", hidden=32, heads=2,
                 fusion_layers=1, max_text_len=8)


def _encoded() -> tuple[torch.nn.Module, object, object, list[int]]:
    torch.manual_seed(0)
    model = build_model(SPEC, objectives=("itm",), image_size=32).eval()
    g = torch.Generator().manual_seed(1)
    pixels = torch.randn(6, 3, 32, 32, generator=g)
    ids = torch.randint(5, int(model.text.vocab_size), (12, 8), generator=g)
    mask = torch.ones_like(ids)
    mask[::3, 5:] = 0  # some padded texts
    images, texts = encode_all(model, pixels, ids, mask)
    return model, images, texts, [i // 2 for i in range(12)]


def test_rerank_with_k_all_is_exact() -> None:
    model, images, texts, gold = _encoded()
    exact = score_matrix(model, images, texts, 6, 12, head="itm")
    reranked, passes = rerank_score_matrix(model, images, texts, k=12, head="itm", pair_batch=7)
    assert passes == 6 * 12
    torch.testing.assert_close(reranked, exact)
    assert retrieval_recalls(reranked, gold) == retrieval_recalls(exact, gold)


def test_rerank_fuses_only_the_candidates() -> None:
    model, images, texts, _ = _encoded()
    exact = score_matrix(model, images, texts, 6, 12, head="itm")
    reranked, passes = rerank_score_matrix(model, images, texts, k=2, head="itm")
    assert passes <= (6 + 12) * 2 < 6 * 12
    fused = reranked == exact
    assert int(fused.sum()) == passes
    # every pair left out ranks below every fused one
    assert bool(reranked[~fused].max() < reranked[fused].min())


def test_candidates_cover_both_directions() -> None:
    coarse = torch.tensor([[0.9, 0.1, 0.0], [0.8, 0.2, 0.1]])
    chosen = candidates(coarse, 1)
    # image rows' top text: 0 and 0; text columns' top image: 0, 1, 1
    assert chosen.tolist() == [[True, False, False], [True, True, True]]


def test_flop_bound_of_encode_once() -> None:
    flops = retrieval_flops(SPEC, 32, 8, num_images=100, num_texts=500, rerank_k=16)
    per_pair = flops["image_encoder"] + flops["text_encoder"] + flops["fusion_and_head"]
    assert flops["bound"] == flops["per_pair"] / flops["encode_once"]
    assert 1.0 < flops["bound"] < per_pair / flops["fusion_and_head"]
    assert flops["rerank_fusion_passes"] == 600 * 16 and flops["rerank"] < flops["encode_once"]


def test_evaluate_retrieval_rerank_k_all_gives_the_exact_recalls() -> None:
    from types import SimpleNamespace

    from harness.train.retrieval import evaluate_retrieval

    torch.manual_seed(0)
    model = build_model(SPEC, objectives=("itm",), image_size=32).eval()
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(5, int(model.text.vocab_size), (10, 8), generator=g)
    eval_set = SimpleNamespace(pixel_values=torch.randn(5, 3, 32, 32, generator=g), input_ids=ids,
                               attention_mask=torch.ones_like(ids), text_to_image=[i // 2 for i in range(10)])
    exact = evaluate_retrieval(model, eval_set, head="itm")
    assert evaluate_retrieval(model, eval_set, head="itm", rerank_k=10) == exact
