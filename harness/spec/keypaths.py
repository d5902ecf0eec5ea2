"""Dotted key paths into ExperimentSpec (``optim.lr``, ``finetune.vqa.image_size``): check and set."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel

from harness.spec.schema import ExperimentSpec


def _unwrap(annotation: Any) -> Any:
    """``X | None`` → X; other annotations unchanged."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def check_path(path: str, root: type[BaseModel] = ExperimentSpec) -> str | None:
    """None when ``path`` names a settable key of the spec, else what is wrong with it."""
    current: Any = root
    parts = path.split(".")
    for i, part in enumerate(parts):
        current = _unwrap(current)
        where = ".".join(parts[:i]) or "the experiment"
        if isinstance(current, type) and issubclass(current, BaseModel):
            fields = current.model_fields
            if part not in fields:
                close = difflib.get_close_matches(part, list(fields), n=1, cutoff=0.6)
                hint = f"; did you mean '{close[0]}'?" if close else f"; expected one of: {', '.join(fields)}"
                return f"unknown key '{part}' in {where}{hint}"
            current = fields[part].annotation
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]  # any key: e.g. a task name under finetune
        else:
            return f"'{where}' is a value, not a section: cannot set '{'.'.join(parts[i:])}' inside it"
    return None


def set_path(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``doc`` with ``path`` set, copying only the mappings along the path."""
    head, _, rest = path.partition(".")
    out = dict(doc)
    if not rest:
        out[head] = value
        return out
    child = out.get(head)
    out[head] = set_path(child if isinstance(child, dict) else {}, rest, value)
    return out


def deep_merge(base: Any, overlay: Any) -> Any:
    """Mappings merge key by key (``null`` deletes a key); anything else is replaced."""
    if not (isinstance(base, dict) and isinstance(overlay, dict)):
        return overlay
    out = dict(base)
    for key, value in overlay.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = deep_merge(out.get(key), value) if key in out else value
    return out
