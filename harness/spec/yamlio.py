"""YAML loading that remembers where every key came from (file and line) — and refuses the
inputs a grid never needs: non-UTF-8 text, huge documents, alias bombs (exponential or
recursive expansion), deep nesting, merge keys and any tag other than the plain types.
"""

from __future__ import annotations

import re
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

# Bounds far above any real grid (the shipped ones: < 10 kB, < 500 nodes, depth < 8).
MAX_BYTES = 1 << 20
MAX_NODES = 100_000
MAX_DEPTH = 64

_TAG = "tag:yaml.org,2002:"
# YAML 1.2 floats that YAML 1.1 (PyYAML) reads as strings: "2e-5", "1E6", "1.e-3".
_FLOAT_12 = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)")
_SCALAR_TAGS = {f"{_TAG}{name}" for name in ("str", "int", "float", "bool", "null")}


class _Budget:
    """Counts constructed nodes, so an alias expanded again and again cannot blow up memory."""

    def __init__(self, file: str) -> None:
        self.file, self.nodes = file, 0

    def spend(self, node: yaml.Node, path: KeyPath) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _refuse(self.file, node, path, f"the document expands to more than {MAX_NODES:,} values "
                                                 "(aliases repeated over and over?); grids are far smaller")
        if len(path) > MAX_DEPTH:
            raise _refuse(self.file, node, path, f"nested deeper than {MAX_DEPTH} levels (a recursive alias?)")


def _refuse(file: str, node: yaml.Node, path: KeyPath, message: str) -> GridError:
    shown = ".".join(path) if len(path) <= 8 else ".".join(path[:4]) + ".….{}".format(".".join(path[-2:]))
    return GridError([Issue(file, node.start_mark.line + 1, shown, message)])


def read_text(path: Path) -> str:
    """A grid file's text: UTF-8 (a BOM is allowed), at most MAX_BYTES; anything else is a GridError."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise GridError([Issue(str(path), None, "", f"cannot read: {exc.strerror or exc}")]) from None
    if len(raw) > MAX_BYTES:
        raise GridError([Issue(str(path), None, "", f"file larger than {MAX_BYTES // 1024} KiB; a grid is a few kB")])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise GridError([Issue(str(path), line, "", f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
                                                    f"{exc.start}); save the file as UTF-8")]) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise GridError([Issue(str(path), line, "", "contains a NUL character; is this a text file?")])
    return text


def load_yaml(path: Path) -> tuple[Any, Origins]:
    """Parse ``path``; return the data and the origin of every mapping key and list item."""
    text = read_text(path)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        origins: Origins = {}
        data = _construct(loader, node, (), _Budget(str(path)), origins) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise GridError([Issue(str(path), line, "", f"YAML syntax error: {problem}")]) from None
    except yaml.YAMLError as exc:  # e.g. a reader error on a control character
        raise GridError([Issue(str(path), None, "", f"YAML error: {exc}")]) from None
    except RecursionError:  # nesting so deep that the parser itself gives up
        raise GridError([Issue(str(path), None, "", f"nested deeper than {MAX_DEPTH} levels")]) from None
    finally:
        loader.dispose()
    return data, origins


def parse_scalar(text: str) -> Any:
    """A ``--set`` value: parsed as YAML (numbers, booleans, lists), else the string itself.

    The same rules as a grid file: plain types only, bounded size.
    """
    if len(text) > 10_000:
        raise GridError([Issue("--set", None, "", "value longer than 10,000 characters")])
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        return _construct(loader, node, (), _Budget("--set"), {}) if node is not None else None
    except GridError:
        raise
    except (yaml.YAMLError, RecursionError):
        return text
    finally:
        loader.dispose()


def _construct(loader: Any, node: yaml.Node, path: KeyPath, budget: _Budget, origins: Origins) -> Any:
    budget.spend(node, path)
    file = budget.file
    if isinstance(node, yaml.MappingNode):
        if node.tag != f"{_TAG}map":
            raise _refuse(file, node, path, f"YAML tag '{node.tag}' is not allowed; write a plain mapping")
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == f"{_TAG}merge":
                raise _refuse(file, key_node, path, "YAML merge keys ('<<') are not supported; write the keys "
                                                    "out, or share settings with 'extends: other.yaml'")
            if not isinstance(key_node, yaml.ScalarNode):
                raise _refuse(file, key_node, path, "keys must be scalars")
            key = _construct(loader, key_node, path, budget, {})
            if not isinstance(key, (str, int, float, bool)):
                raise _refuse(file, key_node, path, "keys must be scalars")
            key = str(key)
            if key in out:
                raise _refuse(file, key_node, (*path, key), "duplicate key")
            origins[(*path, key)] = (file, key_node.start_mark.line + 1)
            out[key] = _construct(loader, value_node, (*path, key), budget, origins)
        return out
    if isinstance(node, yaml.SequenceNode):
        if node.tag != f"{_TAG}seq":
            raise _refuse(file, node, path, f"YAML tag '{node.tag}' is not allowed; write a plain list")
        items = []
        for i, item in enumerate(node.value):
            origins[(*path, str(i))] = (file, item.start_mark.line + 1)
            items.append(_construct(loader, item, (*path, str(i)), budget, origins))
        return items
    if node.tag not in _SCALAR_TAGS:
        kind = node.tag.removeprefix(_TAG)
        raise _refuse(file, node, path, f"YAML tag/type '{kind}' is not allowed here (only strings, numbers, "
                                        "booleans and null); quote the value to make it a string")
    if node.tag == f"{_TAG}str" and not node.style and _FLOAT_12.fullmatch(node.value):
        return float(node.value)  # a number written as 2e-5 is a number, as in YAML 1.2 and JSON
    return loader.construct_object(node, deep=True)
