"""User plug-ins: modules from outside the package that register encoders, fusions, objectives,
tasks or datasets into the registries (``@OBJECTIVES.register(...)`` at import).

Two ways in, both imported before anything is validated:
- a grid's top-level ``plugins: [my_package.my_module]`` (and every job of that grid carries the
  list, so a worker imports the same modules before it reads the job);
- the Python entry-point group ``meter_harness.plugins`` of an installed distribution, loaded the
  first time any registry is read.

A name that is already registered is an error naming both modules. Each loaded plug-in is
recorded as (module, version): the version of the distribution that provides it, else the
module's ``__version__``, else "unknown". Torch-free.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass

ENTRY_POINT_GROUP = "meter_harness.plugins"


class PluginError(ValueError):
    """A plug-in module that cannot be imported (or that fails while registering)."""


@dataclass(frozen=True)
class PluginInfo:
    module: str
    version: str


_entry_points_loaded = False
_loaded: dict[str, PluginInfo] = {}


def module_version(module_name: str) -> str:
    """The version of the distribution providing ``module_name`` (else its ``__version__``)."""
    top = module_name.split(".")[0]
    for dist in importlib.metadata.packages_distributions().get(top, []):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    module = importlib.import_module(module_name)
    return str(getattr(module, "__version__", None) or getattr(importlib.import_module(top), "__version__", "unknown"))


def import_plugin(module_name: str) -> PluginInfo:
    """Import one plug-in module (once) and record it."""
    if module_name in _loaded:
        return _loaded[module_name]
    try:
        importlib.import_module(module_name)
    except ImportError as exc:
        raise PluginError(f"cannot import plug-in '{module_name}': {exc}") from exc
    info = PluginInfo(module_name, module_version(module_name))
    _loaded[module_name] = info
    return info


def import_plugins(module_names: tuple[str, ...] | list[str]) -> tuple[PluginInfo, ...]:
    return tuple(import_plugin(name) for name in module_names)


def load_entry_points() -> None:
    """Import every installed ``meter_harness.plugins`` entry point, once per process."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        module_name = entry.value.split(":")[0].strip()
        try:
            entry.load()
        except ImportError as exc:
            raise PluginError(f"cannot import plug-in '{module_name}' (entry point '{entry.name}' of "
                              f"{entry.dist.name if entry.dist else 'an installed package'}): {exc}") from exc
        version = entry.dist.version if entry.dist is not None else module_version(module_name)
        _loaded.setdefault(module_name, PluginInfo(module_name, version))


def loaded_plugins() -> tuple[PluginInfo, ...]:
    """Every plug-in imported in this process so far (grid-listed and entry points)."""
    return tuple(_loaded.values())
