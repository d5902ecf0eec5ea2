"""METER assembled from factors: encoders → projection + type embedding → fusion → pooling → heads.

``MeterModel.forward(batch)`` takes ``{name: sub_batch}`` (layout in harness/README.md) and
computes every requested loss inside forward, so one DDP forward covers them all: each
objective and task is a plug-in (``harness.train.plugin``, built by its registry entry) that owns
its head, batch fields and loss; the model keeps encoders, projections, fusion, pooling and the
decoder, and calls the plug-ins. It returns ``{"loss": Σ weight·loss, "loss/<name>": ..., "logits/<name>": ...}``.

Retrieval evaluation encodes each image and text once (``encode_image``/``encode_text``
return ``{"tokens", "mask"}`` dicts, indexable row-wise) and runs only fusion + head per
pair (``score_pairs``); the result equals the full model on that pair.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from harness.models import mim
from harness.models.config import ModelSpec
from harness.models.fusion import INIT_STD, ModalityInput, Pooler, init_new_weights, init_std
from harness.models.groups import declaring_modules
from harness.models.span import DecoderVocab

Feats = dict[str, Tensor]


class MeterModel(nn.Module):
    vision: Any  # the encoders' own attributes (width, vocab_size, image_size) are read by name
    text: Any

    def __init__(
        self,
        vision: Any,  # encoders: nn.Modules with the encoder contract (width, vocab_size, ...)
        text: Any,
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
        from harness.registry import ARCHITECTURES, FUSIONS, OBJECTIVES, TASKS

        tasks = dict(tasks or {})
        self.spec, self.objectives, self.tasks = spec, tuple(objectives), tuple(tasks)
        self.loss_weights = {name: float(w) for name, w in (loss_weights or {}).items()}
        self.mlm_prob, self.mim_prob = mlm_prob, mim_prob  # masking for MLM is the data's; kept for reference
        self.image_size = image_size
        self.special_tokens = dict(special_tokens or {})
        h = spec.hidden
        self.vision, self.text = _declare(vision, "pretrained"), _declare(text, "pretrained")
        self.inputs = ModalityInput(int(text.width), int(vision.width), h)
        self.fusion = FUSIONS.build(spec.fusion, hidden=h, heads=spec.heads, layers=spec.fusion_layers,
                                    dropout=spec.dropout)
        self.decoder_vocab: DecoderVocab | None = None
        if ARCHITECTURES.get(spec.architecture).meta.decoder:
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
        # Plug-ins are plain objects (not modules): their heads are ``self.heads[name]``.
        self.plugins: dict[str, Any] = {}
        for registry, names in ((OBJECTIVES, {name: {} for name in self.objectives}), (TASKS, tasks)):
            for name, info in names.items():
                if name not in registry:
                    raise ValueError(f"the model has no head for {registry.kind} '{name}': "
                                     f"{registry.unknown_message(name)}")
                plugin = registry.build_plugin(name)
                self.plugins[name] = plugin
                self.heads[name] = plugin.build_head(self, info)
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
        # METER: the second image's type embedding starts as the image's, also without VLP (the
        # re-initialisation above drew row 2 afresh).
        self.inputs.init_second_image()

    @torch.no_grad()
    def patch_grid(self) -> mim.PatchGrid:
        """The vision encoder's output token grid at the pre-training resolution (masked image
        modelling's patches), from one forward on a blank image; probed once."""
        if self.mim_grid is None:
            self.mim_grid = self._probe_grid(self.image_size)
        return self.mim_grid

    def _probe_grid(self, image_size: int | None) -> mim.PatchGrid:
        size = image_size or getattr(self.vision, "image_size", None)
        if size is None:
            raise ValueError("masked image modelling needs image_size (the pre-training resolution)")
        was_training = self.vision.training
        self.vision.eval()
        param = next(self.vision.parameters())
        tokens = self.vision(torch.zeros(1, 3, size, size, dtype=param.dtype, device=param.device)).shape[1]
        self.vision.train(was_training)
        return mim.patch_grid(tokens, size)

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
        """→ (fused text Float[B, L, H], fused image Float[B, N, H]). Image tokens are never padded
        (``encode_image``'s mask is all ones): no mask, so attention over them needs no bias."""
        return self.fusion(text["tokens"], text["mask"], image["tokens"], None)

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
        scorers = {p.score_name: name for name, p in self.plugins.items() if p.score_name}
        if head not in scorers:
            from harness.registry import OBJECTIVES, TASKS

            owners = [(e.name, reg.kind) for reg in (OBJECTIVES, TASKS) for e in reg
                      if reg.build_plugin(e.name).score_name == head]
            if owners:
                raise ValueError(f"score_pairs(head='{head}') needs a model built with the '{owners[0][0]}' "
                                 f"{owners[0][1]}")
            raise ValueError(f"unknown score head '{head}'; this model scores with {sorted(scorers) or 'none'}")
        name = scorers[head]
        return self.plugins[name].pair_score(self.heads[name], self.pair_features(image_feats, text_feats))

    # ---- forward ----------------------------------------------------------------------------

    def forward(self, batch: Mapping[str, Mapping[str, Any]]) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        total: Tensor | None = None
        for name, sub in batch.items():
            if name not in self.objectives and name not in self.tasks:
                raise KeyError(f"batch has a sub-batch '{name}', but the model was built for "
                               f"objectives {list(self.objectives)} and tasks {list(self.tasks)}")
            loss, logits = self.plugins[name].loss(self, sub)
            out[f"loss/{name}"], out[f"logits/{name}"] = loss, logits
            weighted = self.loss_weights.get(name, 1.0) * loss
            total = weighted if total is None else total + weighted
        if total is None:
            raise ValueError("empty batch: no sub-batch to compute a loss on")
        out["loss"] = total
        return out

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
        for plugin in self.plugins.values():
            plugin.after_pretrained_load(self, state)
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
    from harness.registry import OBJECTIVES

    needs_special = any(OBJECTIVES.build_plugin(n).needs_special_tokens for n in objectives)
    special = _special_tokens(spec, text) if needs_special else {}
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
