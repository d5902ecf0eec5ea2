"""The tiny zoo's recipes: one per family, written in the catalog, listed by `harness zoo ls`, and no two
entries with the same weights."""

from __future__ import annotations

import itertools
import json

import pytest
import torch

from harness.cli import main
from harness.models import zoo
from harness.models.zoo_catalog import TEXT_RECIPES, VISION_RECIPES, describe

pytestmark = pytest.mark.usefixtures("private_zoo")  # tests/models/conftest.py


def _architecture(kind: str, name: str) -> str:
    from harness.models.text_families import FAMILIES
    from harness.models.vision_families import tiny_arch, vision_meta

    if kind == "text":
        return json.dumps(["text", name, FAMILIES[name].tiny_extra], sort_keys=True)  # each family its own class
    arch, kwargs = tiny_arch(name)  # timm names differ (vit_*, deit_*) where the class is the same
    return json.dumps(["vision", vision_meta(name).family, "distilled" in arch, kwargs], sort_keys=True,
                      default=list)


def test_every_entry_has_a_recipe_and_same_architectures_differ_in_recipe() -> None:
    entries = zoo.all_entries()
    assert {n for k, n in entries if k == "text"} == set(TEXT_RECIPES)
    assert {n for k, n in entries if k == "vision"} == set(VISION_RECIPES)
    for a, b in itertools.combinations(entries, 2):
        if _architecture(*a) == _architecture(*b):  # e.g. vit and deit: one timm VisionTransformer
            assert zoo.entry_recipe(*a) != zoo.entry_recipe(*b), (a, b)


def test_recipes_change_the_zoo_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    before = zoo.recipe_hash()
    monkeypatch.setitem(TEXT_RECIPES, "bert", {**TEXT_RECIPES["bert"], "masking": "dynamic"})
    assert zoo.recipe_hash() != before


def _state(kind: str, name: str) -> dict[str, torch.Tensor]:
    from harness.models.weights import load_state_dict_file

    return load_state_dict_file(zoo.entry_dir(kind, name) / "model.safetensors")


@pytest.mark.slow
def test_no_two_entries_are_equal() -> None:
    """Entries of one architecture (vit, deit; the CLIP pair) are built and compared tensor by tensor."""
    same_arch = [("vision", "vit"), ("vision", "deit"), ("vision", "distilled-deit"),
                 ("vision", "clip-vit-224/16"), ("vision", "clip-vit-224/32"), ("text", "bert"), ("text", "roberta")]
    zoo.ensure_zoo(same_arch, progress=False)
    states = {e: _state(*e) for e in same_arch}
    for a, b in itertools.combinations(same_arch, 2):
        sa, sb = states[a], states[b]
        shared = [k for k in sa if k in sb and sa[k].shape == sb[k].shape]
        assert not shared or any(not torch.equal(sa[k], sb[k]) for k in shared), (a, b)
    # vit and deit share every tensor name and shape: only their recipes tell them apart
    assert set(states["vision", "vit"]) == set(states["vision", "deit"])


def test_zoo_ls_shows_each_recipe(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["zoo", "ls"]) == 0
    out = capsys.readouterr().out
    for name, recipe in {**TEXT_RECIPES, **VISION_RECIPES}.items():
        line = next(line for line in out.splitlines() if f" {name} " in f" {line} ")
        assert describe(recipe) in line and "steps" in out
