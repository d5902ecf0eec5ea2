"""The tiny zoo's catalog: how each tiny encoder is pre-trained, written down in one place.

Every family gets its own published pre-training recipe, scaled down to the synthetic world, so
that local rows differ for the paper's reasons (METER explains its Tables 2-4 by how the encoders
were pre-trained) and no two entries can end up with the same weights:

text (all on the synthetic caption corpus, word-level tokenizer, width 64, 2 layers)
  bert      MLM with static masks (drawn once per sentence) + next-sentence prediction
  roberta   MLM with dynamic masks (drawn afresh each step), no NSP, on 3× the text
  electra   a small generator does MLM, the discriminator learns replaced-token detection (λ = 50)
  albert    parameters shared across layers (its architecture) + MLM + sentence-order prediction
  deberta   disentangled attention (its architecture), MLM with dynamic masks
vision (synthetic scenes at 64 px; Swin at 96 px)
  clip-*    contrastive image–caption pre-training against a paired tiny text tower (discarded)
  beit      masked-patch prediction of each masked patch's visual token (a fixed colour codebook)
  deit, cait, volo   supervised scene labels with DeiT's strong augmentation (mixup, shifts, noise)
  distilled-deit     DeiT's recipe + hard distillation from the zoo's ViT through the distillation token
  vit       supervised on a larger label set (the per-column layout besides the scene attributes)
  swin-*    supervised scene labels

Steps: 300 at batch 32 unless the recipe says otherwise. Fewer only where the loss had plateaued in a 300-step
build (profiled 2026-11-30, one thread, loaded 2-core machine; smoothed loss, share of its total drop reached):
BEiT's masked-patch loss reaches 90 % of its drop by step 100 (1.90 → 0.60 by step 30, 0.54 at 300), so 100
steps (a 100-step build ends at 0.60, patch accuracy 0.869 vs 0.872). CLIP-ViT/16's contrastive loss reached 97 %
of its drop by step 200 of the 300-step run, but a 200-step build (its learning rate decays sooner) ended at 0.66
against 0.49, in-batch matching 0.73 against 0.79: it keeps 300. Every supervised vision recipe was still falling
at 300 (CaiT, VOLO, DeiT reached only 77-82 % of their drop by step 200) and keeps 300. The text recipes keep
300: they are the main job's and cost 8-14 CPU s each.
Resolution: each vision entry is pre-trained at its family's size ×64/224 to a multiple of 32 (Swin-B-384 → 96
px, the others 224 → 64; :func:`harness.models.vision.native_image_size`).

The zoo's folder is named by the hash of everything here (see :func:`harness.models.zoo.recipe`).
"""

from __future__ import annotations

from typing import Any

TEXT_RECIPES: dict[str, dict[str, Any]] = {
    "bert": {"objective": "mlm+nsp", "masking": "static", "corpus": 1},
    "roberta": {"objective": "mlm", "masking": "dynamic", "corpus": 3},
    "electra": {"objective": "rtd", "masking": "dynamic", "corpus": 1, "generator_width": 32,
                "discriminator_weight": 50.0},
    "albert": {"objective": "mlm+sop", "masking": "dynamic", "corpus": 1},
    "deberta": {"objective": "mlm", "masking": "dynamic", "corpus": 1},
}

_SUPERVISED = {"objective": "supervised", "labels": "attributes", "augment": "none"}
_DEIT = {"objective": "supervised", "labels": "attributes", "augment": "strong"}
VISION_RECIPES: dict[str, dict[str, Any]] = {
    "clip-vit-224/16": {"objective": "contrastive", "text_layers": 1, "temperature": 0.07},
    "clip-vit-224/32": {"objective": "contrastive", "text_layers": 1, "temperature": 0.07},
    "beit": {"objective": "masked-patch", "mask_ratio": 0.4, "steps": 100},
    "deit": _DEIT,
    "cait": _DEIT,
    "volo": _DEIT,
    "distilled-deit": {**_DEIT, "objective": "distilled", "teacher": "vit"},
    "vit": {"objective": "supervised", "labels": "attributes+layout", "augment": "none"},
    "swin-base-384": _SUPERVISED,
}


# Encoders the catalog does not name (user plug-ins) get their kind's most common recipe.
DEFAULT_TEXT = {"objective": "mlm", "masking": "dynamic", "corpus": 1}
DEFAULT_VISION = _SUPERVISED


def text_recipe(family: str) -> dict[str, Any]:
    return TEXT_RECIPES.get(family, DEFAULT_TEXT)


def vision_recipe(name: str) -> dict[str, Any]:
    return VISION_RECIPES.get(name, DEFAULT_VISION)


def describe(recipe: dict[str, Any]) -> str:
    """One line for `harness zoo ls`: the objective first, then the other settings (steps have their column)."""
    rest = ", ".join(f"{k}={v}" for k, v in recipe.items() if k not in ("objective", "steps"))
    return f"{recipe['objective']} ({rest})" if rest else str(recipe["objective"])
