"""Tiny text encoders pre-trained by their families' recipes (see :mod:`harness.models.zoo_catalog`):
MLM with static or dynamic masks, + next-sentence (BERT) or sentence-order prediction (ALBERT), and
ELECTRA's replaced-token detection with a small generator."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from harness.models.zoo_train import OnStep, mask_tokens, run_steps

# transformers classes of the pre-training models whose extra heads the recipes need
_PRETRAINING = {"mlm+nsp": "BertForPreTraining", "mlm+sop": "AlbertForPreTraining", "rtd": "ElectraForPreTraining"}


class TextBatches:
    """Tokenised single texts (MLM) or segment pairs (NSP/SOP), sampled with one generator."""

    def __init__(self, tokenizer: Any, recipe: dict[str, Any], texts: list[str],
                 pairs: list[tuple[str, str]], generator: torch.Generator) -> None:
        self.tokenizer, self.recipe, self.generator = tokenizer, recipe, generator
        self.paired = recipe["objective"] in ("mlm+nsp", "mlm+sop")
        self.pairs = pairs
        self.texts = texts
        self.static: tuple[torch.Tensor, torch.Tensor] | None = None
        if not self.paired:
            self.enc = self._encode(texts)
            if recipe["masking"] == "static":  # BERT: one mask per sentence, drawn once
                self.static = mask_tokens(self.enc["input_ids"], self._special(self.enc), tokenizer, generator)

    def _encode(self, texts: list[str], second: list[str] | None = None) -> dict[str, torch.Tensor]:
        return self.tokenizer(texts, second, padding=True, truncation=True, max_length=64, return_tensors="pt",
                              return_special_tokens_mask=True, return_token_type_ids=second is not None)

    @staticmethod
    def _special(enc: dict[str, torch.Tensor]) -> torch.Tensor:
        return enc["special_tokens_mask"].bool() | (enc["attention_mask"] == 0)

    def sample(self, batch: int) -> dict[str, torch.Tensor]:
        if self.paired:
            return self._pair_batch(batch)
        idx = torch.randint(0, len(self.texts), (batch,), generator=self.generator)
        mask = self.enc["attention_mask"][idx]
        width = int(mask.sum(1).max())
        if self.static is not None:
            ids, labels = self.static[0][idx, :width], self.static[1][idx, :width]
        else:
            ids, labels = mask_tokens(self.enc["input_ids"][idx, :width], self._special(self.enc)[idx, :width],
                                      self.tokenizer, self.generator)
        return {"input_ids": ids, "attention_mask": mask[:, :width], "labels": labels}

    def _pair_batch(self, batch: int) -> dict[str, torch.Tensor]:
        """NSP: half the second segments come from another scene (label 1 = not next). SOP: half
        the pairs are swapped (label 1 = swapped), as ALBERT's sentence-order prediction."""
        idx = torch.randint(0, len(self.pairs), (batch,), generator=self.generator).tolist()
        flip = (torch.rand(batch, generator=self.generator) < 0.5).tolist()
        other = torch.randint(0, len(self.pairs), (batch,), generator=self.generator).tolist()
        first, second = [], []
        for i, f, o in zip(idx, flip, other, strict=True):
            a, b = self.pairs[i]
            if self.recipe["objective"] == "mlm+nsp":
                first.append(a)
                second.append(self.pairs[o][1] if f else b)
            else:
                first.append(b if f else a)
                second.append(a if f else b)
        enc = self._encode(first, second)
        ids, labels = mask_tokens(enc["input_ids"], self._special(enc), self.tokenizer, self.generator)
        key = "next_sentence_label" if self.recipe["objective"] == "mlm+nsp" else "sentence_order_label"
        return {"input_ids": ids, "attention_mask": enc["attention_mask"], "token_type_ids": enc["token_type_ids"],
                "labels": labels, key: torch.tensor(flip, dtype=torch.long)}


def _generator_config(config: Any, width: int) -> Any:
    """ELECTRA's generator: the discriminator's config at a fraction of its width, one layer."""
    gen = config.__class__(**config.to_dict())
    gen.hidden_size, gen.intermediate_size = width, 2 * width
    gen.num_attention_heads, gen.num_hidden_layers = max(1, width // 16), 1
    return gen


class ReplacedTokenDetection(nn.Module):
    """ELECTRA: the generator fills the masked positions with sampled words; the discriminator
    tells, at every position, whether the word was replaced. loss = MLM(generator) + λ·RTD."""

    def __init__(self, config: Any, recipe: dict[str, Any]) -> None:
        super().__init__()
        from harness.models.text_families import transformers_class

        self.discriminator = transformers_class("ElectraForPreTraining")(config)
        self.generator = transformers_class("ElectraForMaskedLM")(_generator_config(config, recipe["generator_width"]))
        self.weight = float(recipe["discriminator_weight"])
        self.base_model_prefix = "discriminator"

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> Any:
        gen = self.generator(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
        masked = labels != -100
        with torch.no_grad():
            sampled = torch.distributions.Categorical(logits=gen.logits[masked].float()).sample()
        original = torch.where(masked, labels, input_ids)
        corrupted = original.clone()
        corrupted[masked] = sampled
        replaced = (corrupted != original).long()
        disc = self.discriminator(input_ids=corrupted, attention_mask=attention_mask, labels=replaced)
        loss = gen.loss + self.weight * disc.loss
        return type("Out", (), {"loss": loss})()


def pretraining_model(family: str, config: Any, recipe: dict[str, Any]) -> nn.Module:
    from harness.models.text_families import text_family, transformers_class

    objective = recipe["objective"]
    if objective == "rtd":
        return ReplacedTokenDetection(config, recipe)
    return transformers_class(_PRETRAINING.get(objective, text_family(family).mlm_class))(config)


def base_encoder(family: str, model: Any) -> Any:
    """The trained encoder as the plain base model METER loads (no pooler, no pre-training heads)."""
    from harness.models.text_families import model_from_config

    trained = model.discriminator.electra if isinstance(model, ReplacedTokenDetection) else \
        getattr(model, model.base_model_prefix)
    base = model_from_config(family, trained.config)
    missing, _ = base.load_state_dict(trained.state_dict(), strict=False)
    if missing:
        raise RuntimeError(f"tiny {family}: the trained encoder lacks {missing[:5]}")
    return base.eval()


def train_text(family: str, recipe: dict[str, Any], tokenizer: Any, texts: list[str],
               pairs: list[tuple[str, str]], *, steps: int, batch: int, lr: float, seed: int,
               on_step: OnStep | None = None) -> tuple[Any, dict[str, float]]:
    """Pre-train the tiny ``family`` encoder by ``recipe``; returns (base model, stats)."""
    from harness.models.text_families import tiny_config

    torch.manual_seed(seed)
    model = pretraining_model(family, tiny_config(family, tokenizer), recipe)
    batches = TextBatches(tokenizer, recipe, texts, pairs, torch.Generator().manual_seed(seed))
    stats = run_steps(model, lambda: model(**batches.sample(batch)).loss, steps=steps, lr=lr, on_step=on_step)
    return base_encoder(family, model), stats
