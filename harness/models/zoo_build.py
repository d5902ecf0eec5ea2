"""Building the tiny zoo's missing entries (the layout and the recipe hash are in :mod:`harness.models.zoo`,
the recipes in :mod:`harness.models.zoo_catalog`).

Why it is built this way (measured on 2 cores, see the zoo's README section):
- one thread per entry: at width 64 a second thread cost 1.3-1.8× the CPU time for little speed;
- several entries: worker processes side by side (``HARNESS_ZOO_WORKERS``, default 2), each entry under
  its own lock, so the 2 cores run 2 entries instead of 2 threads fighting over one;
- a distillation teacher is built before its student (the student's build loads it), students last;
- the synthetic images, labels and captions are made once per process and resolution.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from harness.models.zoo import (
    _DATA,
    _TRAIN,
    _locked,
    _publish,
    _tmp_dir,
    _write_meta,
    ensure_tokenizer,
    ensure_zoo,
    entry_dir,
    entry_recipe,
    entry_steps,
    env_count,
    recipe_hash,
)

WORKERS_ENV = "HARNESS_ZOO_WORKERS"
_PROCESS_DATA: dict[Any, Any] = {}  # a worker process's scene sets (one per resolution)


def zoo_workers(entries: int) -> int:
    """Processes for ``entries`` entries: ``HARNESS_ZOO_WORKERS``, else 2 (or the CPU count if lower)."""
    wanted = env_count(WORKERS_ENV, "processes") or min(2, os.cpu_count() or 1)
    return max(1, min(wanted, entries))


def build_order(todo: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``todo`` in the order it is built: each missing distillation teacher first, the other vision entries,
    their students, then the text entries (vision entries cost 2-3× a text entry: longest first keeps both
    processes busy to the end, and a student starts long after its teacher)."""
    teachers = [("vision", str(t)) for t in (entry_recipe(*e).get("teacher") for e in todo) if t]
    first = [t for t in dict.fromkeys(teachers) if t in todo or not entry_dir(*t).is_dir()]
    students = [e for e in todo if entry_recipe(*e).get("teacher") and e not in first]
    rest = [e for e in todo if e not in first and e not in students]
    return first + [e for e in rest if e[0] == "vision"] + students + [e for e in rest if e[0] == "text"]


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def build(root: Path, todo: list[tuple[str, str]], progress: bool) -> None:
    order = build_order(todo)
    workers = zoo_workers(len(order))
    if workers > 1 and len(order) > 2 and "fork" in multiprocessing.get_all_start_methods():
        _build_side_by_side(root, order, workers, progress)
    else:
        _build_one_by_one(root, order, progress)


def _build_one_by_one(root: Path, order: list[tuple[str, str]], progress: bool) -> None:
    from harness.progress import progress_bar

    data: dict[Any, Any] = {}
    total = sum(entry_steps(*e) for e in order)
    # A bar on a terminal, lines in redirected output (never carriage returns in a log).
    with single_thread(), progress_bar(total, disable=not progress, desc="tiny zoo") as bar:
        for kind, name in order:
            bar.set_description(f"tiny zoo: {kind} {name}")
            if not build_one(root, kind, name, bar, data):
                bar.update(entry_steps(kind, name))


def _build_side_by_side(root: Path, order: list[tuple[str, str]], workers: int, progress: bool) -> None:
    """Entries handed out in ``order`` to ``workers`` forked processes (fork: they inherit the registries,
    plug-ins included, and the zoo's environment)."""
    from harness.progress import progress_bar

    context = multiprocessing.get_context("fork")
    with progress_bar(len(order), disable=not progress, desc=f"tiny zoo ({workers} processes)", unit="entry") as bar, \
            ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = {pool.submit(_build_in_worker, str(root), kind, name): (kind, name) for kind, name in order}
        try:
            for future in as_completed(futures):
                future.result()
                bar.set_postfix(built=" ".join(futures[future]))
                bar.update(1)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _build_in_worker(root: str, kind: str, name: str) -> None:
    with single_thread():
        build_one(Path(root), kind, name, None, _PROCESS_DATA)


def build_one(root: Path, kind: str, name: str, bar: Any, data: dict[Any, Any]) -> bool:
    """Build one entry under its lock; False when another process built it while we waited."""
    with _locked(root, f"{kind}-{name}"):
        if entry_dir(kind, name).is_dir():
            return False
        build_entry(root, kind, name, bar, data)
        return True


def build_entry(root: Path, kind: str, name: str, bar: Any, data: dict[Any, Any]) -> None:
    """Train ``name`` by its recipe into a temporary folder, write its stats, publish it."""
    def on_step(loss: float) -> None:
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

    steps = entry_steps(kind, name)
    tmp = _tmp_dir(root, f"{kind}-{name}")
    started, cpu_started = time.perf_counter(), time.process_time()
    build_kind = _build_text if kind == "text" else _build_vision
    stats = build_kind(tmp, name, steps, on_step, data)
    stats.update(seconds=round(time.perf_counter() - started, 2), steps=steps, kind=kind, name=name,
                 cpu_seconds=round(time.process_time() - cpu_started, 2), recipe=recipe_hash())
    _write_meta(tmp, stats)
    _publish(tmp, entry_dir(kind, name))
def _build_text(tmp: Path, family: str, steps: int, on_step: Any, data: dict[Any, Any]) -> dict[str, Any]:
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
    train = _TRAIN["text"]
    model: Any
    model, stats = train_text(family, recipe, tokenizer, texts, pairs, steps=steps, seed=_DATA["corpus_seed"],
                              on_step=on_step, batch=int(train["batch"]), lr=float(train["lr"]))
    with quiet_progress():
        model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    return stats


def _scene_set(data: dict[Any, Any], size: int) -> Any:
    """Images (at ``size`` px), labels and captions of the vision recipes, made once per build and size:
    the same scenes at every size, so entries at different resolutions learn the same world."""
    if ("scenes", size) not in data:
        from transformers import AutoTokenizer

        from harness.data.synthetic import captions_for, layout_labels, render_scene_set, scene_labels, scene_rng
        from harness.models.zoo_vision import SceneSet

        images, scenes = render_scene_set(_DATA["image_seed"], _DATA["image_n"], size)
        captions = [c[0] for c in captions_for(scenes, 1, scene_rng(_DATA["image_seed"], "captions"))]
        tokenizer = AutoTokenizer.from_pretrained(ensure_tokenizer(), local_files_only=True)
        data["scenes", size] = SceneSet(images, scene_labels(scenes), layout_labels(scenes), captions, tokenizer)
    return data["scenes", size]


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


def _build_vision(tmp: Path, name: str, steps: int, on_step: Any, data: dict[Any, Any]) -> dict[str, Any]:
    from harness.models.vision import native_image_size, tiny_arch
    from harness.models.weights import save_state_dict
    from harness.models.zoo_catalog import vision_recipe
    from harness.models.zoo_vision import train_contrastive, train_masked_patches, train_supervised

    recipe, scenes = vision_recipe(name), _scene_set(data, native_image_size(name, "tiny"))
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
    stats.update(arch=tiny_arch(name), image_size=native_image_size(name, "tiny"))
    return stats


