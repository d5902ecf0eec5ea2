"""MLM masking statistics, whole-word masking on a BPE tokenizer, image transforms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from harness.data.collate import ImageTransform, mask_whole_words, tokenize, vqa_targets
from harness.data.text import word_tokenizer

WORDS = [f"word{i}" for i in range(40)]


def _long_texts(n: int, length: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=length)) for _ in range(n)]


def test_mlm_statistics_15_percent_80_10_10() -> None:
    tok = word_tokenizer(WORDS)
    texts = _long_texts(400, 40)
    enc = tokenize(tok, texts, 42)
    masked, labels = mask_whole_words(enc, tok, 0.15, torch.Generator().manual_seed(0))
    real = (enc["special_tokens_mask"] == 0) & (enc["attention_mask"] == 1)
    chosen = labels != -100
    rate = chosen.sum().item() / real.sum().item()
    assert 0.14 < rate < 0.16
    assert not (chosen & ~real).any()  # never [CLS]/[SEP]/[PAD]
    assert torch.equal(labels[chosen], enc["input_ids"][chosen])
    as_mask = (masked[chosen] == tok.mask_token_id).float().mean().item()
    unchanged = (masked[chosen] == enc["input_ids"][chosen]).float().mean().item()
    assert 0.77 < as_mask < 0.83 and 0.08 < unchanged < 0.12  # the rest (~10%) random tokens
    random_ids = masked[chosen & (masked != tok.mask_token_id) & (masked != enc["input_ids"])]
    assert len(random_ids) > 0 and not any(i in tok.all_special_ids for i in random_ids.tolist())


@pytest.fixture(scope="module")
def bpe_tokenizer():
    """A tiny RoBERTa-style byte-level BPE tokenizer trained here (no download)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    corpus = ["the extraordinarily unbelievable circumstances overwhelmed everybody",
              "a red square left of a blue circle", "incomprehensibilities notwithstanding"] * 20
    special = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=300, special_tokens=special,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>", mask_token="<mask>", cls_token="<s>", sep_token="</s>")


def test_whole_word_masking_on_bpe(bpe_tokenizer) -> None:
    texts = ["the extraordinarily unbelievable circumstances overwhelmed everybody",
             "incomprehensibilities notwithstanding a red square"] * 100
    enc = tokenize(bpe_tokenizer, texts, 40)
    split_words = [w for w in range(6) if enc.word_ids(0).count(w) > 1]
    assert split_words, "the test tokenizer must split some words into several pieces"
    _, labels = mask_whole_words(enc, bpe_tokenizer, 0.3, torch.Generator().manual_seed(1))
    partial = 0
    for row in range(len(texts)):
        word_ids = enc.word_ids(row)
        for w in set(x for x in word_ids if x is not None):
            picked = [labels[row, k].item() != -100 for k, x in enumerate(word_ids) if x == w]
            partial += any(picked) and not all(picked)
    assert partial == 0  # every word is masked entirely or not at all
    words = sum(len({x for x in enc.word_ids(r) if x is not None}) for r in range(len(texts)))
    masked_words = sum(len({enc.word_ids(r)[k] for k in range(40) if labels[r, k] != -100}) for r in range(len(texts)))
    assert 0.25 < masked_words / words < 0.35


def test_mask_never_leaves_a_batch_without_targets() -> None:
    tok = word_tokenizer(["a b"])
    enc = tokenize(tok, ["a", "b"], 6)
    _, labels = mask_whole_words(enc, tok, 1e-9, torch.Generator().manual_seed(0))
    assert (labels != -100).sum() == 1


def test_image_transform_resize_crop_normalise() -> None:
    t = ImageTransform(32, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    img = Image.new("RGB", (80, 40), (255, 0, 128))
    out = t(img)
    assert out.shape == (3, 32, 32)
    assert torch.allclose(out[:, 16, 16], torch.tensor([2.0, -2.0, (128 / 255 - 0.5) / 0.25]), atol=0.02)
    same = t(np.full((32, 32, 3), 255, dtype=np.uint8))
    assert torch.allclose(same, torch.full((3, 32, 32), 2.0))


def test_randaugment_changes_training_images_only() -> None:
    t = ImageTransform(32, (0.5,) * 3, (0.5,) * 3, randaugment=True)
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    torch.manual_seed(0)
    assert torch.equal(t(img), t(img))
    assert any(not torch.equal(t(img, train=True), t(img)) for _ in range(5))


def test_vqa_targets_soft_scores() -> None:
    out = vqa_targets([[0, 2], []], [[1.0, 0.3], []], 4)
    assert out.tolist() == [[1.0, 0.0, pytest.approx(0.3), 0.0], [0.0] * 4]
    with pytest.raises(ValueError, match="one score per answer label"):
        vqa_targets([[0, 2], [1]], [[1.0], [0.3, 0.6]], 4)


def test_batch_normalisation_equals_each_image_alone() -> None:
    """The dataset normalises a batch's images in one call: bit for bit what METER's per-image
    ``(x / 255 - mean) / std`` gives, RandAugment (per-sample seeds) and ITM negatives included."""
    from harness.data.config import SyntheticSpec
    from harness.data.loaders import SampleDataset
    from harness.data.sources import synthetic_tables
    from harness.data.synthetic_data import build_split

    table = synthetic_tables(build_split(SyntheticSpec(train_images=16, eval_images=8), "val", 32, cache=False),
                             "pretrain")
    t = ImageTransform(32, (0.48, 0.46, 0.41), (0.27, 0.26, 0.28), randaugment=True)
    dataset = SampleDataset(table, t, train=True)
    keys = [(i, (i + 3) % 8 if i % 2 else -1, 1234) for i in range(8)]  # every other sample: a negative image
    batch = dataset.__getitems__(keys)
    for key, sample in zip(keys, batch, strict=True):
        for name in ("image", "neg_image"):
            if name not in sample:
                continue
            alone = dataset._sample(key)[name]  # uint8, RandAugment-ed with the sample's own seed
            assert alone.dtype == torch.uint8
            expected = (alone.float() / 255.0 - t.mean) / t.std
            assert torch.equal(sample[name], expected), name
    assert sum("neg_image" in s for s in batch) == 4
