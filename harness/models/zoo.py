"""The tiny pre-trained zoo: CPU-sized encoders of every family, pre-trained on the synthetic world.

Layout: ``<cache>/zoo/<recipe hash>/`` holds ``tokenizer/`` (the word-level tokenizer every tiny text
encoder shares), ``text/<family>/`` (``save_pretrained`` model + tokenizer) and
``vision/<name>/model.safetensors`` (the timm backbone's state dict). The hash covers everything
that decides the weights (architectures, data, steps), so changing the recipe starts a new zoo
instead of mixing old and new entries. Entries are written to a temporary folder and renamed into
place under a lock: concurrent jobs never see half an entry and never train one twice.

``HARNESS_ZOO_STEPS`` overrides the number of training steps (tests use a handful).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.locks import file_lock
from harness.paths import cache_dir
from harness.registry import TEXT_ENCODERS, VISION_ENCODERS

ZOO_VERSION = 2  # 2: each family pre-trained by its own recipe (zoo_catalog)
DEFAULT_STEPS = 300
_DATA = {"corpus_seed": 1234, "corpus_n": 2000, "image_seed": 4321, "image_n": 2000}
_TRAIN: dict[str, dict[str, Any]] = {"text": {"batch": 32, "lr": 1e-3}, "vision": {"batch": 32, "lr": 1e-3}}
META_FILE = "zoo.json"


def zoo_steps() -> int:
    raw = os.environ.get("HARNESS_ZOO_STEPS")
    if not raw:
        return DEFAULT_STEPS
    try:
        steps = int(raw)
    except ValueError:
        raise ValueError(f"HARNESS_ZOO_STEPS must be a whole number of steps, got {raw!r}") from None
    if steps < 1:
        raise ValueError(f"HARNESS_ZOO_STEPS must be at least 1, got {steps}")
    return steps


def recipe() -> dict[str, Any]:
    """Everything that determines the zoo's weights (its hash names the zoo folder)."""
    from harness.models.text_families import tiny_recipe
    from harness.models.vision_families import TINY_IMAGE_SIZE, tiny_arch, vision_meta

    vision = {n: {"arch": tiny_arch(n), "mean": vision_meta(n).mean, "std": vision_meta(n).std}
              for kind, n in all_entries() if kind == "vision"}
    return {"version": ZOO_VERSION, "steps": zoo_steps(), "data": _DATA, "train": _TRAIN,
            "text": tiny_recipe(),
            "vision": vision, "image_size": TINY_IMAGE_SIZE,
            "recipes": {f"{kind}/{n}": entry_recipe(kind, n) for kind, n in all_entries()}}


def recipe_hash() -> str:
    body = json.dumps(recipe(), sort_keys=True, default=list)
    return hashlib.sha256(body.encode()).hexdigest()[:12]


def zoo_root() -> Path:
    return cache_dir() / "zoo" / recipe_hash()


def canonical(kind: str, name: str) -> tuple[str, str]:
    """(kind, entry name): validates the name; ``emb-only`` lives in the BERT entry."""
    if kind == "text":
        return "text", TEXT_ENCODERS.get(name).meta.family  # emb-only lives in the BERT entry
    if kind == "vision":
        VISION_ENCODERS.get(name)
        return "vision", name
    raise ValueError(f"zoo entry kind must be 'text' or 'vision', got {kind!r}")


def in_zoo(kind: str, name: str) -> bool:
    """Whether the zoo builds ``name``: encoders of a family in the family tables do; a plug-in's
    encoder of its own family builds itself."""
    from harness.models.text_families import FAMILIES as TEXT_FAMILIES
    from harness.models.vision_families import FAMILIES as VISION_FAMILIES

    if kind == "text":
        return TEXT_ENCODERS.get(name).meta.family in TEXT_FAMILIES
    return VISION_ENCODERS.get(name).meta.family in VISION_FAMILIES


def all_entries() -> list[tuple[str, str]]:
    text = sorted({("text", e.meta.family) for e in TEXT_ENCODERS if in_zoo("text", e.name)})
    return text + [("vision", n) for n in VISION_ENCODERS.names() if in_zoo("vision", n)]


def entry_dir(kind: str, name: str) -> Path:
    kind, name = canonical(kind, name)
    return zoo_root() / kind / name.replace("/", "-")


