"""The tiny zoo's recipes: one per family, written in the catalog, listed by `harness zoo ls`, and no two
entries with the same weights."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

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


def test_steps_come_from_the_recipe_unless_overridden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARNESS_ZOO_STEPS")
    assert zoo.entry_steps("vision", "beit") == VISION_RECIPES["beit"]["steps"] < zoo.DEFAULT_STEPS
    assert zoo.entry_steps("vision", "vit") == zoo.DEFAULT_STEPS  # no steps in its recipe
    before = zoo.recipe_hash()
    monkeypatch.setitem(VISION_RECIPES, "beit", {**VISION_RECIPES["beit"], "steps": 120})
    assert zoo.entry_steps("vision", "beit") == 120 and zoo.recipe_hash() != before
    monkeypatch.setenv("HARNESS_ZOO_STEPS", "7")
    assert zoo.entry_steps("vision", "beit") == 7


def test_swin_is_pre_trained_at_its_own_resolution() -> None:
    """Swin-B-384 → 96 px (×64/224 to a multiple of 32), the 224-px families → 64 px: the encoder the zoo
    trains, the size recorded with the entry and the default size the entry is loaded at."""
    from harness.models.config import ModelSpec
    from harness.models.vision import build_vision_encoder
    from harness.models.zoo_vision import _encoder

    zoo.ensure_zoo([("vision", "swin-base-384"), ("vision", "deit")], progress=False)
    for name, size in (("swin-base-384", 96), ("deit", 64)):
        assert _encoder(name).image_size == size
        assert json.loads((zoo.entry_dir("vision", name) / zoo.META_FILE).read_text())["image_size"] == size
        spec = ModelSpec(scale="tiny", vision=name, text="bert")
        assert build_vision_encoder(name, spec=spec).image_size == size
    assert zoo.recipe()["vision"]["swin-base-384"]["image_size"] == 96


def test_a_teacher_is_built_before_its_student_and_text_last() -> None:
    from harness.models.zoo_build import build_order

    order = build_order([("text", "bert"), ("vision", "distilled-deit"), ("vision", "beit")])
    assert order == [("vision", "vit"), ("vision", "beit"), ("vision", "distilled-deit"), ("text", "bert")]


def test_several_entries_build_in_worker_processes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """HARNESS_ZOO_WORKERS=2: the entries are trained in two forked processes, not in this one."""
    import os

    from harness.models import zoo_build

    real = zoo_build.build_entry

    def recording(root: Path, kind: str, name: str, *rest: object) -> None:
        (tmp_path / f"{kind}-{name.replace('/', '-')}.pid").write_text(str(os.getpid()))
        real(root, kind, name, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(zoo_build, "build_entry", recording)  # forked workers inherit the patch
    monkeypatch.setenv("HARNESS_ZOO_WORKERS", "2")
    entries = [("text", "bert"), ("text", "roberta"), ("vision", "clip-vit-224/32")]
    zoo.ensure_zoo(entries, progress=False)
    pids = {p.read_text() for p in tmp_path.glob("*.pid")}
    assert len(list(tmp_path.glob("*.pid"))) == 3 and str(os.getpid()) not in pids
    assert all(zoo.entry_dir(*e).is_dir() for e in entries)
    monkeypatch.setenv("HARNESS_ZOO_WORKERS", "none")
    with pytest.raises(ValueError, match="HARNESS_ZOO_WORKERS must be a whole number"):
        zoo_build.zoo_workers(3)
