"""A grid file as a merged document: ``extends`` resolved, a profile applied, ``--set`` applied.

Origins travel with the data so every later error can name the file and line that wrote
the offending key — also when it came from a parent file or a profile.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.spec.errors import GridError, Issue
from harness.spec.keypaths import check_path, deep_merge, set_path
from harness.spec.yamlio import KeyPath, Origins, load_yaml, parse_scalar

if TYPE_CHECKING:
    from harness.spec.site import SiteValue

TOP_LEVEL = ("name", "description", "extends", "default_profile", "plugins", "base", "factors", "zip", "exclude",
             "seeds", "profiles", "report", "search")
# A grid name becomes a folder (reports/<name>/), a lock and a SLURM job name: keep it plain.
NAME_RULE = "1 to 64 characters: letters, digits, '.', '_' or '-', starting with a letter or digit"
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
PROFILE_KEYS = ("base", "factors", "zip", "exclude", "seeds", "report", "search", "description")


@dataclass
class GridDocument:
    path: Path
    name: str
    profile: str | None
    data: dict[str, Any]
    origins: Origins

    def where(self, path: KeyPath) -> tuple[str, int | None]:
        for cut in range(len(path), 0, -1):
            hit = self.origins.get(tuple(path[:cut]))
            if hit is not None:
                return hit
        return str(self.path), None

    def issue(self, path: KeyPath, message: str) -> Issue:
        file, line = self.where(path)
        return Issue(file, line, ".".join(path), message)


def did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    return f"; expected one of: {', '.join(choices)}" if choices else ""


def _load_chain(path: Path, chain: tuple[Path, ...]) -> tuple[dict[str, Any], Origins]:
    resolved = path.resolve()
    data, origins = load_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise GridError([Issue(str(path), 1, "", f"a grid file must be a mapping, not {type(data).__name__}")])
    parent_name = data.pop("extends", None)
    if parent_name is None:
        return data, origins
    if not isinstance(parent_name, str):
        file, line = origins.get(("extends",), (str(path), None))
        raise GridError([Issue(file, line, "extends", "expected a file name (string)")])
    parent_path = path.parent / parent_name
    file, line = origins.get(("extends",), (str(path), None))
    if not parent_path.is_file():
        what = "a folder, not a grid file" if parent_path.is_dir() else "no such file"
        raise GridError([Issue(file, line, "extends", f"{what}: {parent_path} (expected e.g. 'extends: common.yaml', "
                                                      "a path relative to this file)")])
    if parent_path.resolve() in (*chain, resolved):
        loop = " → ".join(p.name for p in (*chain, resolved, parent_path.resolve()))
        raise GridError([Issue(file, line, "extends", f"circular extends: {loop}")])
    parent, parent_origins = _load_chain(parent_path, (*chain, resolved))
    parent.pop("name", None)  # a grid's name is its own
    return deep_merge(parent, data), {**parent_origins, **origins}


def load_document(
    path: str | Path, profile: str | None = None, sets: tuple[str, ...] | list[str] = (),
    site: Sequence[SiteValue] = (),
) -> GridDocument:
    """Read ``path`` (with its ``extends`` chain), apply ``profile``, the site's placement, ``--set``."""
    path = Path(path)
    data, origins = _load_chain(path, ())
    doc = GridDocument(path, str(data.get("name") or path.stem), None, data, origins)
    issues = _check_name(doc, data.get("name"))
    issues += [doc.issue((key,), f"unknown top-level key '{key}'{did_you_mean(key, list(TOP_LEVEL))}")
              for key in data if key not in TOP_LEVEL]
    issues += _apply_profile(doc, profile)
    _apply_site(doc, site)
    issues += _apply_sets(doc, sets)
    if issues:
        raise GridError(issues)
    return doc


def safe_name(name: object) -> bool:
    return isinstance(name, str) and _SAFE_NAME.fullmatch(name) is not None


def _check_name(doc: GridDocument, written: object) -> list[Issue]:
    if written is None:
        if safe_name(doc.name):
            return []
        return [Issue(str(doc.path), None, "name", f"the grid name '{doc.name}' comes from the file name and is "
                                                   f"not a safe name ({NAME_RULE}); set 'name:' or rename the file")]
    if not isinstance(written, str):
        return [doc.issue(("name",), f"expected a string ({NAME_RULE})")]
    if not safe_name(written):
        return [doc.issue(("name",), f"'{written}' is not a safe grid name ({NAME_RULE})")]
    return []


def _apply_profile(doc: GridDocument, requested: str | None) -> list[Issue]:
    profiles = doc.data.get("profiles") or {}
    if not isinstance(profiles, dict):
        return [doc.issue(("profiles",), "expected a mapping of profile name → overrides")]
    name = requested or doc.data.get("default_profile") or ("local" if "local" in profiles else None)
    if name is None:
        return []
    if name not in profiles:
        where = ("default_profile",) if not requested else ("profiles",)
        msg = f"unknown profile '{name}'{did_you_mean(name, list(profiles))}"
        return [doc.issue(where, msg) if not requested else Issue(str(doc.path), None, "--profile", msg)]
    overlay = profiles[name] or {}
    if not isinstance(overlay, dict):
        return [doc.issue(("profiles", name), "expected a mapping of overrides")]
    issues = [doc.issue(("profiles", name, key), f"a profile cannot set '{key}'{did_you_mean(key, list(PROFILE_KEYS))}")
              for key in overlay if key not in PROFILE_KEYS]
    doc.profile = name
    doc.data = deep_merge(doc.data, overlay)
    prefix = ("profiles", name)
    for key, origin in list(doc.origins.items()):
        if key[:2] == prefix and len(key) > 2:
            doc.origins[key[2:]] = origin
    return issues


def _apply_site(doc: GridDocument, site: Sequence[SiteValue]) -> None:
    """Placement from harness.toml / the environment over the grid's own (``finetune.*``: every task)."""
    for item in site:
        keys = [item.key]
        if item.key.startswith("finetune.*."):
            tasks = ((doc.data.get("base") or {}).get("finetune") or {})
            keys = [item.key.replace("*", task, 1) for task in tasks] if isinstance(tasks, dict) else []
        for key in keys:
            doc.data["base"] = set_path(doc.data.get("base") or {}, key, item.value)
            doc.origins[("base", *key.split("."))] = (item.origin, 0)


def _apply_sets(doc: GridDocument, sets: tuple[str, ...] | list[str]) -> list[Issue]:
    issues = []
    for item in sets:
        key, eq, raw = item.partition("=")
        key = key.strip().removeprefix("base.")
        if not eq or not key:
            issues.append(Issue("--set", None, item, "expected KEY=VALUE, e.g. --set optim.lr=2e-5"))
            continue
        problem = check_path(key)
        if problem:
            issues.append(Issue("--set", None, key, problem))
            continue
        doc.data["base"] = set_path(doc.data.get("base") or {}, key, parse_scalar(raw))
        doc.origins[("base", *key.split("."))] = ("--set", 0)
    return issues
