"""The tiny pre-trained zoo: CPU-sized encoders of every family, pre-trained on the synthetic world.

Layout: ``<cache>/zoo/<recipe hash>/`` holds ``tokenizer/`` (the word-level tokenizer every tiny text
encoder shares), ``text/<family>/`` (``save_pretrained`` model + tokenizer) and
``vision/<name>/model.safetensors`` (the timm backbone's state dict). The hash covers everything
that decides the weights (architectures, data, steps), so changing the recipe starts a new zoo
instead of mixing old and new entries. Entries are written to a temporary folder and renamed into
place under a lock: concurrent jobs never see half an entry and never train one twice.

Each entry trains for its recipe's ``steps`` (:mod:`harness.models.zoo_catalog`); ``HARNESS_ZOO_STEPS``
overrides them all (tests use a handful). A build runs single-threaded per entry (2 threads on these
width-64 models cost 1.3-1.8× the CPU for little speed) and, when there are several entries to build,
in ``HARNESS_ZOO_WORKERS`` processes side by side (default: 2, or the CPU count if lower).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.locks import file_lock
from harness.paths import cache_dir
from harness.registry import TEXT_ENCODERS, VISION_ENCODERS

ZOO_VERSION = 3  # 2: each family pre-trained by its own recipe (zoo_catalog); 3: steps per recipe, own resolution
DEFAULT_STEPS = 300  # an entry whose recipe names no steps (a plug-in's)
_DATA = {"corpus_seed": 1234, "corpus_n": 2000, "image_seed": 4321, "image_n": 2000}
_TRAIN: dict[str, dict[str, Any]] = {"text": {"batch": 32, "lr": 1e-3}, "vision": {"batch": 32, "lr": 1e-3}}
META_FILE = "zoo.json"


def env_count(variable: str, what: str) -> int | None:
    """A positive whole number from the environment ``variable`` (None when unset); ``what`` names its unit."""
    raw = os.environ.get(variable)
    if not raw:
        return None
    try:
        count = int(raw)
    except ValueError:
        raise ValueError(f"{variable} must be a whole number of {what}, got {raw!r}") from None
    if count < 1:
        raise ValueError(f"{variable} must be at least 1, got {count}")
    return count


def steps_override() -> int | None:
    """``HARNESS_ZOO_STEPS`` (one number of steps for every entry), or None when unset."""
    return env_count("HARNESS_ZOO_STEPS", "steps")


def entry_steps(kind: str, name: str) -> int:
    """How many steps the entry trains: its recipe's, unless ``HARNESS_ZOO_STEPS`` says otherwise."""
    return steps_override() or int(entry_recipe(kind, name).get("steps", DEFAULT_STEPS))


def recipe() -> dict[str, Any]:
    """Everything that determines the zoo's weights (its hash names the zoo folder)."""
    from harness.models.text_families import tiny_recipe
    from harness.models.vision import native_image_size, tiny_arch, vision_meta

    vision = {n: {"arch": tiny_arch(n), "mean": vision_meta(n).mean, "std": vision_meta(n).std,
                  "image_size": native_image_size(n, "tiny")}
              for kind, n in all_entries() if kind == "vision"}
    return {"version": ZOO_VERSION, "steps": steps_override(), "data": _DATA, "inputs": inputs_digest(),
            "train": _TRAIN, "text": tiny_recipe(), "vision": vision,
            "recipes": {f"{kind}/{n}": entry_recipe(kind, n) for kind, n in all_entries()}}


@functools.lru_cache(maxsize=1)
def inputs_digest() -> str:
    """A digest of what the zoo trains on, as generated now: the text corpus and its sentence pairs, and a
    probe of the vision inputs (scenes, pixels and captions of the first images). The synthetic world is
    made by code, not read from files, so a change to how texts are worded or scenes drawn (e.g. a new
    kind of NLVR2 statement, which the corpus includes) must name a new zoo rather than reuse weights
    trained on the old texts. ~0.1 s, once per process."""
    from harness.data.synthetic import caption_corpus, caption_pairs, captions_for, render_scene_set, scene_rng

    digest = hashlib.sha256()
    for text in caption_corpus(_DATA["corpus_seed"], _DATA["corpus_n"]):
        digest.update(text.encode() + b"\n")
    for a, b in caption_pairs(_DATA["corpus_seed"], _DATA["corpus_n"]):
        digest.update(f"{a}\t{b}\n".encode())
    images, scenes = render_scene_set(_DATA["image_seed"], 16, 32)
    digest.update(images.tobytes())
    for caption in captions_for(scenes, 1, scene_rng(_DATA["image_seed"], "captions")):
        digest.update(caption[0].encode() + b"\n")
    return digest.hexdigest()[:16]


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
        from harness.models.zoo_build import build

        build(root, todo, progress)
    return root


def entry_recipe(kind: str, name: str) -> dict[str, Any]:
    from harness.models.zoo_catalog import text_recipe, vision_recipe

    kind, name = canonical(kind, name)
    return text_recipe(name) if kind == "text" else vision_recipe(name)


def zoo_listing() -> list[dict[str, Any]]:
    """One row per zoo entry of the current recipe: kind, name, built, pre-training resolution and its
    training stats."""
    from harness.models.vision import native_image_size
    from harness.models.zoo_catalog import describe

    rows = []
    for kind, name in all_entries():
        folder = entry_dir(kind, name)
        meta_file = folder / META_FILE
        meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
        rows.append({"kind": kind, "name": name, "recipe": describe(entry_recipe(kind, name)),
                     "built": folder.is_dir(), "path": str(folder),
                     "image_size": native_image_size(name, "tiny") if kind == "vision" else None,
                     **{key: meta.get(key) for key in ("steps", "seconds", "cpu_seconds", "final_loss",
                                                       "final_acc")}})
    return rows
