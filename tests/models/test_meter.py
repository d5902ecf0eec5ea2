"""MeterModel: every fusion × architecture with every head, pair scores, VLP loading, MIM."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from meter_standins import (
    ALL_OBJECTIVES,
    ALL_TASKS,
    DECODER_OBJECTIVES,
    IMAGE,
    full_batch,
    pair,
    text_batch,
    tiny_model,
)

from harness.models import mim
from harness.models.config import ModelSpec
from harness.models.meter import MeterModel
from harness.registry import TEXT_ENCODERS, VISION_ENCODERS
from harness.train.objectives.mim import fit_patch_tokenizer
from harness.train.random_batch import random_batch

FUSIONS = ("co-attention", "merged-attention")
ARCHITECTURES = ("encoder-only", "encoder-decoder")
# The rank head's bias adds the same constant to all 1 + k scores, so CE gives it no gradient.
NO_GRADIENT_BY_DESIGN = {"heads.retrieval.fc.bias"}


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _objectives(arch: str) -> tuple[str, ...]:
    return (*ALL_OBJECTIVES, *DECODER_OBJECTIVES) if arch == "encoder-decoder" else ALL_OBJECTIVES


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("fusion", FUSIONS)
def test_every_head_trains(fusion: str, arch: str) -> None:
    objectives = _objectives(arch)
    model = tiny_model(fusion, arch, objectives=objectives, tasks=ALL_TASKS, loss_weights={"itm": 2.0})
    names = (*objectives, *ALL_TASKS)
    out = model(full_batch(names, batch=4))
    pooled = model.pooled_dim
    assert pooled == (32 if arch == "encoder-decoder" else 64)
    shapes = {"itm": (4, 2), "vqa": (4, 7), "snli-ve": (4, 3), "nlvr2": (4, 2), "retrieval": (4, 3)}
    for name, shape in shapes.items():
        assert out[f"logits/{name}"].shape == shape
    assert out["logits/mlm"].shape == (4, 12, 40)
    expected = sum(out[f"loss/{n}"] * (2.0 if n == "itm" else 1.0) for n in names)
    torch.testing.assert_close(out["loss"], expected)
    assert all(torch.isfinite(v).all() for v in out.values())
    out["loss"].backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(param.grad).all(), name
        if name not in NO_GRADIENT_BY_DESIGN:
            assert param.grad.abs().sum() > 0, f"{name} got a zero gradient"


def test_new_modules_start_at_the_width_scaled_std() -> None:
    from harness.models.fusion import INIT_STD, init_std

    assert init_std(768) == INIT_STD, "METER's own init at the paper's width"
    assert init_std(64) == pytest.approx(0.02 * 12 ** 0.5)
    model = tiny_model("co-attention", "encoder-only", objectives=("itm",), tasks={"vqa": {"num_answers": 7}})
    expected = init_std(model.spec.hidden)
    for name, module in (("fusion", model.fusion), ("inputs", model.inputs), ("itm head", model.heads["itm"])):
        weights = torch.cat([m.weight.flatten() for m in module.modules() if isinstance(m, torch.nn.Linear)])
        assert weights.std().item() == pytest.approx(expected, rel=0.1), name


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("fusion", FUSIONS)
def test_pair_scores_equal_the_full_model(fusion: str, arch: str) -> None:
    model = tiny_model(fusion, arch, objectives=("itm",), tasks={"retrieval": {}}).eval()
    batch = full_batch(("itm", "retrieval"), batch=3)
    with torch.no_grad():
        out = model(batch)
        itm = batch["itm"]
        images = model.encode_image(itm["pixel_values"])
        texts = model.encode_text(itm["input_ids"], itm["attention_mask"])
        torch.testing.assert_close(model.score_pairs(images, texts, head="itm"), out["logits/itm"][:, 1])
        # Retrieval: encode 3 images and 9 captions once, then score (image b, caption b·3 + j) pairs.
        ret = batch["retrieval"]
        images = model.encode_image(ret["pixel_values"])
        texts = model.encode_text(ret["input_ids"].flatten(0, 1), ret["attention_mask"].flatten(0, 1))
        rows = torch.arange(3).repeat_interleave(3)
        picked = {k: v[rows] for k, v in images.items()}
        fast = model.score_pairs(picked, texts, head="rank").view(3, 3)
    torch.testing.assert_close(fast, out["logits/retrieval"])


def test_vqa_loss_is_bce_times_answers() -> None:
    model = tiny_model(tasks={"vqa": {"num_answers": 7}})
    batch = full_batch(("vqa",), batch=4)
    out = model(batch)
    logits, targets = out["logits/vqa"], batch["vqa"]["vqa_targets"]
    per_batch = F.binary_cross_entropy_with_logits(logits, targets, reduction="sum") / 4
    torch.testing.assert_close(out["loss/vqa"], per_batch)


def test_load_pretrained_vlp_for_fine_tuning() -> None:
    pretrained = tiny_model(objectives=("mlm", "itm"))
    with torch.no_grad():
        pretrained.inputs.type_embed.weight[1].add_(1.0)  # make "image type changed in pre-training" visible
    state = pretrained.state_dict()
    model = tiny_model(tasks={"retrieval": {}, "nlvr2": {}}, seed=5)
    assert not torch.allclose(model.fusion.text_layers[0].ffn.up.weight, pretrained.fusion.text_layers[0].ffn.up.weight)
    report = model.load_pretrained_vlp(state)
    assert report["missing"] == []
    assert report["new_heads"] == ["nlvr2", "retrieval"]
    assert any(k.startswith("heads.mlm.") for k in report["unexpected"])
    torch.testing.assert_close(model.fusion.state_dict(), pretrained.fusion.state_dict())
    itm = pretrained.heads["itm"].fc
    torch.testing.assert_close(model.heads["retrieval"].fc.weight[0], itm.weight[1])
    torch.testing.assert_close(model.heads["retrieval"].fc.bias[0], itm.bias[1])
    types = model.inputs.type_embed.weight
    torch.testing.assert_close(types[2], types[1])
    torch.testing.assert_close(types[1], pretrained.inputs.type_embed.weight[1])


def test_second_image_type_starts_as_the_image_type_without_vlp() -> None:
    """METER copies the image type into the NLVR2 second-image type also when fine-tuning from the
    encoders alone; the width-scaled re-initialisation of new modules must not draw it afresh."""
    model = tiny_model(tasks={"nlvr2": {}})  # width 32: new modules are re-initialised
    types = model.inputs.type_embed.weight
    torch.testing.assert_close(types[2], types[1])
    assert not torch.allclose(types[0], types[1])


def test_mean_pooled_encoder_without_cls() -> None:
    """Swin-like encoders: no CLS token, image pooled by mean; MIM grid has no extra tokens."""
    model = tiny_model(objectives=("itm", "mim-regression"), cls=False)
    assert model.image_pooler.index is None
    assert model.mim_grid == mim.PatchGrid(grid=4, patch=8, extra_tokens=0)
    out = model(full_batch(("itm", "mim-regression")))
    assert out["logits/mim-regression"].shape[1] == 3 * 8 * 8 and torch.isfinite(out["loss"])


def test_mim_masks_the_right_pixels() -> None:
    pixels = torch.randn(2, 3, IMAGE, IMAGE)
    masked = mim.random_patch_mask(2, 16, 0.25, pixels.device)
    assert masked.sum(1).tolist() == [4, 4]
    out = mim.patchify(mim.mask_pixels(pixels, masked, 8), 8)
    clean = mim.patchify(pixels, 8)
    assert torch.all(out[masked] == 0)
    torch.testing.assert_close(out[~masked], clean[~masked])
    assert mim.patch_grid(50, 224) == mim.PatchGrid(7, 32, 1)
    with pytest.raises(ValueError, match="square patch grid"):
        mim.patch_grid(60, 224)


def test_kmeans_patch_tokenizer_separates_clusters_and_persists() -> None:
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 12, generator=g) * 5
    data = centres.repeat(50, 1) + 0.05 * torch.randn(200, 12, generator=g)
    tokenizer = mim.KMeansPatchTokenizer(4, 12).fit(data, seed=1)
    assert isinstance(tokenizer, mim.PatchTokenizer)
    codes = tokenizer.encode(data).view(50, 4)
    assert all(len(set(codes[:, c].tolist())) == 1 for c in range(4)), "each true cluster gets one code"
    assert len(set(codes[0].tolist())) == 4
    clone = mim.KMeansPatchTokenizer(4, 12)
    clone.load_state_dict(tokenizer.state_dict())
    torch.testing.assert_close(clone.encode(data), tokenizer.encode(data))
    with pytest.raises(RuntimeError, match="not fitted"):
        mim.KMeansPatchTokenizer(4, 12).encode(data)


def test_discrete_code_mim_saves_its_codebook_with_the_model() -> None:
    model = tiny_model(objectives=("mim-discrete-code",))
    model(full_batch(("mim-discrete-code",)))  # fits on the first batch when nobody fitted it
    assert model.heads["mim-discrete-code"].tokenizer.is_fitted
    assert "heads.mim-discrete-code.tokenizer.codebook" in model.state_dict()
    fresh = tiny_model(objectives=("mim-discrete-code",))
    fit_patch_tokenizer(fresh, torch.randn(20, 3, IMAGE, IMAGE), iters=3)
    tokenizer = fresh.heads["mim-discrete-code"].tokenizer
    codes = tokenizer.encode(mim.patchify(torch.randn(2, 3, IMAGE, IMAGE), 8))
    assert codes.shape == (2, 16) and int(codes.max()) < tokenizer.num_codes
    with pytest.raises(ValueError, match="mim-discrete-code"):
        fit_patch_tokenizer(tiny_model(objectives=("itm",)), torch.randn(2, 3, IMAGE, IMAGE))


def test_clear_errors() -> None:
    model = tiny_model(objectives=("itm",))
    with pytest.raises(KeyError, match="sub-batch 'vqa'"):
        model({"vqa": pair(2)})
    with pytest.raises(ValueError, match="num_answers"):
        tiny_model(tasks={"vqa": {}})
    with pytest.raises(ValueError, match="needs model.architecture: encoder-decoder"):
        tiny_model(objectives=("span-corruption",))
    with pytest.raises(ValueError, match="no head for task 'vqa2'"):
        tiny_model(tasks={"vqa2": {}})
    with pytest.raises(ValueError, match="loss_weights names 'mlm'"):
        tiny_model(objectives=("itm",), loss_weights={"mlm": 1.0})
    with pytest.raises(ValueError, match="needs a model built with the 'retrieval' task"):
        images = model.encode_image(torch.randn(1, 3, IMAGE, IMAGE))
        model.score_pairs(images, model.encode_text(*text_batch(1)), head="rank")


def test_model_class_is_exported_lazily() -> None:
    import harness.models as models

    assert models.MeterModel is MeterModel


# ---- the real encoders from the registry, tiny scale, random weights ------------------------------

VISION_NAMES, TEXT_NAMES = VISION_ENCODERS.names(), TEXT_ENCODERS.names()
# Every vision encoder with one text encoder and every text encoder with one vision encoder run
# always; the rest of the cross product is marked slow.
_COVER = {(v, "bert") for v in VISION_NAMES} | {("clip-vit-224/32", t) for t in TEXT_NAMES}
ENCODER_PAIRS = [pytest.param(v, t, marks=() if (v, t) in _COVER else pytest.mark.slow)
                 for v in VISION_NAMES for t in TEXT_NAMES]


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory: pytest.TempPathFactory):
    """A private cache: tiny random encoders only need the zoo's tokenizer, built in a second."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.mark.usefixtures("tiny_cache")