def _missing(entries: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [e for e in entries if not entry_dir(*e).is_dir()]


@contextlib.contextmanager
def _locked(root: Path, label: str) -> Iterator[None]:
    """One builder per entry across processes (jobs started side by side on one machine)."""
    with file_lock(root / f".lock-{label.replace('/', '-')}"):
        yield


def _publish(tmp: Path, final: Path) -> None:
    """Rename a finished temporary folder into place (atomic on one file system)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(tmp, final)
    except OSError:
        if not final.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)  # someone else published it first


def _tmp_dir(root: Path, label: str) -> Path:
    tmp = root / f".tmp-{label.replace('/', '-')}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def _write_meta(folder: Path, meta: dict[str, Any]) -> None:
    (folder / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True, default=list) + "\n")


def _corpus() -> list[str]:
    from harness.data.synthetic import caption_corpus

    return caption_corpus(_DATA["corpus_seed"], _DATA["corpus_n"])


def ensure_tokenizer() -> Path:
    """The zoo's word-level tokenizer folder (built in about a second when missing)."""
    root = zoo_root()
    final = root / "tokenizer"
    if not final.is_dir():
        with _locked(root, "tokenizer"):
            if not final.is_dir():
                from harness.data.text import word_tokenizer

                tmp = _tmp_dir(root, "tokenizer")
                word_tokenizer(_corpus()).save_pretrained(tmp)
                _publish(tmp, final)
    return final


# ---- what the encoders load: this zoo, or a copy of one given as model.weights_dir -------------

def _copied(weights_dir: str, *parts: str) -> Path:
    """A file or folder in a copied zoo (``weights_dir`` with the layout of a zoo root)."""
    from harness.models.weights import MissingWeights

    path = Path(weights_dir).expanduser().joinpath(*parts)
    if not path.exists():
        raise MissingWeights(
            f"tiny weights not found: {path} does not exist. For scale: tiny, model.weights_dir must be a copy "
            f"of a tiny zoo folder (with tokenizer/, text/<name>/, vision/<name>/); build one with "
            f"`harness zoo build` and copy {zoo_root()}, or leave weights_dir unset to use the zoo directly.")
    return path


def tokenizer_dir(weights_dir: str | None = None) -> Path:
    return _copied(weights_dir, "tokenizer") if weights_dir else ensure_tokenizer()


def text_model_dir(name: str, weights_dir: str | None = None) -> Path:
    """The zoo folder of a tiny text encoder (built if missing)."""
    if weights_dir:
        return _copied(weights_dir, "text", canonical("text", name)[1], "config.json").parent
    ensure_zoo([("text", name)], progress=False)
    return entry_dir("text", name)


def vision_weights_file(name: str, weights_dir: str | None = None) -> Path:
    """The safetensors file of a tiny vision encoder (built if missing)."""
    if weights_dir:
        return _copied(weights_dir, "vision", name.replace("/", "-"), "model.safetensors")
    ensure_zoo([("vision", name)], progress=False)
    return entry_dir("vision", name) / "model.safetensors"


# ---- building ---------------------------------------------------------------------------------

def ensure_zoo(names: list[tuple[str, str]] | None = None, *, progress: bool = True) -> Path:
    """Build the missing tiny entries among ``names`` ((kind, name) pairs; None: all); returns the zoo root.
    A second call finds them and returns at once."""
    asked = names if names is not None else all_entries()
    entries = [canonical(k, n) for k, n in asked if in_zoo(canonical(k, n)[0], n)]  # canonical checks the kind
    wanted = list(dict.fromkeys(entries))
    root = zoo_root()
    todo = _missing(wanted)
    if todo:
        _build(root, todo, progress)
    return root


def _build(root: Path, todo: list[tuple[str, str]], progress: bool) -> None:
    from harness.progress import progress_bar

    steps = zoo_steps()
    data: dict[str, Any] = {}  # corpus and images, made once for all entries
    # A bar on a terminal, lines in redirected output (never carriage returns in a log).
    with progress_bar(steps * len(todo), disable=not progress, desc="tiny zoo") as bar:
        for kind, name in todo:
            with _locked(root, f"{kind}-{name}"):
                if entry_dir(kind, name).is_dir():  # another process built it while we waited
                    bar.update(steps)
                    continue
                bar.set_description(f"tiny zoo: {kind} {name}")
                _build_entry(root, kind, name, steps, bar, data)


def _build_entry(root: Path, kind: str, name: str, steps: int, bar: Any, data: dict[str, Any]) -> None:
    def on_step(loss: float) -> None:
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

    tmp = _tmp_dir(root, f"{kind}-{name}")
    started, cpu_started = time.perf_counter(), time.process_time()
    build = _build_text if kind == "text" else _build_vision
    stats = build(tmp, name, steps, on_step, data)
    stats.update(seconds=round(time.perf_counter() - started, 2), steps=steps, kind=kind, name=name,
                 cpu_seconds=round(time.process_time() - cpu_started, 2), recipe=recipe_hash())
    _write_meta(tmp, stats)
    _publish(tmp, entry_dir(kind, name))


def _build_text(tmp: Path, family: str, steps: int, on_step: Any, data: dict[str, Any]) -> dict[str, Any]:
    from transformers import AutoTokenizer

    from harness.data.synthetic import caption_corpus, caption_pairs
    from harness.models.weights import quiet_progress
    from harness.models.zoo_catalog import text_recipe
    from harness.models.zoo_text import train_text

    recipe = text_recipe(family)
    tokenizer = AutoTokenizer.from_pretrained(ensure_tokenizer(), local_files_only=True)
    n = _DATA["corpus_n"] * int(recipe["corpus"])  # RoBERTa: more text
    texts = caption_corpus(_DATA["corpus_seed"], n)
    pairs = caption_pairs(_DATA["corpus_seed"], _DATA["corpus_n"]) if "+" in recipe["objective"] else []
    model, stats = train_text(family, recipe, tokenizer, texts, pairs, steps=steps, seed=_DATA["corpus_seed"],
                              on_step=on_step, **_TRAIN["text"])
    with quiet_progress():
        model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    return stats


def _scene_set(data: dict[str, Any]) -> Any:
    """Images, labels and captions of the vision recipes, made once per build."""
    if "scenes" not in data:
        from transformers import AutoTokenizer

        from harness.data.synthetic import captions_for, layout_labels, render_scene_set, scene_labels, scene_rng
        from harness.models.vision_families import TINY_IMAGE_SIZE
        from harness.models.zoo_vision import SceneSet

        images, scenes = render_scene_set(_DATA["image_seed"], _DATA["image_n"], TINY_IMAGE_SIZE)
        captions = [c[0] for c in captions_for(scenes, 1, scene_rng(_DATA["image_seed"], "captions"))]
        tokenizer = AutoTokenizer.from_pretrained(ensure_tokenizer(), local_files_only=True)
        data["scenes"] = SceneSet(images, scene_labels(scenes), layout_labels(scenes), captions, tokenizer)
    return data["scenes"]


def _teacher(name: str, data: Any) -> tuple[Any, Any]:
    """A distillation teacher: the zoo entry ``name`` (built if missing) with its label heads."""
    from harness.models.weights import load_state_dict_file
    from harness.models.zoo_catalog import vision_recipe
    from harness.models.zoo_train import AttributeHeads
    from harness.models.zoo_vision import _encoder

    ensure_zoo([("vision", name)], progress=False)
    folder = entry_dir("vision", name)
    encoder = _encoder(name)
    encoder.backbone.load_state_dict(load_state_dict_file(folder / "model.safetensors"))
    layout = vision_recipe(name).get("labels") == "attributes+layout"
    heads = AttributeHeads(encoder.width, {**data.labels, **(data.layout if layout else {})})
    heads.load_state_dict(load_state_dict_file(folder / "heads.safetensors"))
    return encoder.eval(), heads.eval()


def _build_vision(tmp: Path, name: str, steps: int, on_step: Any, data: dict[str, Any]) -> dict[str, Any]:
    from harness.models.vision_families import tiny_arch
    from harness.models.weights import save_state_dict
    from harness.models.zoo_catalog import vision_recipe
    from harness.models.zoo_vision import train_contrastive, train_masked_patches, train_supervised

    recipe, scenes = vision_recipe(name), _scene_set(data)
    kwargs = dict(steps=steps, seed=_DATA["image_seed"], on_step=on_step, **_TRAIN["vision"])
    objective = recipe["objective"]
    if objective == "contrastive":
        backbone, stats = train_contrastive(name, recipe, scenes, **kwargs)
    elif objective == "masked-patch":
        backbone, stats = train_masked_patches(name, recipe, scenes, **kwargs)
    else:
        teacher = _teacher(recipe["teacher"], scenes) if objective == "distilled" else None
        backbone, stats = train_supervised(name, recipe, scenes, teacher=teacher, **kwargs)
        save_state_dict(stats.pop("heads").state_dict(), tmp / "heads.safetensors")  # a later teacher's
    save_state_dict(backbone.state_dict(), tmp / "model.safetensors")
    stats["arch"] = tiny_arch(name)
    return stats


def entry_recipe(kind: str, name: str) -> dict[str, Any]:
    from harness.models.zoo_catalog import text_recipe, vision_recipe

    kind, name = canonical(kind, name)
    return text_recipe(name) if kind == "text" else vision_recipe(name)


def zoo_listing() -> list[dict[str, Any]]:
    """One row per zoo entry of the current recipe: kind, name, built, and its training stats."""
    from harness.models.zoo_catalog import describe

    rows = []
    for kind, name in all_entries():
        folder = entry_dir(kind, name)
        meta_file = folder / META_FILE
        meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
        rows.append({"kind": kind, "name": name, "recipe": describe(entry_recipe(kind, name)),
                     "built": folder.is_dir(), "path": str(folder),
                     **{key: meta.get(key) for key in ("steps", "seconds", "cpu_seconds", "final_loss",
                                                       "final_acc")}})
    return rows
