"""Turning raw samples into model batches: image transforms, MLM masking, ITM/retrieval negatives.

Randomness here (masking, RandAugment) comes from a ``torch.Generator`` seeded per batch by
the sampler, so a batch is the same whichever worker builds it and whichever grid cell
asks for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


class ImageTransform:
    """uint8 HWC array / PIL image → Float[3,S,S]: resize the short side, centre crop,
    optional RandAugment (training), then normalise with the vision encoder's mean/std."""

    def __init__(self, image_size: int, mean: Sequence[float], std: Sequence[float],
                 randaugment: bool = False) -> None:
        self.size = image_size
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
        self.randaugment = None
        if randaugment:
            from torchvision.transforms import v2

            self.randaugment = v2.RandAugment(num_ops=2, magnitude=9)

    def to_uint8(self, image: Any) -> torch.Tensor:
        if hasattr(image, "convert"):  # a PIL image
            image = image.convert("RGB")
        elif image.shape[:2] != (self.size, self.size):
            image = _pil_image(image)
        if hasattr(image, "convert"):  # PIL resizes ~5× faster than torch's antialiased bicubic
            w, h = image.size
            scale = self.size / min(w, h)
            nw, nh = max(self.size, round(w * scale)), max(self.size, round(h * scale))
            if (nw, nh) != (w, h):
                image = image.resize((nw, nh), resample=3, reducing_gap=3.0)  # 3 = bicubic
            left, top = (nw - self.size) // 2, (nh - self.size) // 2
            if (nw, nh) != (self.size, self.size):
                image = image.crop((left, top, left + self.size, top + self.size))
        # A copy: PIL arrays and memory-mapped caches are read-only, which torch warns about.
        return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)

    def __call__(self, image: Any, train: bool = False) -> torch.Tensor:
        return self.normalize(self.prepare(image, train))

    def prepare(self, image: Any, train: bool = False) -> torch.Tensor:
        """uint8 Tensor[3,S,S]: resized, cropped and (training) augmented, not yet normalised."""
        tensor = self.to_uint8(image)
        if train and self.randaugment is not None:
            tensor = self.randaugment(tensor)
        return tensor

    def normalize(self, uint8: torch.Tensor) -> torch.Tensor:
        """uint8 [..., 3, S, S] → float. Elementwise, so a stack of images normalised at once equals
        each one normalised alone, bit for bit (and costs one call instead of one per image); in
        place on one fresh copy: the same operations in the same order as ``(x / 255 - mean) / std``
        without its three temporaries (4× faster on a batch of 32 images of 64 px)."""
        out = uint8.to(torch.float32, copy=True)
        return out.div_(255.0).sub_(self.mean).div_(self.std)


def _pil_image(array: np.ndarray) -> Any:
    from PIL import Image

    return Image.fromarray(np.asarray(array, dtype=np.uint8))


def tokenize(tokenizer: Any, texts: Sequence[str], max_len: int) -> Any:
    return tokenizer(list(texts), padding="max_length", truncation=True, max_length=max_len,
                     return_tensors="pt", return_special_tokens_mask=True)


def mask_whole_words(encoding: Any, tokenizer: Any, prob: float, generator: torch.Generator) -> tuple[
        torch.Tensor, torch.Tensor]:
    """MLM inputs and labels: each WORD is chosen with probability ``prob``; its tokens become
    [MASK] 80% / a random token 10% / unchanged 10%. Words come from the fast tokenizer's
    ``word_ids()``, so BPE tokenizers (RoBERTa's Ġ-prefixed pieces) mask whole words too."""
    input_ids = encoding["input_ids"].clone()
    labels = torch.full_like(input_ids, -100)
    special = encoding["special_tokens_mask"].bool() | (encoding["attention_mask"] == 0)
    chosen = torch.zeros_like(input_ids, dtype=torch.bool)
    for row in range(input_ids.shape[0]):
        word_ids = torch.tensor([-1 if w is None else w for w in encoding.word_ids(row)])
        word_ids[special[row]] = -1
        n_words = int(word_ids.max()) + 1
        if n_words <= 0:
            continue
        picked = torch.rand(n_words, generator=generator) < prob
        chosen[row] = (word_ids >= 0) & picked[word_ids.clamp(min=0)]
    if not chosen.any():  # never an all-ignored batch: mask one word of the first row that has words
        _force_one_word(encoding, special, chosen)
    labels[chosen] = input_ids[chosen]
    action = torch.rand(input_ids.shape, generator=generator)
    input_ids[chosen & (action < 0.8)] = tokenizer.mask_token_id
    randomise = chosen & (action >= 0.8) & (action < 0.9)
    pool = _ordinary_ids(tokenizer)
    picks = torch.randint(len(pool), (int(randomise.sum()),), generator=generator)
    input_ids[randomise] = pool[picks]
    return input_ids, labels


