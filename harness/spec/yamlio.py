"""YAML loading that remembers where every key came from (file and line)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from harness.spec.errors import GridError, Issue

try:  # the C loader is ~10× faster; fall back where libyaml is missing
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

KeyPath = tuple[str, ...]
# Where each key path was written: (file, line).
Origins = dict[KeyPath, tuple[str, int]]


def load_yaml(path: Path) -> tuple[Any, Origins]:
    """Parse ``path``; return the data and the origin of every mapping key and list item."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise GridError([Issue(str(path), None, "", f"cannot read: {exc.strerror or exc}")]) from None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        origins: Origins = {}
        data = _construct(loader, node, (), str(path), origins) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise GridError([Issue(str(path), line, "", f"YAML syntax error: {problem}")]) from None
    finally:
        loader.dispose()
    return data, origins


def parse_scalar(text: str) -> Any:
    """A ``--set`` value: parsed as YAML (numbers, booleans, lists), else the string itself."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError:
        return text


def _construct(loader: Any, node: yaml.Node, path: KeyPath, file: str, origins: Origins) -> Any:
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)):
                raise GridError([Issue(file, key_node.start_mark.line + 1, ".".join(path), "keys must be scalars")])
            key = str(key)
            if key in out:
                raise GridError([Issue(file, key_node.start_mark.line + 1, ".".join((*path, key)),
                                       "duplicate key")])
            origins[(*path, key)] = (file, key_node.start_mark.line + 1)
            out[key] = _construct(loader, value_node, (*path, key), file, origins)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            origins[(*path, str(i))] = (file, item.start_mark.line + 1)
            items.append(_construct(loader, item, (*path, str(i)), file, origins))
        return items
    return loader.construct_object(node, deep=True)


def origin_of(origins: Origins, path: KeyPath, default: tuple[str, int | None]) -> tuple[str, int | None]:
    """The origin of ``path`` or of its nearest ancestor that has one."""
    for cut in range(len(path), 0, -1):
        hit = origins.get(tuple(path[:cut]))
        if hit is not None:
            return hit
    return default
