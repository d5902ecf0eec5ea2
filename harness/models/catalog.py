"""Names of every model component, with torch-free metadata.

Builders import their implementation only when called, so listing and validating never
import torch. Metadata (resolution, patch size, width, library id) feeds cost estimates.
"""

from __future__ import annotations

from typing import Any

from harness.registry import ARCHITECTURES, FUSIONS, TEXT_ENCODERS, VISION_ENCODERS


def _vision(name: str, description: str, **meta: Any) -> None:
    def build(**kwargs: Any) -> Any:
        from harness.models.vision import build_vision_encoder

        return build_vision_encoder(name, **kwargs)

    VISION_ENCODERS.register(name, description, **meta)(build)


def _text(name: str, description: str, **meta: Any) -> None:
    def build(**kwargs: Any) -> Any:
        from harness.models.text import build_text_encoder

        return build_text_encoder(name, **kwargs)

    TEXT_ENCODERS.register(name, description, **meta)(build)


_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)

# family: which implementation builds it; timm: the timm architecture (and pretrained tag).
_vision("vit", "ViT-B/16, ImageNet-21k→1k, 224px", family="timm-vit",
        mean=_IMAGENET_MEAN, std=_IMAGENET_STD, timm="vit_base_patch16_224.augreg2_in21k_ft_in1k",
        image_size=224, patch_size=16, width=768, layers=12)
_vision("deit", "DeiT-B/16, 224px", family="timm-vit",
        mean=_IMAGENET_MEAN, std=_IMAGENET_STD, timm="deit_base_patch16_224.fb_in1k",
        image_size=224, patch_size=16, width=768, layers=12)
_vision("distilled-deit", "DeiT-B/16 distilled (CLS + distillation token), 224px", family="timm-vit",
        mean=_IMAGENET_MEAN, std=_IMAGENET_STD, timm="deit_base_distilled_patch16_224.fb_in1k",
        image_size=224, patch_size=16, width=768, layers=12)
_vision("cait", "CaiT-S24, 224px (class-attention image transformer)", family="timm-cait",
        mean=_IMAGENET_MEAN, std=_IMAGENET_STD, timm="cait_s24_224.fb_dist_in1k",
        image_size=224, patch_size=16, width=384, layers=24)
_vision("volo", "VOLO-D1, 224px (outlooker + transformer)", family="timm-volo",
        mean=_IMAGENET_MEAN, std=_IMAGENET_STD, timm="volo_d1_224.sail_in1k",
        image_size=224, patch_size=16, width=384, layers=18)
_vision("beit", "BEiT-B/16, 224px", family="timm-beit",
        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), timm="beit_base_patch16_224.in22k_ft_in22k_in1k",
        image_size=224, patch_size=16, width=768, layers=12)
_vision("swin-base-384", "Swin-B, window 12, 384px, ImageNet-22k (image = mean of last-stage tokens)",
        family="timm-swin", mean=_IMAGENET_MEAN, std=_IMAGENET_STD, timm="swin_base_patch4_window12_384.ms_in22k",
        image_size=384, patch_size=32, width=1024, layers=24)
# OpenAI CLIP uses QuickGELU; timm's *_quickgelu_* architectures match it (same weight files).
_vision("clip-vit-224/32", "CLIP ViT-B/32 image tower, 224px (METER: 11 blocks, norm on all tokens)",
        family="clip", timm="vit_base_patch32_clip_quickgelu_224.openai", mean=_CLIP_MEAN, std=_CLIP_STD,
        image_size=224, patch_size=32, width=768, layers=12)
_vision("clip-vit-224/16", "CLIP ViT-B/16 image tower, 224px (METER: 11 blocks, norm on all tokens)",
        family="clip", timm="vit_base_patch16_clip_quickgelu_224.openai", mean=_CLIP_MEAN, std=_CLIP_STD,
        image_size=224, patch_size=16, width=768, layers=12)

# family: the transformers family (harness/models/text_families.py) that builds it.
_text("bert", "BERT-base-uncased", family="bert", hf="bert-base-uncased", width=768, layers=12, vocab=30522)
_text("roberta", "RoBERTa-base (BPE tokenizer)", family="roberta", hf="roberta-base", width=768, layers=12,
      vocab=50265)
_text("electra", "ELECTRA-base discriminator", family="electra", hf="google/electra-base-discriminator", width=768,
      layers=12, vocab=30522)
_text("albert", "ALBERT-base-v2 (shared layers, 128-d embeddings)", family="albert", hf="albert-base-v2", width=768,
      layers=12, vocab=30000)
_text("deberta", "DeBERTa-base (disentangled attention)", family="deberta", hf="microsoft/deberta-base", width=768,
      layers=12, vocab=50265)
_text("emb-only", "word embeddings only, initialised from BERT's embedding layer; no transformer layers",
      family="bert", embeddings_only=True, hf="bert-base-uncased", width=768, layers=0, vocab=30522)


@FUSIONS.register("co-attention", "per-modality layers: self-attn, cross-attn to the other stream, FFN")
def _co_attention(**kwargs: Any) -> Any:
    from harness.models.fusion import CoAttentionFusion

    return CoAttentionFusion(**kwargs)


@FUSIONS.register("merged-attention", "self-attention layers over the concatenated text+image sequence")
def _merged_attention(**kwargs: Any) -> Any:
    from harness.models.fusion import MergedAttentionFusion

    return MergedAttentionFusion(**kwargs)


@ARCHITECTURES.register("encoder-only", "fusion output feeds the heads directly", decoder=False)
def _encoder_only(**kwargs: Any) -> Any:
    return None


@ARCHITECTURES.register("encoder-decoder", "a decoder over the fusion output (span corruption, class token)",
                        decoder=True)
def _encoder_decoder(**kwargs: Any) -> Any:
    from harness.models.decoder import FusionDecoder

    return FusionDecoder(**kwargs)
