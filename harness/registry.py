"""Component registries: one per factor, filled by decorators, imported lazily.

A registry knows which *catalog* modules fill it. Catalog modules are torch-free: they
register small builder functions whose bodies import the heavy implementation only when
called. So ``harness ls`` and grid validation never import torch, yet every name a grid
uses is checked against the real list of components.

    VISION_ENCODERS = Registry("vision encoder", VisionMeta, catalogs=("harness.models.catalog",))

    @VISION_ENCODERS.register("clip-vit-224/32", "CLIP ViT-B/32 at 224px", image_size=224, ...)
    def clip_vit_b32(**kwargs): ...

    VISION_ENCODERS.get("clip-vit-224/23")  # UnknownComponent: ...did you mean 'clip-vit-224/32'?
    VISION_ENCODERS.get("clip-vit-224/32").meta.image_size  # 224, typed (harness/registry_meta.py)

Each registry has its own metadata type; keywords it lacks are an error at registration.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from harness.registry_meta import (
    ArchitectureMeta,
    DatasetMeta,
    ExecutorMeta,
    FusionMeta,
    MetaT,
    ObjectiveMeta,
    TaskMeta,
    TextMeta,
    VisionMeta,
    build_meta,
)

F = TypeVar("F", bound=Callable[..., Any])


class UnknownComponent(KeyError):
    """A name that no registry entry answers to; the message carries a suggestion."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class Entry(Generic[MetaT]):
    """One registered component: its builder and torch-free, typed metadata."""

    name: str
    description: str
    builder: Callable[..., Any]
    meta: MetaT
    origin: str = ""  # the module that registered it (the package's catalog or a user plug-in)

    def build(self, *args: Any, **kwargs: Any) -> Any:
        return self.builder(*args, **kwargs)


class Registry(Generic[MetaT]):
    """Name → Entry, filled by ``@registry.register(name, description, **meta)``; ``meta`` builds ``meta_type``."""

    def __init__(self, kind: str, meta_type: type[MetaT], catalogs: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.meta_type = meta_type
        self._catalogs = catalogs
        self._entries: dict[str, Entry[MetaT]] = {}
        self._loaded = False

    def register(self, name: str, description: str, *, origin: str | None = None, **meta: Any) -> Callable[[F], F]:
        """Register ``name``; a name another module already registered is an error naming both, and so is
        a metadata keyword the registry's type does not have (checked here, before the decorator runs)."""
        typed = build_meta(self.meta_type, self.kind, name, meta)

        def decorator(builder: F) -> F:
            where = origin or getattr(builder, "__module__", "") or "?"
            self._load()  # the package's own names first, so a plug-in cannot shadow one silently
            existing = self._entries.get(name)
            if existing is not None and existing.builder is not builder:
                raise ValueError(f"{self.kind} '{name}' is registered twice: by {existing.origin} and by {where}")
            self._entries[name] = Entry(name, description, builder, typed, where)
            return builder

        return decorator

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self._catalogs:
                importlib.import_module(module)
            from harness.plugins import load_entry_points

            load_entry_points()

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[MetaT]]:
        self._load()
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def suggest(self, name: str) -> str | None:
        close = difflib.get_close_matches(str(name), self.names(), n=1, cutoff=0.6)
        return close[0] if close else None

    def unknown_message(self, name: str) -> str:
        hint = self.suggest(name)
        tail = f"; did you mean '{hint}'?" if hint else f"; known: {', '.join(self.names())}"
        return f"unknown {self.kind} '{name}'{tail}"

    def get(self, name: str) -> Entry[MetaT]:
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownComponent(self.unknown_message(name)) from None

    def build(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self.get(name).build(*args, **kwargs)

    def build_plugin(self, name: str, **kwargs: Any) -> Any:
        """Build an objective or task plug-in; it answers to the name it is registered under
        (whatever its builder called it), since its head and sub-batch are keyed by that name."""
        plugin = self.build(name, **kwargs)
        plugin.name = name
        return plugin


def lazy_builder(name: str, target: str) -> Callable[..., Any]:
    """A builder that imports ``"package.module:Class"`` when called and returns ``Class(name=name, **kwargs)``:
    catalogs stay torch-free while the entry still builds the real behaviour."""
    module_name, _, attr = target.partition(":")

    def build(**kwargs: Any) -> Any:
        return getattr(importlib.import_module(module_name), attr)(name=name, **kwargs)

    build.__qualname__ = f"build[{target}]"
    build.__module__ = module_name  # the entry's origin: the module that implements it
    return build


_MODELS = ("harness.models.catalog",)
VISION_ENCODERS = Registry("vision encoder", VisionMeta, _MODELS)
TEXT_ENCODERS = Registry("text encoder", TextMeta, _MODELS)
FUSIONS = Registry("fusion", FusionMeta, _MODELS)
ARCHITECTURES = Registry("architecture", ArchitectureMeta, _MODELS)
OBJECTIVES = Registry("objective", ObjectiveMeta, ("harness.train.catalog",))
TASKS = Registry("task", TaskMeta, ("harness.train.catalog",))
DATASETS = Registry("dataset", DatasetMeta, ("harness.data.catalog",))
EXECUTORS = Registry("executor", ExecutorMeta, ("harness.dispatch.catalog",))



def default_dataset(task: str) -> str:
    """The dataset fine-tuning ``task`` reads when its section names none: its registration's ``dataset``,
    else that of the task whose data it reads (a plug-in registered with ``reads=``)."""
    meta = TASKS.get(task).meta
    if meta.dataset is not None:
        return meta.dataset
    if meta.reads is not None and meta.reads != task:
        return default_dataset(meta.reads)
    raise ValueError(f"task '{task}' is registered without a default dataset: set finetune.{task}.dataset")


REGISTRIES: dict[str, Registry[Any]] = {
    "vision": VISION_ENCODERS,
    "text": TEXT_ENCODERS,
    "fusion": FUSIONS,
    "architecture": ARCHITECTURES,
    "objective": OBJECTIVES,
    "task": TASKS,
    "dataset": DATASETS,
    "executor": EXECUTORS,
}
