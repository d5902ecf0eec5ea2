"""METER assembled from factors: encoders → projection + type embedding → fusion → pooling → heads.

``MeterModel.forward(batch)`` takes ``{name: sub_batch}`` (layout in harness/README.md) and
computes every requested loss inside forward, so one DDP forward covers them all. It
returns ``{"loss": Σ weight·loss, "loss/<name>": ..., "logits/<name>": ...}``.

Retrieval evaluation encodes each image and text once (``encode_image``/``encode_text``
return ``{"tokens", "mask"}`` dicts, indexable row-wise) and runs only fusion + head per
pair (``score_pairs``); the result equals the full model on that pair.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harness.models import mim
from harness.models.config import ModelSpec
from harness.models.fusion import INIT_STD, ModalityInput, Pooler, init_new_weights, init_std
from harness.models.groups import declaring_modules
from harness.models.heads import (
    ClassifierMLP,
    InBatchNegativesHead,
    ITMHead,
    MLMHead,
    PatchCodeHead,
    PatchRegressionHead,
    RankHead,
    SpanHead,
)
from harness.models.span import DecoderVocab, span_corrupt

Feats = dict[str, Tensor]
TASK_CLASSES = {"snli-ve": 3, "nlvr2": 2}
MIM_OBJECTIVES = ("mim-in-batch-negatives", "mim-discrete-code", "mim-regression")
DEFAULT_MIM_CODES = 512


class MeterModel(nn.Module):
    def __init__(
        self,
        vision: nn.Module,
        text: nn.Module,
        *,
        spec: ModelSpec,
        objectives: Sequence[str] = (),
        tasks: Mapping[str, Mapping[str, Any]] | None = None,
        loss_weights: Mapping[str, float] | None = None,
        mlm_prob: float = 0.15,
        mim_prob: float = 0.15,
        image_size: int | None = None,
        special_tokens: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__()
        from harness.registry import ARCHITECTURES, FUSIONS

        tasks = dict(tasks or {})
        self.spec, self.objectives, self.tasks = spec, tuple(objectives), tuple(tasks)
        self.loss_weights = {name: float(w) for name, w in (loss_weights or {}).items()}
        self.mlm_prob, self.mim_prob = mlm_prob, mim_prob  # masking for MLM is the data's; kept for reference
        self.special_tokens = dict(special_tokens or {})
        h = spec.hidden
        self.vision, self.text = _declare(vision, "pretrained"), _declare(text, "pretrained")
        self.inputs = ModalityInput(int(text.width), int(vision.width), h)
        self.fusion = FUSIONS.build(spec.fusion, hidden=h, heads=spec.heads, layers=spec.fusion_layers,
                                    dropout=spec.dropout)
        self.decoder_vocab: DecoderVocab | None = None
        if ARCHITECTURES.get(spec.architecture).meta.get("decoder"):
            self.decoder_vocab = DecoderVocab(int(text.vocab_size))
            self.decoder = ARCHITECTURES.build(
                spec.architecture, hidden=h, heads=spec.heads, layers=spec.decoder_layers,
                vocab_size=self.decoder_vocab.input_size, dropout=spec.dropout, max_len=2 * spec.max_text_len + 8)
            self.pooled_dim = h
        else:
            self.decoder = None
            self.text_pooler = Pooler(h, index=0)
            self.image_pooler = Pooler(h, index=getattr(vision, "cls_index", None))
            self.pooled_dim = 2 * h
        self.heads = nn.ModuleDict()
        self.mim_grid: mim.PatchGrid | None = None
        for name in self.objectives:
            self._add_objective_head(name, image_size)
        for name, info in tasks.items():
            self._add_task_head(name, info)
        self._check_weights()
        self._init_new_modules()

    def _init_new_modules(self) -> None:
        """Re-initialise the randomly initialised modules at the width-scaled std (``init_std``);
        at METER's width 768 their constructors' normal(0, 0.02) already is that, and is kept."""
        std = init_std(self.spec.hidden)
        if std == INIT_STD:
            return
        for module in declaring_modules(self, ("random", "head")):
            init_new_weights(module, std)

    def _add_objective_head(self, name: str, image_size: int | None) -> None:
        h = self.spec.hidden
        if name == "mlm":
            self.heads["mlm"] = MLMHead(h, int(self.text.vocab_size))
        elif name == "itm":
            self.heads["itm"] = ITMHead(self.pooled_dim)
        elif name == "span-corruption":
            if self.decoder_vocab is None:
                raise ValueError("objective 'span-corruption' needs model.architecture: encoder-decoder")
            if "mask" not in self.special_tokens:
                raise ValueError("objective 'span-corruption' needs the text tokenizer's mask token id "
                                 "(special_tokens={'mask': ..., 'pad': ...})")
            self.heads[name] = SpanHead(h, self.decoder_vocab.output_size)
        elif name in MIM_OBJECTIVES:
            grid = self.mim_grid or self._probe_grid(image_size)
            self.mim_grid = grid
            if name == "mim-regression":
                self.heads[name] = PatchRegressionHead(h, grid.patch_dim)
            elif name == "mim-discrete-code":
                self.heads[name] = PatchCodeHead(h, DEFAULT_MIM_CODES)
                self.patch_tokenizer: mim.PatchTokenizer = mim.KMeansPatchTokenizer(DEFAULT_MIM_CODES, grid.patch_dim)
            else:
                self.heads[name] = InBatchNegativesHead(h, grid.patch_dim)
        else:
            raise ValueError(f"the model has no head for objective '{name}'; known: mlm, itm, span-corruption, "
                             f"{', '.join(MIM_OBJECTIVES)}")

    @torch.no_grad()
    def _probe_grid(self, image_size: int | None) -> mim.PatchGrid:
        """The encoder's output token grid, from one forward on a blank image."""
        size = image_size or getattr(self.vision, "image_size", None)
        if size is None:
            raise ValueError("masked image modelling needs image_size (the pre-training resolution)")
        was_training = self.vision.training
        self.vision.eval()
        param = next(self.vision.parameters())
        tokens = self.vision(torch.zeros(1, 3, size, size, dtype=param.dtype, device=param.device)).shape[1]
        self.vision.train(was_training)
        return mim.patch_grid(tokens, size)

    def _add_task_head(self, name: str, info: Mapping[str, Any]) -> None:
        p, h2 = self.pooled_dim, 2 * self.spec.hidden
        if name == "vqa":
            if "num_answers" not in info:
                raise ValueError("task 'vqa' needs tasks['vqa']['num_answers'] (the answer vocabulary size)")
            self.heads["vqa"] = ClassifierMLP(p, h2, int(info["num_answers"]))
        elif name == "snli-ve":
            self.heads[name] = ClassifierMLP(p, h2, TASK_CLASSES[name])
        elif name == "nlvr2":
            self.heads[name] = ClassifierMLP(2 * p, h2, TASK_CLASSES[name])
        elif name == "retrieval":
            self.heads["retrieval"] = RankHead(p)
        else:
            raise ValueError(f"the model has no head for task '{name}'; known: vqa, snli-ve, nlvr2, retrieval")

    def _check_weights(self) -> None:
        known = set(self.objectives) | set(self.tasks)
        for name in self.loss_weights:
            if name not in known:
                raise ValueError(f"loss_weights names '{name}', which is not among {sorted(known)}")

    # ---- encoding, fusion, pooling ----------------------------------------------------------

    def encode_image(self, pixel_values: Tensor, type_id: int = 1) -> Feats:
        tokens = self.inputs.image(self.vision(pixel_values), type_id)
        mask = torch.ones(tokens.shape[:2], dtype=torch.long, device=tokens.device)
        return {"tokens": tokens, "mask": mask}

    def encode_text(self, input_ids: Tensor, attention_mask: Tensor) -> Feats:
        tokens = self.inputs.text(self.text(input_ids, attention_mask))
        return {"tokens": tokens, "mask": attention_mask.long()}

    def fuse(self, image: Feats, text: Feats) -> tuple[Tensor, Tensor]:
        """→ (fused text Float[B, L, H], fused image Float[B, N, H])."""
        return self.fusion(text["tokens"], text["mask"], image["tokens"], image["mask"])

    def memory(self, fused_text: Tensor, fused_image: Tensor, image: Feats, text: Feats) -> tuple[Tensor, Tensor]:
        """The decoder's cross-attention memory: [text; image] and its mask."""
        return torch.cat([fused_text, fused_image], 1), torch.cat([text["mask"], image["mask"]], 1)

    def pool(self, fused_text: Tensor, fused_image: Tensor, image: Feats, text: Feats) -> Tensor:
        """The pair feature: text ⊕ image pooler (encoder-only) or the decoder's class token output."""
        if self.decoder is None:
            return torch.cat([self.text_pooler(fused_text, text["mask"]),
                              self.image_pooler(fused_image, image["mask"])], dim=-1)
        assert self.decoder_vocab is not None
        memory, memory_mask = self.memory(fused_text, fused_image, image, text)
        start = torch.full((memory.shape[0], 1), self.decoder_vocab.class_token, device=memory.device)
        return self.decoder(start, memory, memory_mask)[:, 0]

    def pair_features(self, image: Feats, text: Feats) -> Tensor:
        return self.pool(*self.fuse(image, text), image, text)

    def score_pairs(self, image_feats: Feats, text_feats: Feats, head: str = "itm") -> Tensor:
        """Aligned pairs (row i with row i) → Float[N] score: ITM positive logit or rank score."""
        pooled = self.pair_features(image_feats, text_feats)
        if head == "itm":
            if "itm" not in self.heads:
                raise ValueError("score_pairs(head='itm') needs a model built with the 'itm' objective")
            return self.heads["itm"](pooled)[:, 1]
        if head == "rank":
            if "retrieval" not in self.heads:
                raise ValueError("score_pairs(head='rank') needs a model built with the 'retrieval' task")
            return self.heads["retrieval"](pooled)
        raise ValueError(f"unknown score head '{head}'; expected 'itm' or 'rank'")

    # ---- forward ----------------------------------------------------------------------------

    def forward(self, batch: Mapping[str, Mapping[str, Any]]) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        total: Tensor | None = None
        for name, sub in batch.items():
            if name not in self.objectives and name not in self.tasks:
                raise KeyError(f"batch has a sub-batch '{name}', but the model was built for "
                               f"objectives {list(self.objectives)} and tasks {list(self.tasks)}")
            loss, logits = self._run(name, sub)
            out[f"loss/{name}"], out[f"logits/{name}"] = loss, logits
            weighted = self.loss_weights.get(name, 1.0) * loss
            total = weighted if total is None else total + weighted
        if total is None:
            raise ValueError("empty batch: no sub-batch to compute a loss on")
        out["loss"] = total
        return out

    def _run(self, name: str, sub: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
        if name in MIM_OBJECTIVES:
            return self._mim(name, sub)
        if name == "span-corruption":
            return self._span(sub)
        image = self.encode_image(sub["pixel_values"])
        if name == "mlm":
            fused_text, _ = self.fuse(image, self.encode_text(sub["input_ids"], sub["attention_mask"]))
            logits = self.heads["mlm"](fused_text)
            return _token_cross_entropy(logits, sub["mlm_labels"]), logits
        if name == "retrieval":
            return self._retrieval(image, sub)
        text = self.encode_text(sub["input_ids"], sub["attention_mask"])
        pooled = self.pair_features(image, text)
        if name == "vqa":
            logits = self.heads["vqa"](pooled)
            targets = sub["vqa_targets"].to(logits.dtype)
            # METER: mean BCE over answers × number of answers (= sum over answers, mean over batch).
            return F.binary_cross_entropy_with_logits(logits, targets) * targets.shape[1], logits
        if name == "itm":
            logits = self.heads["itm"](pooled)
            return F.cross_entropy(logits, sub["itm_labels"]), logits
        if name == "nlvr2":
            second = self.encode_image(sub["pixel_values_2"], type_id=2)
            pooled = torch.cat([pooled, self.pair_features(second, text)], dim=-1)
        logits = self.heads[name](pooled)
        return F.cross_entropy(logits, sub["labels"]), logits

    def _retrieval(self, image: Feats, sub: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
        ids, mask = sub["input_ids"], sub["attention_mask"]
        b, options, length = ids.shape
        text = self.encode_text(ids.reshape(b * options, length), mask.reshape(b * options, length))
        # Each image is encoded once and repeated for its 1 + k captions.
        rows = torch.arange(b, device=ids.device).repeat_interleave(options)
        image = {k: v.index_select(0, rows) for k, v in image.items()}
        scores = self.heads["retrieval"](self.pair_features(image, text)).view(b, options)
        target = torch.zeros(b, dtype=torch.long, device=scores.device)
        return F.cross_entropy(scores, target), scores

    def _span(self, sub: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
        assert self.decoder is not None and self.decoder_vocab is not None
        corrupted = span_corrupt(sub["input_ids"], sub["attention_mask"], vocab=self.decoder_vocab,
                                 mask_token_id=self.special_tokens["mask"],
                                 pad_token_id=self.special_tokens.get("pad", 0))
        image = self.encode_image(sub["pixel_values"])
        text = self.encode_text(corrupted.input_ids, corrupted.attention_mask)
        memory, memory_mask = self.memory(*self.fuse(image, text), image, text)
        hidden = self.decoder(corrupted.decoder_input_ids, memory, memory_mask, corrupted.decoder_attention_mask)
        logits = self.heads["span-corruption"](hidden)
        return _token_cross_entropy(logits, corrupted.labels), logits

    def _mim(self, name: str, sub: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
        pixels = sub["pixel_values"]
        grid = self.mim_grid
        assert grid is not None
        if pixels.shape[-1] != grid.grid * grid.patch:
            raise ValueError(f"MIM heads were built for {grid.grid * grid.patch}px images; got {pixels.shape[-1]}px")
        masked = mim.random_patch_mask(pixels.shape[0], grid.num_patches, self.mim_prob, pixels.device)
        image = self.encode_image(mim.mask_pixels(pixels, masked, grid.patch))
        _, fused_image = self.fuse(image, self.encode_text(sub["input_ids"], sub["attention_mask"]))
        queries = fused_image[:, grid.extra_tokens:][masked]  # Float[M, H], the masked patches' tokens
        patches = mim.patchify(pixels, grid.patch)  # the clean pixels are the targets
        if name == "mim-regression":
            predicted = self.heads[name](queries)
            return F.mse_loss(predicted, patches[masked].to(predicted.dtype)), predicted
        if name == "mim-discrete-code":
            tokenizer = self.patch_tokenizer
            if isinstance(tokenizer, mim.KMeansPatchTokenizer) and not tokenizer.is_fitted:
                tokenizer.fit(patches.detach().flatten(0, 1))  # fallback; fit on training patches beforehand
            logits = self.heads[name](queries)
            return F.cross_entropy(logits, tokenizer.encode(patches[masked])), logits
        # In-batch negatives: every patch of every image in the batch is a candidate.
        logits = self.heads[name](queries, patches.flatten(0, 1).to(queries.dtype))
        return F.cross_entropy(logits, masked.flatten().nonzero().squeeze(1)), logits

    @torch.no_grad()
    def fit_patch_tokenizer(self, pixel_values: Tensor, iters: int = 20, seed: int = 0) -> None:
        """Fit the k-means MIM tokenizer on training images (Float[N, 3, H, W], normalised) before training."""
        tokenizer = getattr(self, "patch_tokenizer", None)
        if not isinstance(tokenizer, mim.KMeansPatchTokenizer) or self.mim_grid is None:
            raise ValueError("fit_patch_tokenizer needs a model built with the 'mim-discrete-code' objective")
        tokenizer.fit(mim.patchify(pixel_values, self.mim_grid.patch).flatten(0, 1), iters=iters, seed=seed)

    # ---- fine-tuning from pre-training ---------------------------------------------------------

    def load_pretrained_vlp(self, state_dict: Mapping[str, Tensor]) -> dict[str, list[str]]:
        """Load a pre-training checkpoint; heads absent there stay as initialised.

        Vision position tables are resampled when fine-tuning runs at another resolution
        (METER pre-trains at 224px and fine-tunes at 384px+). The retrieval rank head starts
        from the ITM head's positive row, and the NLVR2 second-image type embedding from the
        image type, as in METER. Any other shape mismatch is an error: a different model.
        """
        state = _adapt_vision(dict(state_dict), self.vision)
        own = self.state_dict()
        mismatched = sorted(k for k, v in state.items() if k in own and own[k].shape != v.shape)
        if mismatched:
            shown = ", ".join(f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in mismatched[:3])
            raise ValueError(f"the pre-training checkpoint does not fit this model ({len(mismatched)} tensors "
                             f"differ in shape: {shown}); was it trained with another model spec?")
        result = self.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
        if "retrieval" in self.heads and "heads.itm.fc.weight" in state:
            self.heads["retrieval"].init_from_itm(state["heads.itm.fc.weight"], state["heads.itm.fc.bias"])
        if "nlvr2" in self.tasks:
            self.inputs.init_second_image()
        return {"missing": [k for k in result.missing_keys if not k.startswith("heads.")],
                "new_heads": sorted({k.split(".")[1] for k in result.missing_keys if k.startswith("heads.")}),
                "unexpected": sorted(set(state) - set(own))}


def _adapt_vision(state: dict[str, Tensor], vision: nn.Module) -> dict[str, Tensor]:
    """Resample the checkpoint's vision position tables to this encoder's image size."""
    prefix = "vision."
    sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    own = vision.state_dict()
    if all(k not in own or own[k].shape == v.shape for k, v in sub.items()):
        return state
    from harness.models.interpolate import adapt_state_dict

    adapted = adapt_state_dict(sub, vision)
    return {**{k: v for k, v in state.items() if not k.startswith(prefix)},
            **{prefix + k: v for k, v in adapted.items()}}


def _token_cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean CE over labelled tokens (-100 = none); 0 with a gradient when none is labelled."""
    labels = labels.to(logits.device)
    if not bool((labels != -100).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits.flatten(0, -2).float(), labels.flatten(), ignore_index=-100)


def _declare(encoder: nn.Module, group: str) -> nn.Module:
    """Encoders declare their LR group themselves; a stand-in without one gets ``group``."""
    if not hasattr(encoder, "lr_group"):
        encoder.lr_group = group  # type: ignore[assignment]
    return encoder


def build_model(
    spec: ModelSpec,
    *,
    objectives: Sequence[str] = (),
    tasks: Mapping[str, Mapping[str, Any]] | None = None,
    loss_weights: Mapping[str, float] | None = None,
    mlm_prob: float = 0.15,
    mim_prob: float = 0.15,
    image_size: int | None = None,
) -> MeterModel:
    """The METER model of ``spec`` with heads for ``objectives`` (pre-training) and ``tasks``."""
    from harness.registry import TEXT_ENCODERS, VISION_ENCODERS

    vision = VISION_ENCODERS.build(spec.vision, spec=spec, image_size=image_size)
    text = TEXT_ENCODERS.build(spec.text, spec=spec)
    special = _special_tokens(spec, text) if "span-corruption" in objectives else {}
    if image_size is None:
        from harness.models.vision import preprocess_config

        image_size = int(preprocess_config(spec)["image_size"])
    return MeterModel(vision, text, spec=spec, objectives=objectives, tasks=tasks, loss_weights=loss_weights,
                      mlm_prob=mlm_prob, mim_prob=mim_prob, image_size=image_size, special_tokens=special)


def _special_tokens(spec: ModelSpec, text: nn.Module) -> dict[str, int]:
    """Mask and pad ids for span corruption: from the text encoder, else from its tokenizer."""
    mask, pad = getattr(text, "mask_token_id", None), getattr(text, "pad_token_id", None)
    if mask is None:
        from harness.models.text import load_tokenizer

        tokenizer = load_tokenizer(spec)
        mask, pad = tokenizer.mask_token_id, tokenizer.pad_token_id
    if mask is None:
        raise ValueError(f"text encoder '{spec.text}' has no mask token, which span corruption needs")
    return {"mask": int(mask), "pad": int(pad or 0)}