def mask_like_meter(encoding: Any, tokenizer: Any, prob: float, generator: torch.Generator) -> tuple[
        torch.Tensor, torch.Tensor]:
    """METER's MLM masking: transformers 4.6 ``DataCollatorForWholeWordMask`` as METER configures it.

    Per text: the candidates are "words" of the padded token sequence — a token starting with "##"
    joins the previous word; "[CLS]"/"[SEP]" are skipped, every other token (padding, RoBERTa's
    <s> </s> <pad>) is a candidate, so BPE tokenizers get single tokens. round(prob × length)
    positions are filled with shuffled whole candidates (a candidate that would overshoot is
    skipped); picks on special tokens and padding are then dropped. Chosen tokens: [MASK] 80 %,
    any vocabulary id 10 %, unchanged 10 %. A text may end with no prediction, as in METER."""
    input_ids = encoding["input_ids"].clone()
    chosen = torch.zeros_like(input_ids, dtype=torch.bool)
    for row in range(input_ids.shape[0]):
        words: list[list[int]] = []
        for k, token in enumerate(tokenizer.convert_ids_to_tokens(input_ids[row].tolist())):
            if token in ("[CLS]", "[SEP]"):
                continue
            if words and token.startswith("##"):
                words[-1].append(k)
            else:
                words.append([k])
        budget = max(1, int(round(input_ids.shape[1] * prob)))
        picked: list[int] = []
        for w in torch.randperm(len(words), generator=generator).tolist():
            if len(picked) >= budget:
                break
            if len(picked) + len(words[w]) <= budget:
                picked.extend(words[w])
        chosen[row, picked] = True
    special = torch.tensor([[int(i) in set(tokenizer.all_special_ids) for i in r] for r in input_ids.tolist()])
    chosen &= ~special & (encoding["attention_mask"] == 1)
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    action = torch.rand(input_ids.shape, generator=generator)
    input_ids[chosen & (action < 0.8)] = tokenizer.mask_token_id
    randomise = chosen & (action >= 0.8) & (action < 0.9)
    input_ids[randomise] = torch.randint(len(tokenizer), (int(randomise.sum()),), generator=generator)
    return input_ids, labels


def _force_one_word(encoding: Any, special: torch.Tensor, chosen: torch.Tensor) -> None:
    for row in range(chosen.shape[0]):
        ids = encoding.word_ids(row)
        positions = [k for k, w in enumerate(ids) if w is not None and not special[row, k]]
        if positions:
            word = ids[positions[0]]
            for k in positions:
                chosen[row, k] = ids[k] == word
            return


_POOLS: dict[int, torch.Tensor] = {}


def _ordinary_ids(tokenizer: Any) -> torch.Tensor:
    """Token ids that are not special tokens (what 'a random token' may be)."""
    key = id(tokenizer)
    if key not in _POOLS:
        special = set(tokenizer.all_special_ids)
        _POOLS[key] = torch.tensor([i for i in range(len(tokenizer)) if i not in special], dtype=torch.long)
    return _POOLS[key]


def vqa_targets(labels: list[list[int]], scores: list[list[float]], num_answers: int) -> torch.Tensor:
    """Float[B,A] soft scores (answers outside the vocabulary already dropped)."""
    out = torch.zeros(len(labels), num_answers)
    rows = [row for row, ls in enumerate(labels) for _ in ls]
    if rows:  # one scatter for the batch (one per row cost ~15 µs each, ~0.5 ms of a local batch)
        columns = [c for ls in labels for c in ls]
        if any(len(ls) != len(ss) for ls, ss in zip(labels, scores, strict=True)):
            raise ValueError("vqa_targets: each sample needs one score per answer label")
        values = [v for ss in scores for v in ss]
        out[torch.tensor(rows), torch.tensor(columns, dtype=torch.long)] = torch.tensor(values, dtype=torch.float32)
    return out
