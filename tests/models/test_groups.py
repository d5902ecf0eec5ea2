"""LR groups by module declaration: total, exclusive, and loud about undeclared parameters."""

from __future__ import annotations

import pytest
import torch
from meter_standins import ALL_OBJECTIVES, ALL_TASKS, DECODER_OBJECTIVES, tiny_model
from torch import nn

from harness.models.groups import GROUP_NAMES, UndeclaredParameter, group_sizes, param_groups

VARIANTS = [
    ("co-attention", "encoder-only", ALL_OBJECTIVES),
    ("merged-attention", "encoder-only", ALL_OBJECTIVES),
    ("co-attention", "encoder-decoder", (*ALL_OBJECTIVES, *DECODER_OBJECTIVES)),
    ("merged-attention", "encoder-decoder", ("itm", "span-corruption")),
]


@pytest.mark.parametrize(("fusion", "arch", "objectives"), VARIANTS)
def test_every_trainable_parameter_in_exactly_one_group(fusion: str, arch: str, objectives: tuple) -> None:
    model = tiny_model(fusion, arch, objectives=objectives, tasks=ALL_TASKS)
    groups = param_groups(model)
    assert set(groups) == set(GROUP_NAMES)
    ids = [id(p) for members in groups.values() for _, p in members]
    assert len(ids) == len(set(ids)), "a parameter is in two groups"
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert set(ids) == trainable


def test_groups_follow_module_roles() -> None:
    model = tiny_model("co-attention", "encoder-decoder", objectives=("mlm", "itm", "span-corruption"),
                       tasks={"retrieval": {}})
    group_of = {name: group for group, members in param_groups(model).items() for name, _ in members}
    prefixes = {"vision.": "pretrained", "text.": "pretrained", "inputs.": "random", "fusion.": "random",
                "decoder.": "random", "heads.": "head"}
    for name, group in group_of.items():
        expected = next(g for prefix, g in prefixes.items() if name.startswith(prefix))
        assert group == expected, f"{name} is in '{group}', expected '{expected}'"
    # METER left its retrieval head in no group; here it is a head.
    assert group_of["heads.retrieval.fc.weight"] == "head"
    poolers = tiny_model("merged-attention", objectives=("itm",))
    pooler_groups = {g for g, members in param_groups(poolers).items() for n, _ in members if "pooler" in n}
    assert pooler_groups == {"random"}


def test_nearest_declaration_wins_and_frozen_parameters_are_left_out() -> None:
    class Inner(nn.Module):
        lr_group = "head"

        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(2, 2)

    class Outer(nn.Module):
        lr_group = "random"

        def __init__(self) -> None:
            super().__init__()
            self.own = nn.Linear(2, 2)
            self.inner = Inner()
            self.frozen = nn.Linear(2, 2).requires_grad_(False)
            self.shared = self.own  # the same parameters under a second name

    groups = param_groups(Outer())
    assert [n for n, _ in groups["random"]] == ["own.weight", "own.bias"]
    assert [n for n, _ in groups["head"]] == ["inner.fc.weight", "inner.fc.bias"]
    assert group_sizes(Outer()) == {"pretrained": 0, "random": 6, "head": 6}


def test_undeclared_and_unknown_groups_are_errors() -> None:
    class Bare(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(2, 2)

    with pytest.raises(UndeclaredParameter, match=r"2 trainable parameters .* fc.weight, fc.bias"):
        param_groups(Bare())
    odd = Bare()
    odd.lr_group = "fast"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="declares lr_group 'fast'"):
        param_groups(odd)


def test_groups_feed_an_optimizer() -> None:
    model = tiny_model(objectives=("itm",))
    groups = param_groups(model)
    optimizer = torch.optim.AdamW([{"params": [p for _, p in members], "lr": lr}
                                   for members, lr in zip(groups.values(), (1e-5, 5e-5, 5e-5), strict=True)])
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(list(model.parameters()))


# ---- parameter counts and FLOPs (meta device: no memory, no weights) ------------------------------


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory: pytest.TempPathFactory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.mark.usefixtures("tiny_cache")
def test_parameter_counts_match_a_real_build() -> None:
    from harness.models.config import ModelSpec
    from harness.models.meter import build_model
    from harness.models.params import flops_per_sample, parameter_counts

    spec = ModelSpec(vision="vit", text="bert", scale="tiny", weights="random", hidden=32, heads=4, fusion_layers=2)
    counts = parameter_counts(spec, objectives=("mlm", "itm"))
    assert counts == {**group_sizes(build_model(spec, objectives=("mlm", "itm"))), "total": counts["total"]}
    assert counts["total"] == counts["pretrained"] + counts["random"] + counts["head"]
    small, large = flops_per_sample(spec, 64, 16), flops_per_sample(spec, 96, 16)
    assert 0 < small < large, "more image tokens cost more"


@pytest.mark.slow
def test_paper_scale_meter_clip16_roberta_counts() -> None:
    """METER-CLIP-ViT-B/16 + RoBERTa-base, 6 co-attention layers at 768: ~358M with MLM + ITM heads."""
    from harness.models.config import ModelSpec
    from harness.models.params import PAPER_SPEC, analytic_flops, flops_per_sample, parameter_counts

    spec = ModelSpec(**PAPER_SPEC)
    counts = parameter_counts(spec, objectives=("mlm", "itm"), image_size=224)
    assert counts["pretrained"] == pytest.approx(202.8e6, rel=0.01)  # CLIP-B/16 (11 blocks) + RoBERTa-base
    assert counts["random"] == pytest.approx(115.8e6, rel=0.01)  # 12 fusion layers, projections, poolers
    assert counts["head"] == pytest.approx(39.2e6, rel=0.01)  # MLM to a 50k vocabulary dominates
    counted = flops_per_sample(spec, 224, 50)
    assert counted == pytest.approx(analytic_flops(spec, 224, 50), rel=0.15)