@pytest.mark.parametrize(("vision", "text"), ENCODER_PAIRS)
def test_build_model_with_registry_encoders(vision: str, text: str) -> None:
    from harness.models.groups import param_groups
    from harness.models.meter import build_model

    torch.manual_seed(0)
    spec = ModelSpec(vision=vision, text=text, scale="tiny", weights="random", hidden=32, heads=4,
                     fusion_layers=1, dropout=0.0, max_text_len=16)
    objectives = ("mlm", "itm", "mim-in-batch-negatives")
    model = build_model(spec, objectives=objectives)
    out = model(random_batch(objectives, batch=2, image_size=model.vision.image_size, vocab=model.text.vocab_size,
                             text_len=10))
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    # Encoders may hold parameters their forward does not use (e.g. CLIP's dropped 12th block).
    missing = [n for n, p in trainable if p.grad is None and not n.startswith(("vision.", "text."))]
    assert not missing, f"no gradient reached {missing[:5]}"
    assert sum(len(m) for m in param_groups(model).values()) == len(trainable)


@pytest.mark.usefixtures("tiny_cache")
def test_build_model_encoder_decoder_uses_the_tokenizers_mask_token() -> None:
    from harness.models.meter import build_model
    from harness.models.text import load_tokenizer

    spec = ModelSpec(vision="vit", text="bert", architecture="encoder-decoder", scale="tiny", weights="random",
                     hidden=32, heads=4, fusion_layers=1, decoder_layers=1, dropout=0.0)
    model = build_model(spec, objectives=("span-corruption", "itm"))
    assert model.special_tokens["mask"] == load_tokenizer(spec).mask_token_id
    out = model(random_batch(("span-corruption", "itm"), batch=2, image_size=model.vision.image_size,
                             vocab=model.text.vocab_size, text_len=10))
    assert torch.isfinite(out["loss/span-corruption"])


def test_trainers_fast_retrieval_matches_per_pair_model() -> None:
    """The trainer's retrieval evaluation (encode once, fuse per pair) over this model's features."""
    from harness.train import retrieval
    model = tiny_model(objectives=("itm",), tasks={"retrieval": {}}).eval()
    pixels, (ids, mask) = torch.randn(3, 3, IMAGE, IMAGE), text_batch(4)
    images, texts = retrieval.encode_all(model, pixels, ids, mask, batch_size=2)
    for head in ("itm", "rank"):
        fast = retrieval.score_matrix(model, images, texts, 3, 4, head=head, pair_batch=5)
        torch.testing.assert_close(fast, retrieval.naive_score_matrix(model, pixels, ids, mask, head=head))


@pytest.mark.usefixtures("tiny_cache")
def test_fine_tuning_at_a_higher_resolution_resamples_position_embeddings() -> None:
    from harness.models.meter import build_model

    spec = ModelSpec(vision="vit", text="bert", scale="tiny", weights="random", hidden=32, heads=4,
                     fusion_layers=1, dropout=0.0)
    pretrained = build_model(spec, objectives=("itm",), image_size=64)
    model = build_model(spec, tasks={"snli-ve": {}}, image_size=96)
    report = model.load_pretrained_vlp(pretrained.state_dict())
    assert report["missing"] == [] and report["new_heads"] == ["snli-ve"]
    assert model.vision.backbone.pos_embed.shape[1] == 1 + 12 * 12
    torch.testing.assert_close(model.vision.backbone.pos_embed[:, 0], pretrained.vision.backbone.pos_embed[:, 0])
    torch.testing.assert_close(model.fusion.state_dict(), pretrained.fusion.state_dict())
    other = build_model(spec.model_copy(update={"hidden": 64}), tasks={"snli-ve": {}}, image_size=64)
    with pytest.raises(ValueError, match="does not fit this model"):
        other.load_pretrained_vlp(pretrained.state_dict())
